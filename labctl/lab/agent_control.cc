#include "labctl/lab/agent_control.h"

#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <variant>

#include "labctl/base/fd.h"
#include "labctl/base/file.h"
#include "labctl/lab/netlink_executor.h"
#include "labctl/lab/state.h"
#include "labctl/plan/planner.h"

namespace labctl {
namespace {

std::string who(const std::string& node, const std::string& agent) {
  return "agent " + node + ":" + agent;
}

// Whether `pid` is the supervisor of this agent (and not a recycled pid): its command line
// names the state file it records to.
bool is_supervisor_of(pid_t pid, const std::string& state_path) {
  const std::string cmdline = read_text("/proc/" + std::to_string(pid) + "/cmdline");
  return cmdline.find("supervise") != std::string::npos &&
         cmdline.find(state_path) != std::string::npos;
}

}  // namespace

Result<AgentState> read_agent_state(const std::string& lab, const std::string& node,
                                    const std::string& agent) {
  const std::string path = agent_state_path(lab, node, agent);
  const std::string text = read_text(path);
  if (text.empty())
    return fail("no recorded state for " + who(node, agent) + " (" + path + " is missing or empty)",
                "is lab " + lab + " up? `labctl status " + lab + "`");
  auto st = parse_agent_state(text);
  if (!st) return tl::unexpected(st.error().context("state of " + who(node, agent)));
  return st;
}

Status stop_agent(const Topology& t, const std::string& node, const std::string& agent,
                  std::chrono::milliseconds wait) {
  TRY_ASSIGN(AgentState st, read_agent_state(t.name, node, agent));
  const std::string state_path = agent_state_path(t.name, node, agent);
  if (!agent_ok(st) || st.supervisor <= 0 || !is_supervisor_of(st.supervisor, state_path))
    return fail("cannot stop " + who(node, agent) + ": it is " + describe(st),
                "`labctl status " + t.name + "` shows its agents; `labctl logs " + t.name + " " +
                    node + "` why it ended");
  Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, st.supervisor, 0)));
  if (!pidfd) return fail_errno("pidfd_open of the supervisor of " + who(node, agent), errno);
  if (::syscall(SYS_pidfd_send_signal, pidfd.get(), SIGTERM, nullptr, 0) != 0)
    return fail_errno("SIGTERM to the supervisor of " + who(node, agent), errno);
  pollfd p{pidfd.get(), POLLIN, 0};
  int rc = ::poll(&p, 1, static_cast<int>(wait.count()));
  if (rc <= 0)
    return fail(who(node, agent) + " did not stop within " + std::to_string(wait.count()) +
                    " ms of SIGTERM",
                "see `labctl logs " + t.name + " " + node + "`");
  return {};
}

Status start_agent(const Topology& t, const std::string& node, const std::string& agent) {
  if (auto st = read_agent_state(t.name, node, agent);
      st && agent_ok(*st) && st->supervisor > 0 &&
      is_supervisor_of(st->supervisor, agent_state_path(t.name, node, agent)))
    return fail("cannot start " + who(node, agent) + ": it is " + describe(*st));
  Plan plan = make_plan(t);
  for (const auto& ps : plan.steps) {
    const auto* s = std::get_if<step::StartAgent>(&ps.step);
    if (!s || s->node != node || s->agent.name != agent) continue;
    NetlinkExecutor ex(t.name, nullptr, find_labagent());
    auto started = ex.apply(ps.step);
    if (!started)
      return tl::unexpected(started.error().context("start " + who(node, agent) + " again"));
    return {};
  }
  return fail("lab " + t.name + " has no " + who(node, agent));
}

}  // namespace labctl
