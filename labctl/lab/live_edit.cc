#include "labctl/lab/live_edit.h"

#include <linux/if.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <functional>
#include <thread>
#include <variant>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "labctl/base/file.h"
#include "labctl/base/overloaded.h"
#include "labctl/kernel/netns.h"
#include "labctl/kernel/process.h"
#include "labctl/kernel/qdisc.h"
#include "labctl/kernel/rtnl.h"
#include "labctl/lab/agent_control.h"
#include "labctl/lab/netlink_executor.h"
#include "labctl/lab/state.h"
#include "labctl/plan/planner.h"

namespace labctl {
namespace {

struct KindName {
  LiveEditKind kind;
  const char* name;
};
constexpr KindName kKinds[] = {
    {LiveEditKind::LinkDown, "link-down"}, {LiveEditKind::LinkUp, "link-up"},
    {LiveEditKind::Impair, "impair"},      {LiveEditKind::Clear, "clear"},
    {LiveEditKind::NodeCrash, "node-crash"}, {LiveEditKind::NodeStart, "node-start"},
};

std::string names_of(const std::vector<std::string>& v) {
  return v.empty() ? "none" : fmt::format("{}", fmt::join(v, ", "));
}

// Each key set in `imp`, in tc's spelling, as `labctl link ... impair` takes it back.
nlohmann::json impairment_words(const Impairment& imp) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& k : impair_keys())
    std::visit(Overloaded{
                   [&](std::optional<uint64_t> Impairment::*f) {
                     if (imp.*f) j[std::string(k.name)] = format_rate(*(imp.*f));
                   },
                   [&](std::optional<std::chrono::nanoseconds> Impairment::*f) {
                     if (imp.*f) j[std::string(k.name)] = format_time(*(imp.*f));
                   },
                   [&](std::optional<Probability> Impairment::*f) {
                     if (imp.*f) j[std::string(k.name)] = format_percent(*(imp.*f));
                   },
                   [&](std::optional<uint32_t> Impairment::*f) {
                     if (imp.*f) j[std::string(k.name)] = std::to_string(*(imp.*f));
                   },
               },
               k.field);
  return j;
}

Status record_edit(const std::string& lab, const LiveEdit& e) {
  TRY_ASSIGN(auto edits, recorded_live_edits(lab));
  edits.push_back(e);
  nlohmann::json all = nlohmann::json::array();
  for (const auto& x : edits) all.push_back(live_edit_json(x));
  return write_file_atomically(live_edits_path(lab), all.dump(2) + "\n");
}

// Runs `fn` with an rtnetlink socket of namespace `ns`.
Status in_ns(const std::string& ns, const std::function<Status(Rtnl&)>& fn) {
  TRY_ASSIGN(Fd fd, open_netns(ns));
  return run_in_netns(fd.get(), [&]() -> Status {
    TRY_ASSIGN(Rtnl rtnl, Rtnl::open(ns));
    return fn(rtnl);
  });
}

Result<LinkInfo> read_link(const std::string& ns, const std::string& dev) {
  LinkInfo info;
  TRY(in_ns(ns, [&](Rtnl& r) -> Status {
    TRY_ASSIGN(info, r.link(dev));
    return {};
  }));
  return info;
}

bool carrier(const LinkInfo& l) { return (l.flags & IFF_LOWER_UP) != 0; }
// Operationally up: the kernel's link watcher has seen the carrier come back (up to a
// second after it does) and told the bridge, which forwards on the port only then.
bool running(const LinkInfo& l) { return carrier(l) && (l.flags & IFF_RUNNING) != 0; }
constexpr int kLinkWaitRounds = 300;  ///< Of 10 ms: the link watcher may take a second.

// Puts back what the kernel dropped when `node`'s interface `dev` went down: its addresses
// there (IPv6 ones are removed on down) and the node's routes (those over `dev` are
// removed), as `up` added them. What is still there is left alone.
Status restore_node_config(const Topology& t, const std::string& node, const std::string& dev) {
  Plan plan = make_plan(t);
  NetlinkExecutor ex(t.name, nullptr, "");
  for (const auto& ps : plan.steps) {
    if (ps.node != node) continue;
    const auto* a = std::get_if<step::AddAddress>(&ps.step);
    const bool route = std::holds_alternative<step::AddRoute>(ps.step);
    if (!(a && a->dev == dev) && !route) continue;
    if (Status st = ex.apply(ps.step); !st && st.error().errnum != EEXIST)
      return tl::unexpected(st.error().context("restore " + node + "'s configuration"));
  }
  return {};
}

