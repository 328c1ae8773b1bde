// Before `up` makes anything: can this kernel finish the lab? Probes what the plan needs
// (plan/needs.h) in throwaway namespaces (kernel/features.h) and names every missing piece.
#pragma once

#include "labctl/base/error.h"
#include "labctl/plan/plan.h"

namespace labctl {

/// Ok when the kernel has everything the plan needs; else one error naming each missing
/// feature (with its kernel option and module) and what to do. ~1 ms per probe.
[[nodiscard]] Status check_kernel_can_build(const Plan& plan);

}  // namespace labctl
