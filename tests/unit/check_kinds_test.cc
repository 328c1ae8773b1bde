// Unit tier: every kind of check is one registered entry with both halves, its model spec
// (model/check_specs.cc: keys, deadline, expectation, validation) and its run
// (checks/<kind>.cc, listed in checks/kinds.cc), joined by name, and docs/checks.md
// describes it. A kind added to one registry but not the other fails here.
#include <algorithm>
#include <string>

#include <gtest/gtest.h>

#include "labctl/base/file.h"
#include "labctl/checks/check_kind.h"
#include "labctl/checks/checks.h"
#include "labctl/model/check_spec.h"

namespace labctl {
namespace {

TEST(CheckKinds, EveryModelSpecHasARunAndEveryRunASpec) {
  const auto& specs = topo::check_kinds();
  const auto& runs = check_kind::kind_runs();
  ASSERT_FALSE(specs.empty());
  EXPECT_EQ(specs.size(), runs.size());
  for (const auto& spec : specs) {
    SCOPED_TRACE(spec.name);
    const check_kind::KindRun* run = check_kind::find_kind_run(spec.name);
    ASSERT_NE(run, nullptr) << "register its run half in checks/kinds.cc";
    EXPECT_NE(run->run, nullptr);
  }
  for (const check_kind::KindRun* run : runs) {
    SCOPED_TRACE(std::string(run->name));
    EXPECT_NE(topo::find_check_kind(run->name), nullptr) << "add its spec to model/check_specs.cc";
  }
}

TEST(CheckKinds, EverySpecHasADeadlineAndAnExpectation) {
  for (const auto& spec : topo::check_kinds()) {
    SCOPED_TRACE(spec.name);
    EXPECT_GT(spec.deadline.count(), 0);
    EXPECT_EQ(default_deadline(spec.name), spec.deadline);
    EXPECT_FALSE(spec.expectation.empty());
    EXPECT_EQ(check_expectation(spec.name), spec.expectation);
    for (const char* key : {"from"})
      EXPECT_NE(std::find(spec.required.begin(), spec.required.end(), key), spec.required.end());
  }
}

TEST(CheckKinds, DocsDescribeEveryKind) {
  auto doc = read_regular_file(std::string(LABCTL_SOURCE_DIR) + "/docs/checks.md", 1 << 20);
  ASSERT_TRUE(doc) << doc.error().str();
  for (const auto& spec : topo::check_kinds())
    EXPECT_NE(doc->find("| `" + spec.name + "` |"), std::string::npos)
        << spec.name << ": add its row to the Kinds table of docs/checks.md";
}

}  // namespace
}  // namespace labctl