std::string end_name(const LinkEnds& l) { return l.node + ":" + l.interface; }

Result<const Node*> find_node(const Topology& t, const std::string& node) {
  if (const Node* n = t.node(node)) return n;
  std::vector<std::string> names;
  for (const auto& x : t.nodes) names.push_back(x.name);
  return fail("lab " + t.name + " has no node " + node, "its nodes: " + names_of(names));
}

// SIGKILL to every process in the namespace at `ns_path` (no SIGTERM first: a keepalived
// told to stop would hand its VIP over gracefully), then to any that entered it meanwhile;
// waits until they are gone. Every one is stopped (SIGSTOP) before any is killed: a child
// whose parent dies first gets its parent-death signal (keepalived's VRRP child: SIGTERM,
// and a goodbye advert) and must not run to act on it. A pid recycled since the scan (no longer in the
// namespace) is left alone. Returns how many were killed.
Result<size_t> kill_all_in_netns(const std::string& ns_path) {
  struct stat ns_st{};
  if (::stat(ns_path.c_str(), &ns_st) != 0) return fail_errno("stat " + ns_path, errno);
  size_t killed = 0;
  for (int round = 0; round < 5; ++round) {
    const auto pids = pids_in_netns(ns_path);
    if (pids.empty()) return killed;
    std::vector<Fd> fds;
    for (pid_t p : pids) {
      Fd fd(static_cast<int>(::syscall(SYS_pidfd_open, p, 0)));
      struct stat st{};
      const std::string net = "/proc/" + std::to_string(p) + "/ns/net";
      if (!fd || ::stat(net.c_str(), &st) != 0 || st.st_ino != ns_st.st_ino) continue;
      if (::syscall(SYS_pidfd_send_signal, fd.get(), SIGSTOP, nullptr, 0) == 0)
        fds.push_back(std::move(fd));
    }
    for (const auto& fd : fds)
      if (::syscall(SYS_pidfd_send_signal, fd.get(), SIGKILL, nullptr, 0) == 0) ++killed;
    for (const auto& fd : fds) {
      pollfd p{fd.get(), POLLIN, 0};
      (void)::poll(&p, 1, 2000);
    }
  }
  if (!pids_in_netns(ns_path).empty())
    return fail("processes keep appearing in " + ns_path + " after SIGKILL",
                "is something starting them again? `labctl status` shows them");
  return killed;
}

}  // namespace

Result<std::pair<std::string, std::string>> parse_endpoint(const std::string& text) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
    return fail("expected NODE:IF (a node and one of its interfaces), not '" + text + "'",
                "for example client:eth0; `labctl link LAB` lists the lab's links");
  return std::pair{text.substr(0, colon), text.substr(colon + 1)};
}

Result<Impairment> parse_impair_args(const std::vector<std::string>& words) {
  if (words.empty())
    return fail("impair: expected KEY=VALUE ...",
                fmt::format("keys: {} (tc's spellings: rate=10mbit delay=20ms loss=1%)",
                            fmt::join(impair_key_names(), ", ")));
  Impairment imp;
  for (const auto& w : words) {
    const auto eq = w.find('=');
    if (eq == std::string::npos || eq == 0)
      return fail("impair: expected KEY=VALUE, not '" + w + "'",
                  fmt::format("keys: {}", fmt::join(impair_key_names(), ", ")));
    const std::string key = w.substr(0, eq);
    // Its errors name the key and the accepted forms.
    TRY(set_impair_key(imp, key, std::string_view(w).substr(eq + 1)));
  }
  for (const auto& p : impairment_problems(imp))
    return fail("'" + std::string(p.key) + "' " + p.message, p.hint);
  return imp;
}

Result<LinkEnds> resolve_link(const Topology& t, const std::string& node,
                              const std::string& interface) {
  TRY_ASSIGN(const Node* n, find_node(t, node));
  const Interface* i = nullptr;
  std::vector<std::string> ifs;
  for (const auto& x : n->interfaces) {
    ifs.push_back(x.name);
    if (x.name == interface) i = &x;
  }
  if (!i)
    return fail("node " + node + " has no interface " + interface,
                "its interfaces: " + names_of(ifs));
  LinkEnds l;
  l.node = node;
  l.interface = interface;
  l.ns = netns_name(t.name, node);
  if (!i->sw.empty()) {
    l.far_ns = netns_name(t.name, i->sw);
    l.far_dev = i->port;
    l.far = "switch " + i->sw + " port " + i->port;
  } else {
    l.far_ns = netns_name(t.name, i->peer_node);
    l.far_dev = i->peer_ifname;
    l.far = "node " + i->peer_node + " " + i->peer_ifname;
    l.far_is_node = true;
    l.far_node = i->peer_node;
  }
  return l;
}

