// What every step has, for a step of any type: each type's own forms are in its block of a
// steps_*.cc file. And the names a lab's namespaces and the --dry-run script go by.
#include "labctl/plan/plan.h"

#include <string>
#include <type_traits>

namespace labctl {

bool is_rtnetlink_step(const Step& s) {
  return std::visit([](const auto& x) { return std::decay_t<decltype(x)>::kRtnetlink; }, s);
}

const std::string& step_netns(const Step& s) {
  return std::visit([](const auto& x) -> const std::string& { return x.ns; }, s);
}

std::string shell_command(const Step& s) {
  return std::visit([](const auto& x) { return x.shell(); }, s);
}

std::string undo_command(const Step& s) {
  return std::visit([](const auto& x) { return x.undo(); }, s);
}

std::string describe(const Step& s) {
  return std::visit([](const auto& x) { return x.describe(); }, s);
}

std::string step_type(const Step& s) {
  return std::string(std::visit([](const auto& x) { return std::decay_t<decltype(x)>::kType; }, s));
}

// The shell form keeps agent pids and logs apart from labctl's own state (state.h): the
// script has no journal, and labctl's state must stay labctl's alone.
std::string script_dir(const std::string& lab) { return "/run/labctl-script/" + lab; }

namespace {
constexpr std::string_view kMarkPrefix = "labctl:";
}  // namespace

std::string netns_mark(const std::string& lab) { return std::string(kMarkPrefix) + lab; }

std::optional<std::string> lab_of_mark(std::string_view mark) {
  if (!mark.starts_with(kMarkPrefix)) return std::nullopt;
  return std::string(mark.substr(kMarkPrefix.size()));
}

}  // namespace labctl
