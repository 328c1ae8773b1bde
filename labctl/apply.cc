#include "labctl/apply.h"

namespace labctl {
namespace {

// Reverts steps [0, done) newest first. Keeps going past failures so that as much as
// possible is removed, and reports them all.
std::string rollback(const Plan& plan, size_t done, Executor& ex) {
  std::string problems;
  for (size_t i = done; i-- > 0;) {
    Status st = ex.revert(plan.steps[i].step);
    if (!st) problems += "\n  could not undo " + describe(plan.steps[i].step) + ": " + st.error().str();
  }
  return problems;
}

}  // namespace

Status apply_plan(const Plan& plan, Executor& ex, const ApplyOptions& opts) {
  const size_t n = plan.steps.size();
  for (size_t i = 0; i < n; ++i) {
    const PlannedStep& ps = plan.steps[i];
    Status st = opts.cancel && opts.cancel->load()
                    ? Status(fail("interrupted", "nothing of the lab was left behind"))
                    : ex.apply(ps.step);
    if (!st) {
      Error e = std::move(st).error();
      if (e.message != "interrupted")
        e.context("step " + std::to_string(i + 1) + "/" + std::to_string(n) + ": " +
                  describe(ps.step));
      std::string problems = rollback(plan, i, ex);
      if (!problems.empty()) {
        e.hint += (e.hint.empty() ? "" : "\n  ") +
                  std::string("rolling back also failed; run `labctl down ") + plan.lab +
                  "` to remove what is left:" + problems;
      }
      return tl::unexpected(std::move(e));
    }
    if (opts.on_step) opts.on_step(i, ps);
  }
  return {};
}

}  // namespace labctl