std::vector<LinkEnds> lab_links(const Topology& t) {
  std::vector<LinkEnds> out;
  for (const auto& n : t.nodes)
    for (const auto& i : n.interfaces) {
      if (i.sw.empty() && i.peer_node < n.name) continue;  // listed from the other node
      if (auto l = resolve_link(t, n.name, i.name)) out.push_back(std::move(*l));
    }
  return out;
}

bool LiveState::empty() const {
  return links_down.empty() && impaired.empty() && cleared.empty() && crashed.empty();
}

LiveState fold_live_edits(const std::vector<LiveEdit>& edits) {
  LiveState s;
  for (const auto& e : edits) {
    const std::pair key{e.node, e.interface};
    switch (e.kind) {
      case LiveEditKind::LinkDown: s.links_down.insert(key); break;
      case LiveEditKind::LinkUp: s.links_down.erase(key); break;
      case LiveEditKind::Impair:
        s.impaired[key] = e.impairment;
        s.cleared.erase(key);
        break;
      case LiveEditKind::Clear:
        s.impaired.erase(key);
        s.cleared.insert(key);
        break;
      case LiveEditKind::NodeCrash: s.crashed.insert(e.node); break;
      case LiveEditKind::NodeStart: s.crashed.erase(e.node); break;
    }
  }
  return s;
}

const char* to_string(LiveEditKind k) {
  for (const auto& x : kKinds)
    if (x.kind == k) return x.name;
  return "?";
}

nlohmann::json live_edit_json(const LiveEdit& e) {
  nlohmann::json j = {{"edit", to_string(e.kind)}, {"node", e.node}};
  if (!e.interface.empty()) j["interface"] = e.interface;
  if (e.kind == LiveEditKind::Impair) j["impair"] = impairment_words(e.impairment);
  return j;
}

Result<LiveEdit> live_edit_from_json(const nlohmann::json& j) {
  try {
    LiveEdit e;
    const auto word = j.at("edit").get<std::string>();
    bool known = false;
    for (const auto& x : kKinds)
      if (word == x.name) {
        e.kind = x.kind;
        known = true;
      }
    if (!known) return fail("unknown live edit " + j.at("edit").dump());
    e.node = j.at("node").get<std::string>();
    e.interface = j.value("interface", "");
    if (j.contains("impair"))
      for (const auto& [key, value] : j.at("impair").items())
        if (Status st = set_impair_key(e.impairment, key, value.get<std::string>()); !st)
          return fail("live edit record: '" + key + "' " + st.error().message);
    return e;
  } catch (const nlohmann::json::exception& ex) {
    return fail(std::string("malformed live edit record: ") + ex.what());
  }
}

nlohmann::json live_state_json(const LiveState& s) {
  nlohmann::json j = {{"links_down", nlohmann::json::array()},
                      {"impaired", nlohmann::json::array()},
                      {"cleared", nlohmann::json::array()},
                      {"crashed", s.crashed}};
  for (const auto& [n, i] : s.links_down) j["links_down"].push_back(n + ":" + i);
  for (const auto& [k, imp] : s.impaired)
    j["impaired"].push_back({{"link", k.first + ":" + k.second},
                             {"impair", impairment_words(imp)},
                             {"summary", impairment_summary(imp)}});
  for (const auto& [n, i] : s.cleared) j["cleared"].push_back(n + ":" + i);
  return j;
}

std::string render_live_state(const LiveState& s) {
  if (s.empty()) return "";
  std::string out = "  live edits (labctl link, labctl node):\n";
  for (const auto& [n, i] : s.links_down) out += "    link " + n + ":" + i + " cut\n";
  for (const auto& n : s.crashed) out += "    node " + n + " crashed\n";
  for (const auto& [k, imp] : s.impaired)
    out += "    link " + k.first + ":" + k.second + " impaired: " + impairment_summary(imp) + "\n";
  for (const auto& [n, i] : s.cleared) out += "    link " + n + ":" + i + " impairment cleared\n";
  return out;
}

std::string live_edits_path(const std::string& lab) { return state_dir(lab) + "/live-edits.json"; }

Result<std::vector<LiveEdit>> recorded_live_edits(const std::string& lab) {
  TRY(check_lab_name(lab));
  std::vector<LiveEdit> out;
  const std::string text = read_text(live_edits_path(lab));
  if (text.empty()) return out;
  nlohmann::json all = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!all.is_array())
    return fail(live_edits_path(lab) + " is not a JSON array of edits",
                "remove it (the lab stays as it is; `labctl link " + lab + "` shows its links)");
  for (const auto& j : all) {
    TRY_ASSIGN(LiveEdit e, live_edit_from_json(j));
    out.push_back(std::move(e));
  }
  return out;
}

