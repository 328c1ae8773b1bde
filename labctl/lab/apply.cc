#include "labctl/lab/apply.h"

namespace labctl {
namespace {

// Reverts the applied steps newest first. Keeps going past failures so that as much as
// possible is removed, and reports them all.
std::string rollback(const Plan& plan, const std::vector<size_t>& applied, Executor& ex) {
  std::string problems;
  for (size_t k = applied.size(); k-- > 0;) {
    const Step& s = plan.steps[applied[k]].step;
    Status st = ex.revert(s);
    if (!st) problems += "\n  could not undo " + describe(s) + ": " + st.error().str();
  }
  return problems;
}

}  // namespace

size_t run_end(const Plan& plan, size_t i) {
  const auto& steps = plan.steps;
  auto goes_with = [&](const Step& first, const Step& s) {
    if (std::holds_alternative<step::CreateNetns>(first))
      return std::holds_alternative<step::CreateNetns>(s);
    if (std::holds_alternative<step::SetSysctl>(first))
      return std::holds_alternative<step::SetSysctl>(s) && step_netns(s) == step_netns(first);
    return is_rtnetlink_step(first) && is_rtnetlink_step(s) && step_netns(s) == step_netns(first);
  };
  size_t j = i + 1;
  while (j < steps.size() && goes_with(steps[i].step, steps[j].step)) ++j;
  return j;
}

Status apply_plan(const Plan& plan, Executor& ex, const ApplyOptions& opts) {
  const size_t n = plan.steps.size();
  std::vector<size_t> applied;
  for (size_t i = 0; i < n;) {
    const size_t end = run_end(plan, i);
    std::vector<Status> results;
    if (opts.cancel && opts.cancel->load()) {
      results.push_back(fail("interrupted", "nothing of the lab was left behind"));
    } else if (end - i == 1) {
      results.push_back(ex.apply(plan.steps[i].step));
    } else {
      std::vector<Step> run;
      for (size_t k = i; k < end; ++k) run.push_back(plan.steps[k].step);
      results = ex.apply_run(run);
    }
    size_t failed = n;
    for (size_t k = 0; k < results.size(); ++k) {
      if (results[k]) applied.push_back(i + k);
      else if (failed == n) failed = i + k;
    }
    if (failed != n) {
      Error e = std::move(results[failed - i]).error();
      if (e.message != "interrupted")
        e.context("step " + std::to_string(failed + 1) + "/" + std::to_string(n) + ": " +
                  describe(plan.steps[failed].step));
      std::string problems = rollback(plan, applied, ex);
      if (!problems.empty()) {
        e.hint += (e.hint.empty() ? "" : "\n  ") +
                  std::string("rolling back also failed; run `labctl down ") + plan.lab +
                  "` to remove what is left:" + problems;
      }
      return tl::unexpected(std::move(e));
    }
    if (opts.on_step)
      for (size_t k = i; k < end; ++k) opts.on_step(k, plan.steps[k]);
    i = end;
  }
  return {};
}

}  // namespace labctl
