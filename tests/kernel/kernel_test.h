// Helpers shared by kernel-tier tests.
#pragma once

#include <cstdlib>
#include <cstring>

#include <gtest/gtest.h>

#include "labctl/kernel/ipvs.h"
#include "labctl/kernel/netns.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/model/load.h"
#include "labctl/plan/planner.h"

namespace labctl::test {

/// Set by scripts/run-tests.sh when it runs this tier where IPVS and IPIP must exist (in
/// the micro-VM, or natively after doctor said so): a missing feature then fails instead
/// of skipping, so a broken guest can never look like a passing tier.
inline bool kernel_features_required() {
  const char* v = std::getenv("LABCTL_KERNEL_REQUIRED");
  return v && std::strcmp(v, "1") == 0;
}

/// Whether this kernel has IPVS (probed in a throwaway namespace), or why not.
inline Status ipvs_available() {
  return run_in_new_netns([]() -> Status {
    TRY_ASSIGN(Ipvs i, Ipvs::open());
    return {};
  });
}

/// Loads tests/data/FIXTURE, which must load without a single diagnostic (the labs of the
/// kernel tier are meant to be right), into `topo` and brings it up. The failure names the
/// diagnostics or the step that failed.
inline ::testing::AssertionResult up_fixture(const std::string& fixture, Topology& topo) {
  auto loaded = load_topology(std::string(LABCTL_TEST_DATA) + "/" + fixture);
  std::string diags;
  for (const auto& d : loaded.diagnostics) diags += format_diagnostic(d) + "\n";
  if (!loaded.ok() || !loaded.diagnostics.empty())
    return ::testing::AssertionFailure() << fixture << " should load without diagnostics:\n" << diags;
  topo = *loaded.topology;
  if (lab_namespaces(topo.name).size() > 0) return ::testing::AssertionFailure() << topo.name << " is up already";
  if (Status st = lab_up(topo, make_plan(topo), {}); !st) return ::testing::AssertionFailure() << st.error().str();
  return ::testing::AssertionSuccess();
}

}  // namespace labctl::test

/// Like GTEST_SKIP() (stream the reason after it), but a failure when the features are
/// required.
#define LABCTL_KERNEL_SKIP()                                                                \
  return ::testing::internal::AssertHelper(                                                 \
             ::labctl::test::kernel_features_required() ? ::testing::TestPartResult::kFatalFailure \
                                                        : ::testing::TestPartResult::kSkip, \
             __FILE__, __LINE__, "kernel feature missing") = ::testing::Message()
