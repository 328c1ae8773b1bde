// The one seam between a plan and the system. NetlinkExecutor does it for real; a dry-run
// executor prints; tests record and inject failures. No testing flags in production code.
#pragma once

#include <span>
#include <vector>

#include "labctl/base/error.h"
#include "labctl/plan/plan.h"

namespace labctl {

class Executor {
 public:
  virtual ~Executor() = default;
  /// Carries out one step.
  [[nodiscard]] virtual Status apply(const Step& s) = 0;
  /// Undoes a step that apply() completed.
  [[nodiscard]] virtual Status revert(const Step& s) = 0;
  /// Carries out a run of steps that apply_plan found can go together (see run_end in
  /// apply.h): namespace creations, which do not depend on each other and may be made at
  /// the same time, rtnetlink requests in one namespace, which may be sent as one batch
  /// (in order), or sysctl writes in one namespace, which may share one entry into it.
  /// One status per step; every step whose status is ok was done, even one after a failed
  /// step. By default: apply() each in order, stopping at the first failure.
  [[nodiscard]] virtual std::vector<Status> apply_run(std::span<const Step> steps) {
    std::vector<Status> out;
    for (const auto& s : steps) {
      out.push_back(apply(s));
      if (!out.back()) break;
    }
    while (out.size() < steps.size()) out.push_back(fail("not attempted"));
    return out;
  }
};

}  // namespace labctl
