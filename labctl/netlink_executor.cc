#include "labctl/netlink_executor.h"

#include <chrono>
#include <optional>
#include <thread>
#include <variant>

#include "labctl/agent.h"
#include "labctl/ipvs.h"
#include "labctl/netns.h"
#include "labctl/overloaded.h"
#include "labctl/process.h"
#include "labctl/rtnl.h"
#include "labctl/sysctl.h"

namespace labctl {
namespace {

using namespace std::chrono_literals;

constexpr auto kAgentReadyTimeout = 5s;
constexpr auto kStopGrace = 1s;

}  // namespace

struct NetlinkExecutor::Netns {
  Fd fd;
  std::optional<Rtnl> rtnl;
  std::optional<Ipvs> ipvs;
};

std::string netns_mark(const std::string& lab) { return "labctl:" + lab; }

std::string read_netns_mark(const std::string& ns) {
  auto fd = open_netns(ns);
  if (!fd) return "";
  std::string alias;
  (void)with_netns(fd->get(), [&]() -> Status {
    TRY_ASSIGN(Rtnl rtnl, Rtnl::open(ns));
    TRY_ASSIGN(auto links, rtnl.links());
    for (const auto& l : links)
      if (l.name == "lo") alias = l.alias;
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

Status NetlinkExecutor::apply(const Step& step) {
  return std::visit(
      Overloaded{
          [&](const step::CreateNetns& s) -> Status {
            TRY_ASSIGN(auto n, make_netns(s));
            created_.insert(s.ns);
            netns_[s.ns] = std::move(n);
            return {};
          },
          [&](const step::CreateBridge& s) -> Status {
            TRY_ASSIGN(Netns * n, ns(s.ns));
            return n->rtnl->create_bridge(s.name, s.mtu);
          },
          [&](const step::CreateVeth& s) -> Status {
            TRY_ASSIGN(Netns * n, ns(s.ns));
            TRY_ASSIGN(Netns * peer, ns(s.peer_ns));
            return n->rtnl->create_veth(s.name, s.peer_name, peer->fd.get(), s.mtu, s.mac,
                                        s.peer_mac);
          },
          [&](const step::SetMaster& s) -> Status {
            TRY_ASSIGN(Netns * n, ns(s.ns));
            return n->rtnl->set_master(s.dev, s.master);
          },
          [&](const step::LinkUp& s) -> Status {
            TRY_ASSIGN(Netns * n, ns(s.ns));
            return n->rtnl->link_up(s.dev);
          },
          [&](const step::AddAddress& s) -> Status {
            TRY_ASSIGN(Netns * n, ns(s.ns));
            return n->rtnl->add_address(s.dev, s.addr);
          },
          [&](const step::AddRoute& s) -> Status {
            TRY_ASSIGN(Netns * n, ns(s.ns));
            return n->rtnl->add_route(s.route);
          },
          [&](const step::SetSysctl& s) -> Status {
            TRY_ASSIGN(Netns * n, ns(s.ns));
            return with_netns(n->fd.get(), [&] { return write_sysctl(s.key, s.value); });
          },
          [&](const step::EnableIpip& s) -> Status {
            TRY_ASSIGN(Netns * n, ns(s.ns));
            return n->rtnl->ensure_ipip();
          },
          [&](const step::CreateIpip& s) -> Status {
            TRY_ASSIGN(Netns * n, ns(s.ns));
            return n->rtnl->create_ipip(s.tunnel);
          },
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
          [&](const step::StartAgent& s) -> Status {
            TRY_ASSIGN(Netns * n, ns(s.ns));
            SpawnOptions o;
            o.netns_fd = n->fd.get();
            o.argv = agent_argv(s.agent, s.node, labagent_, /*with_ready_fd=*/true);
            o.env = {"LABCTL_LAB=" + s.lab, "LABCTL_NODE=" + s.node};
            o.log_path = agent_log_path(s.lab, s.node, s.agent.name);
            if (agent_signals_ready(s.agent)) o.ready_timeout = kAgentReadyTimeout;
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
    return n->rtnl->set_alias("lo", netns_mark(lab_));
  }));
  auto fd = open_netns(s.ns);
  if (!fd) {
    (void)delete_netns(s.ns);
    return tl::unexpected(fd.error());
  }
  n->fd = std::move(*fd);
  return n;
}

std::vector<Status> NetlinkExecutor::apply_independent(std::span<const Step> steps) {
  for (const auto& s : steps)
    if (!std::holds_alternative<step::CreateNetns>(s)) return Executor::apply_independent(steps);
  const size_t workers = std::min<size_t>(2, steps.size());
  std::vector<Result<std::unique_ptr<Netns>>> made;
  for (size_t i = 0; i < steps.size(); ++i) made.emplace_back(fail("not attempted"));
  std::vector<std::thread> threads;
  for (size_t w = 0; w < workers; ++w)
    threads.emplace_back([&, w] {
      for (size_t i = w; i < steps.size(); i += workers)
        made[i] = make_netns(std::get<step::CreateNetns>(steps[i]));
    });
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