Result<std::string> set_link(const Topology& t, const LinkEnds& l, bool up) {
  TRY_ASSIGN(LabLock lock, LabLock::acquire(t.name));
  TRY(in_ns(l.far_ns, [&](Rtnl& r) -> Status {
    return r.apply([&](RtnlBatch& b) { return up ? b.link_up(l.far_dev) : b.link_down(l.far_dev); });
  }));
  if (up && l.far_is_node) TRY(restore_node_config(t, l.far_node, l.far_dev));
  // Read back: a veth's carrier follows its peer at once; a restored link is done when
  // both ends run (the link watcher has passed, the bridge forwards).
  LinkInfo near, far;
  for (int i = 0; i < kLinkWaitRounds; ++i) {
    TRY_ASSIGN(near, read_link(l.ns, l.interface));
    TRY_ASSIGN(far, read_link(l.far_ns, l.far_dev));
    if (up ? running(near) && running(far) : !carrier(near) && !carrier(far)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (up ? !running(near) || !running(far) : carrier(near) || carrier(far))
    return fail(fmt::format("link {} ({}): the kernel shows carrier {} here and {} there after "
                            "setting it {}",
                            end_name(l), l.far, carrier(near) ? "on" : "off",
                            carrier(far) ? "on" : "off", up ? "up" : "down"),
                "`labctl link " + t.name + "` shows the lab's links");
  LiveEdit e{up ? LiveEditKind::LinkUp : LiveEditKind::LinkDown, l.node, l.interface, {}};
  if (Status st = record_edit(t.name, e); !st)
    return fail("the link is " + std::string(up ? "up" : "cut") + " but recording it failed: " +
                st.error().str());
  return up ? fmt::format("link {} restored: {} up, carrier on at both ends", end_name(l), l.far)
            : fmt::format("link {} cut: {} set down; {} has no carrier (NO-CARRIER), as with "
                          "a pulled cable",
                          end_name(l), l.far, end_name(l));
}

Result<std::string> impair_link(const Topology& t, const LinkEnds& l, const Impairment& imp) {
  TRY_ASSIGN(LabLock lock, LabLock::acquire(t.name));
  int mtu = 0;
  if (const Node* n = t.node(l.node))
    for (const auto& i : n->interfaces)
      if (i.name == l.interface) mtu = i.mtu;
  QdiscInfo root;
  Status set = in_ns(l.ns, [&](Rtnl& r) -> Status {
    TRY(imp.empty() ? clear_impairment(r, l.interface)
                    : set_impairment(r, l.interface, imp, QdiscChange::Replace, mtu));
    TRY_ASSIGN(root, root_qdisc(r, l.interface));
    return {};
  });
  if (!set) return tl::unexpected(set.error());
  if (!imp.empty() && (!root.impairment || *root.impairment != canonical(imp)))
    return fail(fmt::format("{}: the kernel reads back {} '{}', not what was set ({})",
                            end_name(l), root.kind.empty() ? "no qdisc" : root.kind,
                            root.impairment ? impairment_summary(*root.impairment) : "",
                            impairment_summary(imp)));
  if (imp.empty() && root.impairment)
    return fail(end_name(l) + ": the kernel still shows " + root.kind + " " +
                impairment_summary(*root.impairment) + " after clearing it");
  LiveEdit e{imp.empty() ? LiveEditKind::Clear : LiveEditKind::Impair, l.node, l.interface, imp};
  if (Status st = record_edit(t.name, e); !st)
    return fail("the impairment is in place but recording it failed: " + st.error().str());
  if (imp.empty()) return fmt::format("link {}: impairment cleared (no root qdisc of its own)", end_name(l));
  return fmt::format("link {}: egress {} ({})", end_name(l), impairment_summary(*root.impairment),
                     root.kind);
}

Result<std::string> crash_node(const Topology& t, const std::string& node) {
  TRY_ASSIGN(const Node* n, find_node(t, node));
  TRY_ASSIGN(LabLock lock, LabLock::acquire(t.name));
  const std::string ns = netns_name(t.name, node);
  TRY_ASSIGN(size_t killed, kill_all_in_netns(netns_path(ns)));
  std::vector<std::string> ifs;
  Status downed = in_ns(ns, [&](Rtnl& r) -> Status {
    for (const auto& i : n->interfaces) {
      TRY(r.apply([&](RtnlBatch& b) { return b.link_down(i.name); }));
      TRY_ASSIGN(LinkInfo l, r.link(i.name));
      if (l.up) return fail(node + ":" + i.name + " is still up after setting it down");
      ifs.push_back(i.name);
    }
    return {};
  });
  if (!downed) return tl::unexpected(downed.error());
  if (Status st = record_edit(t.name, {LiveEditKind::NodeCrash, node, "", {}}); !st)
    return fail("node " + node + " crashed but recording it failed: " + st.error().str());
  return fmt::format("node {} crashed: {} process{} killed (SIGKILL), interface{} {} down", node,
                     killed, killed == 1 ? "" : "es", ifs.size() == 1 ? "" : "s",
                     ifs.empty() ? "none" : fmt::format("{}", fmt::join(ifs, ", ")));
}

Result<std::string> start_node(const Topology& t, const std::string& node) {
  TRY_ASSIGN(const Node* n, find_node(t, node));
  TRY_ASSIGN(LabLock lock, LabLock::acquire(t.name));
  const std::string ns = netns_name(t.name, node);
  TRY(in_ns(ns, [&](Rtnl& r) -> Status {
    return r.apply([&](RtnlBatch& b) -> Status {
      Status all;
      for (const auto& i : n->interfaces)
        if (Status st = b.link_up(i.name); !st && all) all = st;
      return all;
    });
  }));
  for (const auto& i : n->interfaces) TRY(restore_node_config(t, node, i.name));
  // Until each interface runs (a peer cut by `labctl link` never gives it carrier: then
  // the wait ends without it).
  for (const auto& i : n->interfaces)
    for (int k = 0; k < kLinkWaitRounds; ++k) {
      auto l = read_link(ns, i.name);
      if (!l || running(*l)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  std::vector<std::string> started;
  for (const auto& a : n->agents) {
    TRY(start_agent(t, node, a.name));
    started.push_back(a.name);
  }
  if (Status st = record_edit(t.name, {LiveEditKind::NodeStart, node, "", {}}); !st)
    return fail("node " + node + " started but recording it failed: " + st.error().str());
  return fmt::format("node {} started: interfaces up, {}", node,
                     started.empty() ? std::string("no agents")
                                     : fmt::format("agent{} {} ready", started.size() == 1 ? "" : "s",
                                                   fmt::join(started, ", ")));
}

std::vector<LinkRow> read_links(const Topology& t) {
  std::vector<LinkRow> rows;
  for (auto& l : lab_links(t)) {
    LinkRow row;
    row.ends = l;
    auto near = read_link(l.ns, l.interface);
    auto far = read_link(l.far_ns, l.far_dev);
    if (!near || !far) {
      row.error = (!near ? near.error() : far.error()).str();
      rows.push_back(std::move(row));
      continue;
    }
    row.state = !near->up || !far->up ? "down" : !carrier(*near) ? "no-carrier" : "up";
    Status st = in_ns(l.ns, [&](Rtnl& r) -> Status {
      TRY_ASSIGN(QdiscInfo q, root_qdisc(r, l.interface));
      row.qdisc = q.kind;
      if (q.impairment) row.impairment = impairment_summary(*q.impairment);
      return {};
    });
    if (!st) row.error = st.error().str();
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string render_links(const std::vector<LinkRow>& rows) {
  size_t w1 = 4, w2 = 2;
  for (const auto& r : rows) {
    w1 = std::max(w1, end_name(r.ends).size());
    w2 = std::max(w2, r.ends.far.size());
  }
  std::string out = fmt::format("{:<{}}  {:<{}}  {:<10}  {}\n", "LINK", w1, "TO", w2, "STATE",
                                "IMPAIRMENT (egress of LINK)");
  for (const auto& r : rows)
    out += fmt::format("{:<{}}  {:<{}}  {:<10}  {}\n", end_name(r.ends), w1, r.ends.far, w2,
                       r.error.empty() ? r.state : "?",
                       !r.error.empty() ? r.error : r.impairment.empty() ? "-" : r.impairment);
  return out;
}

nlohmann::json links_json(const std::vector<LinkRow>& rows) {
  nlohmann::json all = nlohmann::json::array();
  for (const auto& r : rows) {
    nlohmann::json j = {{"link", end_name(r.ends)}, {"node", r.ends.node},
                        {"interface", r.ends.interface}, {"to", r.ends.far},
                        {"state", r.state}, {"qdisc", r.qdisc}, {"impairment", r.impairment}};
    if (!r.error.empty()) j["error"] = r.error;
    all.push_back(j);
  }
  return all;
}

}  // namespace labctl
