// Kernel tier: `labctl test` over the built-in demos in one guest (the kernel with IPVS
// and IPIP): every demo up, checked and down, one JUnit report valid against the schema,
// nothing left.
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "labctl/lab/lifecycle.h"
#include "tests/kernel/kernel_test.h"
#include "tests/support/kill_sweep.h"

namespace labctl {
namespace {

using ::testing::HasSubstr;

TEST(KernelSuite, LabctlTestRunsTheDemosInThisKernelAndLeavesNothing) {
  if (::geteuid() != 0) GTEST_SKIP() << "kernel tier needs root";
  if (Status st = test::ipvs_available(); !st) LABCTL_KERNEL_SKIP() << st.error().str();
  const std::string junit = ::testing::TempDir() + "/suite-" + std::to_string(::getpid()) + ".xml";
  const std::string out = test::run_capture(std::string(LABCTL_BINARY_DIR "/labctl/labctl") +
                                            " test --vm=never --jobs 1 --junit " + junit +
                                            " dr-demo nat-demo tun-demo 2>&1; echo rc=$?");
  EXPECT_THAT(out, HasSubstr("labctl test: 3 labs: 3 passed, 0 failed, 0 skipped"));
  EXPECT_THAT(out, HasSubstr("rc=0"));
  EXPECT_EQ(test::run_capture("xmllint --noout --schema " LABCTL_TEST_DATA "/junit.xsd " + junit + " 2>&1"),
            junit + " validates\n");
  EXPECT_EQ(test::run_capture("xmllint --xpath 'count(//testcase[@name=\"up\"])' " + junit), "3\n");
  EXPECT_EQ(test::run_capture("xmllint --xpath 'count(//failure)' " + junit), "0\n");
  for (const char* lab : {"dr-demo", "nat-demo", "tun-demo"}) EXPECT_TRUE(lab_namespaces(lab).empty()) << lab;
  ::unlink(junit.c_str());
}

}  // namespace
}  // namespace labctl
