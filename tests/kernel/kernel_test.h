// Helpers shared by kernel-tier tests.
#pragma once

#include <cstdlib>
#include <cstring>

#include <gtest/gtest.h>

#include "labctl/kernel/ipvs.h"
#include "labctl/kernel/netns.h"

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

}  // namespace labctl::test

/// Like GTEST_SKIP() (stream the reason after it), but a failure when the features are
/// required.
#define LABCTL_KERNEL_SKIP()                                                                \
  return ::testing::internal::AssertHelper(                                                 \
             ::labctl::test::kernel_features_required() ? ::testing::TestPartResult::kFatalFailure \
                                                        : ::testing::TestPartResult::kSkip, \
             __FILE__, __LINE__, "kernel feature missing") = ::testing::Message()
