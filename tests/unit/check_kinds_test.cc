// Unit tier: every kind of check is one registered entry with both halves, its model spec
// (model/check_specs.cc: keys, deadline, expectation, validation) and its run
// (checks/<kind>.cc, listed in checks/kinds.cc), joined by name, and docs/checks.md
// describes it. A kind added to one registry but not the other fails here.
#include <algorithm>
#include <cstdio>
#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "labctl/base/file.h"
#include "labctl/checks/check_kind.h"
#include "labctl/checks/checks.h"
#include "labctl/model/check_spec.h"
#include "labctl/model/load.h"

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

// A kind takes the shared references and keys of check_keys() only: a key a spec names that
// no reader reads would be accepted and then silently ignored.
// `labctl check --help` lists the kinds from the registry: a new kind is in it at once
// (its hand-written list had fallen four kinds behind).
TEST(CheckKinds, CheckHelpNamesEveryKind) {
  std::string help;
  FILE* p = ::popen((std::string(LABCTL_BINARY_DIR) + "/labctl/labctl check --help").c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) help.append(buf, n);
  ::pclose(p);
  for (const auto& spec : topo::check_kinds()) {
    const std::string& k = spec.name;
    const bool listed = help.find(" " + k + ",") != std::string::npos || help.find(" " + k + ".") != std::string::npos;
    EXPECT_TRUE(listed) << k << " is missing from labctl check --help:\n" << help;
  }
}

TEST(CheckKinds, EveryKeyAKindTakesHasAReaderAndEveryReaderAKind) {
  const std::vector<std::string> shared = {"from", "to", "service", "port", "expect"};
  std::vector<std::string> used;
  for (const auto& spec : topo::check_kinds()) {
    SCOPED_TRACE(spec.name);
    for (const auto* keys : {&spec.required, &spec.optional})
      for (const auto& key : *keys) {
        used.push_back(key);
        if (std::find(shared.begin(), shared.end(), key) != shared.end()) continue;
        const topo::CheckKey* k = topo::find_check_key(key);
        ASSERT_NE(k, nullptr) << key << ": add its reader to check_keys() in model/check_specs.cc";
        EXPECT_NE(k->read, nullptr) << key;
      }
    for (const auto& [key, value] : spec.defaults)
      EXPECT_TRUE(std::find(spec.optional.begin(), spec.optional.end(), key) != spec.optional.end())
          << key << " has a default but the kind does not take it";
  }
  for (const auto& k : topo::check_keys())
    EXPECT_NE(std::find(used.begin(), used.end(), k.name), used.end()) << k.name << " is taken by no kind";
}

// The run half reads typed values: what the file says arrives as its type, and what it
// leaves out as the kind's default.
TEST(CheckKinds, ParamsArriveTypedWithTheKindsDefaults) {
  auto loaded = parse_topology(R"(
version = 1
name = "typed"
[nodes.a]
interfaces.eth0 = { switch = "s", addresses = ["10.0.0.1/24"] }
[nodes.b]
interfaces.eth0 = { switch = "s", addresses = ["10.0.0.2/24"] }
[switches.s]
[checks.given]
kind = "http"
from = "a"
to = "b"
path = "/x"
timeout = 2.5
[checks.defaults]
kind = "http"
from = "a"
to = "b"
[checks.udp]
kind = "reach"
from = "a"
to = "b"
port = 7
proto = "udp"
send = "hi"
)",
                               "t.toml");
  ASSERT_TRUE(loaded.ok()) << (loaded.diagnostics.empty() ? "" : loaded.diagnostics[0].message);
  const auto& checks = loaded.topology->checks;
  ASSERT_EQ(checks.size(), 3u);
  EXPECT_EQ(checks[0].params.text("path"), "/x");
  EXPECT_EQ(checks[0].params.number("timeout"), 2.5);
  EXPECT_EQ(check_deadline(checks[0]), std::chrono::milliseconds{2500});
  EXPECT_EQ(checks[1].params.text("path"), "/");
  EXPECT_FALSE(checks[1].params.has("timeout"));
  EXPECT_EQ(check_deadline(checks[1]), default_deadline("http"));
  EXPECT_TRUE(checks[2].params.udp());
  EXPECT_EQ(checks[2].params.text("send"), "hi");
  EXPECT_FALSE(checks[1].params.udp());
}

}  // namespace
}  // namespace labctl
