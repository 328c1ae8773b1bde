// Carrying out a plan all-or-nothing: steps run in order; when one fails (or the user
// interrupts), every step already done is reverted in reverse order.
#pragma once

#include <atomic>
#include <functional>

#include "labctl/base/error.h"
#include "labctl/lab/executor.h"
#include "labctl/plan/plan.h"

namespace labctl {

struct ApplyOptions {
  /// Polled between steps; when it becomes true the plan is rolled back ("interrupted").
  const std::atomic<bool>* cancel = nullptr;
  /// Called after each applied step (progress output, tests).
  std::function<void(size_t index, const PlannedStep&)> on_step;
};

/// The end of the run of steps from `i` that apply_plan hands to Executor::apply_run
/// together: consecutive namespace creations, consecutive rtnetlink steps
/// (is_rtnetlink_step) in one namespace, or consecutive sysctl writes in one namespace.
/// At least i + 1.
[[nodiscard]] size_t run_end(const Plan& plan, size_t i);

/// Applies every step or none. The error names the failing step ("step 7/42: add address
/// ...") and says whether the rollback itself had trouble.
[[nodiscard]] Status apply_plan(const Plan& plan, Executor& ex, const ApplyOptions& opts = {});

}  // namespace labctl
