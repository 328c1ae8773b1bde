#include "labctl/lab/netlink_executor.h"

#include <chrono>
#include <optional>
#include <thread>
#include <type_traits>
#include <variant>

#include "labctl/plan/agent.h"
#include "labctl/kernel/ipvs.h"
#include "labctl/kernel/netns.h"
#include "labctl/kernel/nft.h"
#include "labctl/kernel/qdisc.h"
#include "labctl/base/overloaded.h"
#include "labctl/kernel/process.h"
#include "labctl/kernel/rtnl.h"
#include "labctl/kernel/sysctl.h"
#include "labctl/lab/state.h"

namespace labctl {
namespace {

using namespace std::chrono_literals;

constexpr auto kSupervisorGrace = 2s;
constexpr auto kStopGrace = 1s;

}  // namespace

struct NetlinkExecutor::Netns {
  Fd fd;
  std::optional<Rtnl> rtnl;
  std::optional<Ipvs> ipvs;
};

std::string read_netns_mark(const std::string& ns) {
  auto fd = open_netns(ns);
  if (!fd) return "";
  std::string alias;
  (void)with_netns(fd->get(), [&]() -> Status {
    TRY_ASSIGN(Rtnl rtnl, Rtnl::open(ns));
    TRY_ASSIGN(LinkInfo lo, rtnl.link("lo"));
    alias = lo.alias;
    return {};
  });
  return alias;
}

NetlinkExecutor::NetlinkExecutor(std::string lab, Journal* journal, std::string labagent)
    : lab_(std::move(lab)), journal_(journal), labagent_(std::move(labagent)) {}

NetlinkExecutor::~NetlinkExecutor() = default;

Result<NetlinkExecutor::Netns*> NetlinkExecutor::ns(const std::string& name) {
  if (auto it = netns_.find(name); it != netns_.end()) return it->second.get();
  // A namespace made earlier (by another run): open it and a socket inside it.
  auto n = std::make_unique<Netns>();
  TRY_ASSIGN(n->fd, open_netns(name));
  TRY(with_netns(n->fd.get(), [&]() -> Status {
    TRY_ASSIGN(n->rtnl, Rtnl::open(name));
    return {};
  }));
  return (netns_[name] = std::move(n)).get();
}

// One rtnetlink step as a request of `b`, a batch on its namespace's socket. Errors go into
// the batch too (a call's status is also its slot's).
void NetlinkExecutor::add_request(RtnlBatch& b, const Step& step) {
  std::visit(
      Overloaded{
          [&](const step::CreateBridge& s) { (void)b.create_bridge(s.name, s.mtu); },
          [&](const step::CreateVeth& s) {
            auto peer = ns(s.peer_ns);
            if (!peer) {
              (void)b.add(tl::unexpected(peer.error()));
              return;
            }
            (void)b.create_veth(s.name, s.peer_name, (*peer)->fd.get(), s.mtu, s.mac, s.peer_mac);
          },
          [&](const step::SetMaster& s) { (void)b.set_master(s.dev, s.master); },
          [&](const step::SetImpairment& s) {
            (void)b.add_for(s.dev, [&](int ifindex) {
              return qdisc::set_request(ifindex, s.dev, s.impair, QdiscChange::Replace, s.mtu);
            });
          },
          [&](const step::LinkUp& s) { (void)b.link_up(s.dev); },
          [&](const step::AddAddress& s) {
            (void)b.add_address(s.dev, s.addr, s.scope, s.deprecated);
          },
          [&](const step::AddRoute& s) { (void)b.add_route(s.route); },
          [&](const step::EnableIpip& s) {
            (void)(s.family == AF_INET6 ? b.ensure_ip6tnl() : b.ensure_ipip());
          },
          [&](const step::CreateIpip& s) { (void)b.create_ipip(s.tunnel); },
          // No catch-all for rtnetlink steps: one without its case here does not compile.
          [&](const auto& s) requires(!std::decay_t<decltype(s)>::kRtnetlink) {
            (void)b.add(fail(describe(Step{s}) + ": not an rtnetlink step"));
          },
      },
      step);
}

Status NetlinkExecutor::apply(const Step& step) {
  if (is_rtnetlink_step(step) || std::holds_alternative<step::SetSysctl>(step)) {
    std::vector<Status> st = apply_run(std::span(&step, 1));
    return std::move(st.front());
  }
  return std::visit(
      Overloaded{
          [&](const step::CreateNetns& s) -> Status {
            TRY_ASSIGN(auto n, make_netns(s));
            created_.insert(s.ns);
            netns_[s.ns] = std::move(n);
            return {};
          },
          // Rtnetlink steps and sysctls, handled above; any other step without its case
          // here does not compile.
          [&](const auto& s) -> Status
            requires(std::decay_t<decltype(s)>::kRtnetlink ||
                     std::is_same_v<std::decay_t<decltype(s)>, step::SetSysctl>)
          { return fail(describe(Step{s}) + ": no way to carry it out"); },
          [&](const step::AddIpvsService& s) -> Status {
            TRY_ASSIGN(Netns * n, ns(s.ns));
            if (!n->ipvs) TRY(with_netns(n->fd.get(), [&]() -> Status {
                TRY_ASSIGN(n->ipvs, Ipvs::open(s.ns));
                return {};
              }));
            return n->ipvs->add_service(s.service);
          },
          [&](const step::AddIpvsDest& s) -> Status {
            TRY_ASSIGN(Netns * n, ns(s.ns));
            if (!n->ipvs) TRY(with_netns(n->fd.get(), [&]() -> Status {
                TRY_ASSIGN(n->ipvs, Ipvs::open(s.ns));
                return {};
              }));
            return n->ipvs->add_dest(s.service, s.dest);
          },
          [&](const step::StartIpvsSync& s) -> Status {
            TRY_ASSIGN(Netns * n, ns(s.ns));
            if (!n->ipvs) TRY(with_netns(n->fd.get(), [&]() -> Status {
                TRY_ASSIGN(n->ipvs, Ipvs::open(s.ns));
                return {};
              }));
            IpvsDaemon d;
            d.role = s.master ? IpvsDaemon::Role::Master : IpvsDaemon::Role::Backup;
            d.interface = s.interface;
            d.sync_id = s.id;
            return n->ipvs->start_daemon(d);
          },
          // Not in its namespace's batch: the device is created through a socket of this
          // thread's own namespace (the host's, the underlay), which keeps its UDP socket
          // there, and born straight in the switch's namespace; then it joins the bridge and
          // gets its remotes there.
          [&](const step::CreateVxlan& s) -> Status {
            TRY_ASSIGN(Netns * n, ns(s.ns));
            TRY_ASSIGN(Rtnl here, Rtnl::open());
            VxlanLink v{s.name, s.vni, s.local, s.port, s.mtu, s.mac};
            TRY(here.apply([&](RtnlBatch& b) { return b.create_vxlan(v, n->fd.get()); }));
            return n->rtnl->apply([&](RtnlBatch& b) -> Status {
              (void)b.set_master(s.name, s.master);
              for (const auto& r : s.remotes) (void)b.fdb_append(s.name, r);
              return {};
            });
          },
          [&](const step::ApplyNftRules& s) -> Status {
            TRY_ASSIGN(Netns * n, ns(s.ns));
            return with_netns(n->fd.get(), [&] { return nft_apply(s.ruleset, describe(Step{s})); });
          },
          [&](const step::StartAgent& s) -> Status {
            TRY_ASSIGN(Netns * n, ns(s.ns));
            TRY(make_agent_dirs(s.lab, s.node));
            // Every agent runs under `labagent supervise`, which waits until it is ready
            // (listening on its port, or alive), records how it ends and may restart it.
            Agent agent = s.agent;
            if (agent_needs_dir(agent)) agent.params["dir"] = agent_dir(s.lab, s.node, agent.name, agent_dir_name(agent));
            std::vector<std::string> argv = agent_argv(agent, s.node, labagent_);
            const std::string what = "agent " + s.node + ":" + s.agent.name;
            auto program = resolve_program(argv.at(0));
            if (!program) return tl::unexpected(program.error().context("start " + what));
            argv[0] = *program;
            SpawnOptions o;
            o.netns_fd = n->fd.get();
            o.argv = supervised_argv(s.agent, s.node, labagent_,
                                     agent_state_path(s.lab, s.node, s.agent.name), argv);
            o.env = {"LABCTL_LAB=" + s.lab, "LABCTL_NODE=" + s.node};
            o.log_path = agent_log_path(s.lab, s.node, s.agent.name);
            o.what = what;
            // The supervisor gives up at the agent's ready timeout and says why; this is a backstop.
            o.ready_timeout = agent_ready_timeout(s.agent) + kSupervisorGrace;
            TRY_ASSIGN(pid_t pid, spawn_in_netns(o));
            if (journal_) TRY(journal_->append({"agent", s.node + "/" + s.agent.name, pid}));
            return {};
          },
      },
      step);
}

Result<std::unique_ptr<NetlinkExecutor::Netns>> NetlinkExecutor::make_netns(
    const step::CreateNetns& s) {
  // Journal first: a SIGKILL right after leaves a record naming what may exist.
  if (journal_) TRY(journal_->append({"netns", s.ns, 0}));
  auto n = std::make_unique<Netns>();
  // The mark goes on before the namespace is published under /run/netns, so a namespace
  // of ours is never seen unmarked.
  TRY(create_netns(s.ns, [&]() -> Status {
    TRY_ASSIGN(n->rtnl, Rtnl::open(s.ns));
    return n->rtnl->apply([&](RtnlBatch& b) { return b.set_alias("lo", netns_mark(lab_)); });
  }));
  auto fd = open_netns(s.ns);
  if (!fd) {
    (void)delete_netns(s.ns);
    return tl::unexpected(fd.error());
  }
  n->fd = std::move(*fd);
  return n;
}

std::vector<Status> NetlinkExecutor::apply_run(std::span<const Step> steps) {
  bool all_netns = true, all_rtnl_here = true, all_sysctl_here = true;
  for (const auto& s : steps) {
    const bool here = step_netns(s) == step_netns(steps[0]);
    all_netns = all_netns && std::holds_alternative<step::CreateNetns>(s);
    all_rtnl_here = all_rtnl_here && is_rtnetlink_step(s) && here;
    all_sysctl_here = all_sysctl_here && std::holds_alternative<step::SetSysctl>(s) && here;
  }
  if (all_rtnl_here) return apply_batch(steps);
  if (all_sysctl_here) return write_sysctls(steps);
  if (!all_netns) return Executor::apply_run(steps);
  return make_netns_concurrently(steps);
}

// One entry into the namespace for all of its sysctls; the first failure ends the run.
std::vector<Status> NetlinkExecutor::write_sysctls(std::span<const Step> steps) {
  std::vector<Status> out;
  auto n = ns(step_netns(steps[0]));
  Status entered = !n ? Status(tl::unexpected(n.error())) : with_netns((*n)->fd.get(), [&] {
    for (const auto& s : steps) {
      const auto& w = std::get<step::SetSysctl>(s);
      out.push_back(write_sysctl(w.key, w.value, &sysctl_fs_));
      if (!out.back()) break;
    }
    return Status{};
  });
  if (!entered) out.push_back(std::move(entered));
  while (out.size() < steps.size()) out.push_back(fail("not attempted"));
  return out;
}

// A run of rtnetlink requests in one namespace goes out in as few sendmsg calls as the
// socket allows; each ACK is its step's status, so errors still name their exact step.
std::vector<Status> NetlinkExecutor::apply_batch(std::span<const Step> steps) {
  auto n = ns(step_netns(steps[0]));
  if (!n) return std::vector<Status>(steps.size(), tl::unexpected(n.error()));
  RtnlBatch b = (*n)->rtnl->batch();
  for (const auto& s : steps) add_request(b, s);
  return b.commit_each();
}

std::vector<Status> NetlinkExecutor::make_netns_concurrently(std::span<const Step> steps) {
  const size_t workers = std::min<size_t>(2, steps.size());
  std::vector<Result<std::unique_ptr<Netns>>> made;
  for (size_t i = 0; i < steps.size(); ++i) made.emplace_back(fail("not attempted"));
  auto work = [&](size_t w) {
    for (size_t i = w; i < steps.size(); i += workers)
      made[i] = make_netns(std::get<step::CreateNetns>(steps[i]));
  };
  std::vector<std::thread> threads;  // this thread is worker 0: one thread fewer to start
  for (size_t w = 1; w < workers; ++w) threads.emplace_back(work, w);
  work(0);
  for (auto& t : threads) t.join();
  std::vector<Status> out;
  for (size_t i = 0; i < steps.size(); ++i) {
    if (!made[i]) {
      out.push_back(tl::unexpected(made[i].error()));
      continue;
    }
    const auto& ns = std::get<step::CreateNetns>(steps[i]).ns;
    created_.insert(ns);
    netns_[ns] = std::move(*made[i]);
    out.emplace_back();
  }
  return out;
}

Status NetlinkExecutor::revert(const Step& step) {
  if (const auto* s = std::get_if<step::CreateNetns>(&step)) {
    stop_processes_in_netns(netns_path(s->ns), kStopGrace);
    netns_.erase(s->ns);  // closes our sockets into it
    created_.erase(s->ns);
    return delete_netns(s->ns);
  }
  // Everything else, agents included, lives inside a namespace this run created and goes
  // with it: reverting CreateNetns stops every process in it first.
  if (created_.count(step_netns(step))) return {};
  return fail("cannot undo " + describe(step) + ": its namespace was not made by this run",
              "run `labctl down " + lab_ + "`");
}

}  // namespace labctl
