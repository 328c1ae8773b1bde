#include "labctl/plan/exercise.h"

#include <fmt/format.h>

#include <algorithm>
#include <sstream>
#include <utility>
#include <vector>

#include "labctl/plan/render.h"
#include "labctl/plan/roles.h"

namespace labctl {
namespace {

constexpr std::size_t kWidth = 96;

void para(std::ostringstream& out, const std::string& indent, const std::string& text,
          const std::string& first = {}) {
  bool head = true;
  for (const auto& line : wrap_words(text, kWidth - indent.size() - first.size())) {
    out << indent << (head ? first : std::string(first.size(), ' ')) << line << "\n";
    head = false;
  }
}

}  // namespace

std::string render_exercise(const Topology& t) {
  std::ostringstream out;
  if (!t.exercise) return out.str();
  Roles r(t);
  out << t.name << ": an exercise, broken on purpose\n";
  if (!t.description.empty()) para(out, "  ", t.description);
  out << "\nTask\n";
  para(out, "  ", t.exercise->task);
  if (!t.exercise->look_at.empty()) {
    out << "\nWhere to look\n";
    for (const auto& l : t.exercise->look_at) para(out, "  ", l, "- ");
  }
  out << "\nThe lab\n";
  std::size_t role_w = 22;
  for (const auto& n : t.nodes) role_w = std::max(role_w, r.role_name(n).size());
  for (const auto& n : t.nodes) {
    // Every device with addresses: a VIP on lo or tunl0 is often what the task is about.
    std::string addrs;
    auto dev = [&](const std::string& name, const std::vector<IpPrefix>& list) {
      for (const auto& p : list) addrs += (addrs.empty() ? "" : ", ") + name + " " + p.str();
    };
    for (const auto& i : n.interfaces) dev(i.name, i.addresses);
    dev("lo", n.lo_addresses);
    dev("tunl0", n.tunl0_addresses);
    dev("ip6tnl0", n.ip6tnl0_addresses);
    for (const auto& tun : n.tunnels) dev(tun.name, tun.addresses);
    out << fmt::format("  {:<10} {:<{}} {}\n", n.name, r.role_name(n), role_w, addrs);
  }
  out << "\nHow to work on it\n";
  const std::vector<std::pair<std::string, std::string>> steps = {
      {"labctl up " + t.name, "build it (it comes up: the fault is in what it does)"},
      {"labctl check " + t.name, "which checks fail, and what labctl finds wrong"},
      {"labctl exec " + t.name + " NODE -- CMD", "look inside a node (ip, ipvsadm, sysctl, curl ...)"},
      {"labctl explain --toml " + t.name + " > mylab.toml", "the topology, to repair"},
      {"labctl up --replace ./mylab.toml", "then check again until every check passes"},
  };
  std::size_t w = 0;
  for (const auto& [cmd, _] : steps) w = std::max(w, cmd.size());
  for (const auto& [cmd, what] : steps) out << fmt::format("  {:<{}}  {}\n", cmd, w, what);
  // The plan is not shown: its steps would list what is there and so what is missing.
  return out.str();
}

nlohmann::json exercise_json(const Topology& t) {
  if (!t.exercise) return nullptr;
  Roles r(t);
  auto members = nlohmann::json::array();
  for (const auto& n : t.nodes) members.push_back({{"name", n.name}, {"role", r.role_name(n)}});
  return {{"name", t.name},
          {"description", t.description},
          {"task", t.exercise->task},
          {"look_at", t.exercise->look_at},
          {"members", members}};
}

std::string exercise_banner(const Topology& t) {
  if (!t.exercise) return {};
  return fmt::format("{} is an exercise: it is broken on purpose and some checks fail until it is repaired "
                     "(`labctl explain {}` states the task; a repaired copy without its [exercise] table "
                     "is a lab like any other)",
                     t.name, t.name);
}

std::string exercise_repaired(const Topology& t, bool all_passed) {
  if (!t.exercise || !all_passed) return {};
  return fmt::format("{}: every check passes, so the exercise is repaired. Its topology still has its "
                     "[exercise] table, which keeps it in exercise mode (`up` calls it broken, `explain` "
                     "shows the task, warnings are held back): delete that table from the repaired file "
                     "and `labctl up --replace` it to leave exercise mode",
                     t.name);
}

}  // namespace labctl
