// Kernel tier: `labctl measure` through a real IPVS director: the director's exact per-cpu
// totals count one IPVS connection per request with --new-connections, NAT carries the
// replies (bytes out at least the bodies) and DR does not (0 out), and the handshakes are
// the client's and the real servers', never the director's.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "labctl/lab/lifecycle.h"
#include "labctl/model/load.h"
#include "tests/kernel/kernel_test.h"
#include "tests/support/kill_sweep.h"

namespace labctl {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;
const std::string kLabctl = LABCTL_BINARY_DIR "/labctl/labctl";

class KernelMeasure : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "kernel tier needs root";
    if (Status ipvs = test::ipvs_available(); !ipvs) LABCTL_KERNEL_SKIP() << ipvs.error().str();
    name_ = GetParam();
    ASSERT_TRUE(lab_namespaces(name_).empty()) << name_ << " is up already";
    const std::string up = test::run_capture(kLabctl + " up " + name_ + " 2>&1; echo rc=$?");
    ASSERT_THAT(up, HasSubstr("rc=0")) << up;
  }
  void TearDown() override {
    if (!name_.empty()) {
      EXPECT_TRUE(lab_down(name_));
    }
  }
  std::string name_;
};

TEST_P(KernelMeasure, TheDirectorsExactTotalsShowWhatCrossedIt) {
  const std::string out =
      test::run_capture(kLabctl + " measure " + name_ + " --requests 60 --rounds 2 --new-connections --json 2>&1");
  auto j = json::parse(out.substr(out.find('{')), nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << out;
  ASSERT_EQ(j["targets"].size(), 1u) << out;
  const json& t = j["targets"][0];
  EXPECT_EQ(t["answered"], 60) << t.dump(2);
  EXPECT_EQ(t["director"], "director");
  const json& d = t["directors"]["director"];
  EXPECT_EQ(d["conns"], 60) << "one IPVS connection per request, counted exactly\n" << t.dump(2);
  EXPECT_GT(d["inpkts"].get<uint64_t>(), 60u * 3) << "at least SYN, ACK, GET per connection";
  if (name_ == "nat-demo") {
    EXPECT_GE(d["outbytes"].get<uint64_t>(), t["body_bytes"].get<uint64_t>()) << "NAT carries every reply\n" << t.dump(2);
  } else {
    EXPECT_EQ(d["outpkts"], 0) << "DR replies bypass the director\n" << t.dump(2);
    EXPECT_EQ(d["outbytes"], 0);
  }
  // LVS forwards packets and takes no handshake; the client opens, the real servers accept.
  EXPECT_EQ(t["nodes"]["client"]["active_opens"], 60) << t.dump(2);
  EXPECT_EQ(t["nodes"]["director"]["passive_opens"], 0) << t.dump(2);
  EXPECT_EQ(t["nodes"]["rs1"]["passive_opens"].get<int>() + t["nodes"]["rs2"]["passive_opens"].get<int>(), 60)
      << t.dump(2);
}

std::string demo_name(const ::testing::TestParamInfo<const char*>& p) {
  return std::string(p.param) == "nat-demo" ? "Nat" : "Dr";
}

INSTANTIATE_TEST_SUITE_P(Demos, KernelMeasure, ::testing::Values("nat-demo", "dr-demo"), demo_name);

}  // namespace
}  // namespace labctl
