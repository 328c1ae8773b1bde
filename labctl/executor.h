// The one seam between a plan and the system. NetlinkExecutor does it for real; a dry-run
// executor prints; tests record and inject failures. No testing flags in production code.
#pragma once

#include "labctl/error.h"
#include "labctl/plan.h"

namespace labctl {

class Executor {
 public:
  virtual ~Executor() = default;
  /// Carries out one step.
  [[nodiscard]] virtual Status apply(const Step& s) = 0;
  /// Undoes a step that apply() completed.
  [[nodiscard]] virtual Status revert(const Step& s) = 0;
};

}  // namespace labctl
