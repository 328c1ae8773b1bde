// failover: the director that holds the VIP (keepalived's MASTER) fails, as `how` says:
// its keepalived is stopped (stop-keepalived, the default), its link to the clients is cut
// (cut-link: the VRRP interface, as `labctl link LAB NODE:IF down`), or it crashes
// (crash-node: as `labctl node LAB NODE crash`, every process SIGKILLed and its interfaces
// down). The backup must take the VIP over while the client keeps sending requests, which
// must go on being answered. The outage is measured from the client's side: the longest run
// of unanswered requests. Then the master is restored (keepalived started, link up, node
// started) and the check waits for exactly one director to hold the VIP. Who holds the VIP is read from each
// director's own addresses, so two holders (split brain) and none are both named.
//
// With `connections = N` the client also opens N connections through the VIP before the
// failure (HTTP keep-alive: a request answered, the connection kept), waits until the other
// directors' sync daemons have learned them (read from their connection tables; no wait
// when none runs a backup daemon), and after the takeover asks again on each: every one
// must still be answered, by the real server that answered it first. That holds only when
// the new master knows the connections (IPVS connection synchronisation, `ipvs_sync`):
// otherwise the first packet of an established connection is no SYN it would schedule, and
// its own stack resets it.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "labctl/checks/check_kind.h"
#include "labctl/checks/diagnose.h"
#include "labctl/kernel/ipvs_proc.h"
#include "labctl/lab/agent_control.h"
#include "labctl/lab/live_edit.h"
#include "labctl/lab/state.h"
#include "labctl/model/keepalived.h"

namespace labctl::check_kind {
namespace {

constexpr Millis kProbeEvery{25};
constexpr Millis kFailoverProbeTimeout{250};
constexpr Millis kPollEvery{20};
/// Answers in a row after the failover that show the backup serves for good.
constexpr int kSettled = 5;
/// How long VRRP may take to settle before the check judges who holds the VIP.
constexpr Millis kSettleTime{4000};
/// A held connection's request, before the failure and after the takeover.
constexpr Millis kHeldTimeout{1000};
/// How long the backups may take to learn the held connections: a master's sync daemon
/// sends a buffer when it is full or 2 s old (IPVS_SYNC_FLUSH_TIME), checked every second.
constexpr Millis kSyncWait{4000};

struct Director {
  const Node* node;
  const Agent* agent;
};

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (std::size_t i = 0; i < v.size(); ++i)
    s += (i == 0 ? "" : i + 1 == v.size() ? " and " : ", ") + v[i];
  return s;
}

// The directors that hold `vip` on some interface now.
Result<std::vector<std::string>> holders(Ctx& ctx, const std::vector<Director>& ds,
                                         const IpAddr& vip) {
  std::vector<std::string> out;
  for (const auto& d : ds) {
    TRY_ASSIGN(auto addrs, addresses_of(ctx, d.node->name));
    if (std::find(addrs.begin(), addrs.end(), vip) != addrs.end()) out.push_back(d.node->name);
  }
  return out;
}

std::string vrrp_where(const Director& d) {
  const auto& k = *d.agent->keepalived;
  if (!k.vrrp) return "keepalived " + d.node->name + ":" + d.agent->name + " (config given)";
  return "keepalived " + d.node->name + ":" + d.agent->name + " runs VRRP router " +
         std::to_string(k.vrrp->virtual_router_id) + " on " + k.vrrp->interface;
}

struct Probe {
  Clock::time_point at;
  bool ok;
  std::string answer;  ///< The body, or the error.
};

// How the master fails and is restored (`how`): here, or on the master's host (`labctl link`
// and `labctl node` there) when it runs on another.
struct Failure {
  std::string how;  ///< stop-keepalived, cut-link or crash-node
  std::string master;
  const Agent* agent = nullptr;
  std::string interface;         ///< cut-link: the master's interface toward the clients.
  std::optional<LinkEnds> link;  ///< cut-link on this host: that link's ends.

  /// "dir1's keepalived was stopped", "dir1's link eth0 was cut", "dir1 crashed".
  [[nodiscard]] std::string what() const {
    if (how == "cut-link") return master + "'s link " + interface + " was cut";
    if (how == "crash-node") return master + " crashed";
    return master + "'s keepalived was stopped";
  }
  [[nodiscard]] Status fail(Ctx& ctx) const { return apply(ctx, false); }
  [[nodiscard]] Status restore(Ctx& ctx) const { return apply(ctx, true); }
  [[nodiscard]] std::string restored() const {
    if (how == "cut-link") return master + "'s link " + interface + " is up again";
    if (how == "crash-node") return master + " runs again";
    return master + "'s keepalived runs again";
  }

 private:
  // The failure (back: its undoing), here or on the master's host.
  Status apply(Ctx& ctx, bool back) const {
    if (how == "cut-link" || how == "crash-node") {
      if (auto host = ctx.remote_host(master)) {
        auto args = how == "cut-link"
                        ? std::vector<std::string>{"link", ctx.t.name, master + ":" + interface, back ? "up" : "down"}
                        : std::vector<std::string>{"node", ctx.t.name, master, back ? "start" : "crash"};
        return ctx.on_host(*host, args).map([](auto&&) {});
      }
      if (how == "cut-link") return set_link(ctx.t, *link, back).map([](auto&&) {});
      return (back ? start_node(ctx.t, master) : crash_node(ctx.t, master)).map([](auto&&) {});
    }
    return back ? start_agent_of(ctx, master, agent->name)
                : stop_agent_of(ctx, master, agent->name, kKeepalivedStopGrace + 2000ms);
  }
};

// A connection through the VIP opened before the failure and kept (`connections`).
struct Held {
  Fd fd;
  IpAddr client;
  uint16_t client_port = 0;
  std::string server;  ///< Who answered its first request.
};

// `n` keep-alive connections from the calling thread's namespace, each answered once.
Result<std::vector<Held>> open_held(const Check& c, const IpAddr& vip, uint16_t port, int n) {
  std::vector<Held> out;
  for (int i = 0; i < n; ++i) {
    Held h;
    HttpGetOptions o;
    o.keep = &h.fd;
    o.keep_alive = true;
    auto body = http_get(vip, port, c.params.text("path"), kHeldTimeout, o);
    if (!body)
      return labctl::fail("connection " + std::to_string(i + 1) + " of " + std::to_string(n) +
                          " through the VIP: " + body.error().str());
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(h.fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0)
      return labctl::fail_errno("getsockname", errno);
    if (ss.ss_family == AF_INET) {
      const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
      h.client.family = AF_INET;
      std::memcpy(h.client.bytes.data(), &a->sin_addr, 4);
      h.client_port = ntohs(a->sin_port);
    } else {
      const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
      h.client.family = AF_INET6;
      std::memcpy(h.client.bytes.data(), &a->sin6_addr, 16);
      h.client_port = ntohs(a->sin6_port);
    }
    h.server = *body;
    out.push_back(std::move(h));
  }
  return out;
}

// How many of `held` a director's connection table has, wherever it runs.
Result<int> known(Ctx& ctx, const std::string& node, const std::vector<Held>& held, const IpAddr& vip,
                  uint16_t port) {
  TRY_ASSIGN(std::string text, ctx.read_proc(node, "net/ip_vs_conn"));
  TRY_ASSIGN(auto table, ipvs::parse_conn_table(text));
  int n = 0;
  for (const auto& h : held)
    for (const auto& e : table)
      if (e.client == h.client && e.client_port == h.client_port && e.vip == vip && e.vport == port) {
        ++n;
        break;
      }
  return n;
}

// Whether a director runs a backup sync daemon now, as its kernel says (GET_DAEMON).
Result<bool> runs_backup_daemon(Ctx& ctx, const Node& n) {
  if (auto host = ctx.remote_host(n.name)) {
    // On its host, as ipvsadm reads the same GET_DAEMON there.
    TRY_ASSIGN(std::string text, ctx.on_host(*host, {"exec", ctx.t.name, n.name, "--", "ipvsadm", "-L", "--daemon"}));
    return text.find("backup sync daemon") != std::string::npos;
  }
  bool backup = false;
  TRY(ctx.in(n.name, [&]() -> Status {
    TRY_ASSIGN(Ipvs ipvs, Ipvs::open(netns_name(ctx.t.name, n.name)));
    TRY_ASSIGN(auto daemons, ipvs.daemons());
    for (const auto& d : daemons) backup = backup || d.role == IpvsDaemon::Role::Backup;
    return {};
  }));
  return backup;
}

// Waits (at most kSyncWait) until every other director running a backup sync daemon knows
// every held connection; says what each learned.
std::string await_sync(Ctx& ctx, const std::vector<Director>& ds, const std::string& master,
                       const std::vector<Held>& held, const IpAddr& vip, uint16_t port) {
  std::vector<const Node*> learners;
  std::string text;
  for (const auto& d : ds) {
    if (d.node->name == master) continue;
    auto b = runs_backup_daemon(ctx, *d.node);
    if (!b) return "reading " + d.node->name + "'s sync daemons: " + b.error().str();
    if (*b) learners.push_back(d.node);
    else text += (text.empty() ? "" : "; ") + d.node->name + " runs no backup sync daemon, so it learns none of them";
  }
  std::map<std::string, int> learned;
  const auto until = std::min(ctx.deadline.end, Clock::now() + kSyncWait);
  for (;;) {
    bool all = true;
    for (const Node* n : learners) {
      auto k = known(ctx, n->name, held, vip, port);
      learned[n->name] = k ? *k : 0;
      all = all && k == static_cast<int>(held.size());
    }
    if (all || Clock::now() >= until) break;
    std::this_thread::sleep_for(kPollEvery * 5);
  }
  for (const auto& [name, k] : learned)
    text += (text.empty() ? "" : "; ") + name + "'s sync daemon learned " + std::to_string(k) + " of " +
            std::to_string(held.size());
  return text;
}

// Asks again on every held connection: how many are still answered by their first server.
std::string ask_held(std::vector<Held>& held, const IpAddr& vip, uint16_t port, const Check& c,
                     const Deadline& deadline, int& survived) {
  survived = 0;
  std::map<std::string, int> errors;
  for (auto& h : held) {
    auto r = http_get_kept(h.fd, vip, port, c.params.text("path"), deadline.probe(kHeldTimeout));
    if (r && *r == h.server)
      ++survived;
    else
      ++errors[r ? "answered by " + *r + " instead of " + h.server
                 : r.error().message +
                       (r.error().errnum ? std::string(": ") + std::strerror(r.error().errnum) : "")];
  }
  std::string text = std::to_string(survived) + " of " + std::to_string(held.size()) +
                     " connections survived the takeover";
  std::string why;
  for (const auto& [e, k] : errors) why += (why.empty() ? "" : ", ") + std::to_string(k) + ": " + e;
  return why.empty() ? text : text + " (" + why + ")";
}

// cut-link's interface: the one the master's VRRP adverts go out on (where the clients
// are), else the one on the VIP's subnet.
Result<std::string> client_side_interface(const Node& n, const Agent& a, const IpAddr& vip) {
  std::string ifname;
  if (a.keepalived && a.keepalived->vrrp) ifname = a.keepalived->vrrp->interface;
  for (const auto& i : n.interfaces)
    for (const auto& p : i.addresses)
      if (ifname.empty() && p.addr.family == vip.family && p.contains(vip)) ifname = i.name;
  if (ifname.empty())
    return labctl::fail("cut-link: " + n.name + " has no VRRP interface and no interface on " +
                            vip.str() + "'s subnet to cut",
                        "use how = \"stop-keepalived\" or \"crash-node\"");
  return ifname;
}

CheckResult failover(Ctx& ctx, const Check& c) {
  ServiceRef f = ctx.t.service(c.service);
  if (!f.service) return failed(c, "no service " + c.service);
  const IpAddr& vip = c.to;
  std::vector<Director> ds;
  for (const auto& r : keepalived_agents_of(ctx.t, c.service))
    if (std::none_of(ds.begin(), ds.end(), [&](const Director& d) { return d.node == r.node; }))
      ds.push_back({r.node, r.agent});
  if (ds.size() < 2)
    return failed(c, "service " + c.service + " has fewer than two keepalived directors");

  // A router that started recently may not have decided yet: a BACKUP that hears no
  // MASTER claims the VIP only after about three adverts and the skew of its priority.
  // `up` already waits for that (agent_alive_time), but a keepalived started some other
  // way may not have: wait until each has been recorded running for four adverts plus
  // keepalived's start-up before judging (no wait at all for a lab up for longer).
  auto settled_at = Clock::now();
  for (const auto& d : ds) {
    struct stat st {};
    if (::stat(agent_state_path(ctx.t.name, d.node->name, d.agent->name).c_str(), &st) != 0)
      continue;
    const auto started = std::chrono::system_clock::time_point(
        std::chrono::seconds(st.st_mtim.tv_sec) + std::chrono::nanoseconds(st.st_mtim.tv_nsec));
    const double advert = d.agent->keepalived->vrrp ? d.agent->keepalived->vrrp->advert_int : 1;
    const auto decided = started + Millis{static_cast<int64_t>(4000 * advert)} + kKeepalivedStartup;
    const auto left = decided - std::chrono::system_clock::now();
    if (left > std::chrono::system_clock::duration::zero())
      settled_at =
          std::max(settled_at, Clock::now() + std::chrono::duration_cast<Clock::duration>(left));
  }
  if (settled_at > Clock::now()) {
    ctx.report("waiting for VRRP to settle");
    std::this_thread::sleep_until(std::min(settled_at, ctx.deadline.end));
  }
  // One holder is the settled state; two for a moment happen during a takeover, none
  // before the first election.
  auto before = holders(ctx, ds, vip);
  const auto settle_until = std::min(ctx.deadline.end, Clock::now() + kSettleTime);
  while (before && before->size() != 1 && Clock::now() < settle_until) {
    std::this_thread::sleep_for(kPollEvery * 5);
    before = holders(ctx, ds, vip);
  }
  if (!before) return failed(c, "reading the directors' addresses: " + before.error().str());
  if (before->size() > 1) {
    std::vector<std::string> where;
    for (const auto& d : ds) where.push_back(vrrp_where(d));
    return failed(c, "split brain: " + join(*before) + (before->size() == 2 ? " both" : " all") +
                         " hold the VIP " + c.to_text +
                         " (each is VRRP MASTER, so none hears the other's adverts); " +
                         join(where) + ". Clients reach whichever answered ARP last");
  }
  if (before->empty()) {
    std::string states;
    for (const auto& d : ds) {
      auto st = read_agent_state(ctx.t.name, d.node->name, d.agent->name);
      states += (states.empty() ? "" : "; ") + d.node->name + ":" + d.agent->name + " is " +
                (st ? describe(*st) : st.error().message);
    }
    return failed(c,
                  "no director holds the VIP " + c.to_text + ", so no keepalived is MASTER: " + states);
  }
  const std::string master = before->front();
  const Director* md = nullptr;
  for (const auto& d : ds)
    if (d.node->name == master) md = &d;
  ctx.report(master + " holds " + c.to_text);
  Failure failure{c.params.text("how"), master, md->agent, {}, std::nullopt};
  if (failure.how.empty()) failure.how = "stop-keepalived";
  if (failure.how == "cut-link") {
    auto i = client_side_interface(*md->node, *md->agent, vip);
    if (!i) return failed(c, i.error().str());
    failure.interface = *i;
    if (!ctx.remote_host(master)) {
      auto l = resolve_link(ctx.t, master, *i);
      if (!l) return failed(c, l.error().str());
      failure.link = *l;
    }
  }

  // The client asks all along, on a thread of its own inside its namespace.
  auto from_fd = ctx.fd(c.from);
  if (!from_fd) return failed(c, from_fd.error().str());

  // `connections`: held open across the failure, and learned by the backups first.
  const uint16_t port = c.port ? c.port : 80;
  std::vector<Held> held;
  std::string sync_text;
  if (const int n = static_cast<int>(c.params.integer("connections")); n > 0) {
    ctx.report("opening " + std::to_string(n) + " connections through " + c.to_text);
    Result<std::vector<Held>> opened = fail("not opened");
    (void)run_in_netns(*from_fd, [&]() -> Status {
      opened = open_held(c, vip, port, n);
      return {};
    });
    if (!opened) return failed(c, "before any failover: " + opened.error().str());
    held = std::move(*opened);
    ctx.report("waiting for the backups' sync daemons");
    sync_text = await_sync(ctx, ds, master, held, vip, port);
  }
  if (auto first =
          [&] {
            Result<std::string> r = fail("no answer");
            (void)run_in_netns(*from_fd, [&]() -> Status {
              r = exchange(c, vip, ctx.deadline.probe(kFailoverProbeTimeout));
              return {};
            });
            return r;
          }();
      !first)
    return failed(c, exchange_name(c) + " from " + c.from +
                         " fails before any failover: " + first.error().str());

  std::mutex mu;
  std::vector<Probe> probes;
  std::atomic<bool> stop{false};
  std::thread prober([&] {
    (void)run_in_netns(*from_fd, [&]() -> Status {
      while (!stop) {
        auto t0 = Clock::now();
        auto r = exchange(c, vip, kFailoverProbeTimeout);
        {
          std::lock_guard<std::mutex> lk(mu);
          probes.push_back({t0, bool(r), r ? *r : r.error().message});
        }
        std::this_thread::sleep_until(t0 + kProbeEvery);
      }
      return {};
    });
  });
  auto finish_probing = [&] {
    stop = true;
    prober.join();
  };

  std::string detail;
  bool ok = true;
  const auto stopped_at = Clock::now();
  Status st = failure.fail(ctx);
  if (!st) {
    finish_probing();
    return failed(c, failure.how + " on " + master + ": " + st.error().str());
  }
  ctx.report(failure.what());
  // The VIP must appear on exactly one other director. A master whose link was cut or
  // which crashed still has it on its own interface (no keepalived took it away there),
  // where no client reaches it: it does not count.
  const bool master_counts = failure.how == "stop-keepalived";
  std::vector<std::string> now;
  Clock::time_point moved{};
  while (!ctx.deadline.over()) {
    auto h = holders(ctx, ds, vip);
    if (h) {
      now = *h;
      if (!master_counts) std::erase(now, master);
    }
    if (h && now.size() == 1 && now.front() != master) {
      moved = Clock::now();
      break;
    }
    std::this_thread::sleep_for(kPollEvery);
  }
  const auto ms = [](Clock::duration d) { return std::chrono::duration_cast<Millis>(d).count(); };
  if (moved == Clock::time_point{}) {
    ok = false;
    detail = "after " + failure.what() + ", the VIP " + c.to_text +
             " did not move to a backup within " + std::to_string(ms(Clock::now() - stopped_at)) +
             " ms (held by " + (now.empty() ? std::string("nobody") : join(now)) + ")";
  } else {
    // Wait until the client has kSettled answers in a row after the move.
    while (!ctx.deadline.over()) {
      {
        std::lock_guard<std::mutex> lk(mu);
        int run = 0;
        for (auto it = probes.rbegin(); it != probes.rend() && it->ok && it->at >= moved; ++it)
          ++run;
        if (run >= kSettled) break;
      }
      std::this_thread::sleep_for(kPollEvery);
    }
  }
  finish_probing();

  // The held connections, asked again once the new master answers new ones.
  int survived = 0;
  std::string held_text;
  if (!held.empty() && moved != Clock::time_point{}) {
    held_text = ask_held(held, vip, port, c, ctx.deadline, survived);
    if (!sync_text.empty()) held_text += "; before the failure " + sync_text;
  }
  held.clear();  // closed before the master is restored

  if (ok) {
    // The outage: from the last answer before the first failure after the stop to the
    // next answer.
    int failures = 0;
    Millis outage{0};
    std::optional<Clock::time_point> last_ok, gap_from;
    std::set<std::string> answers_after;
    bool answered_after = false;
    std::string last_error;
    for (const auto& p : probes) {
      if (p.at < stopped_at) {
        if (p.ok) last_ok = p.at;
        continue;
      }
      if (!p.ok) {
        ++failures;
        last_error = p.answer;
        if (!gap_from) gap_from = last_ok ? *last_ok : stopped_at;
      } else {
        if (gap_from) {
          outage = std::max(outage, std::chrono::duration_cast<Millis>(p.at - *gap_from));
          gap_from.reset();
        }
        last_ok = p.at;
        if (p.at >= moved) {
          answered_after = true;
          answers_after.insert(p.answer);
        }
      }
    }
    std::vector<std::string> served(answers_after.begin(), answers_after.end());
    detail = "VIP " + c.to_text + " moved from " + master + " to " + now.front() + " " +
             std::to_string(ms(moved - stopped_at)) + " ms after " + failure.what() + "; ";
    if (gap_from) {
      ok = false;
      detail += "the client's requests were still failing at the end (" + std::to_string(failures) +
                " failed, last: " + last_error + ")";
    } else if (!answered_after) {
      ok = false;
      detail += "no request of the client was answered after the move";
    } else {
      detail += "outage " + std::to_string(outage.count()) + " ms (" + std::to_string(failures) +
                " of " + std::to_string(probes.size()) + " requests unanswered, one sent every " +
                std::to_string(kProbeEvery.count()) + " ms or when the last one's " +
                std::to_string(kFailoverProbeTimeout.count()) + " ms ran out" +
                (failures ? "; last error: " + last_error : "") + "); answered after by " +
                join(served);
    }
    if (!held_text.empty()) {
      detail += "; " + held_text;
      if (survived < static_cast<int>(c.params.integer("connections"))) ok = false;
    }
  }

  // Restore: the master runs again, and one director holds the VIP.
  const auto restart_at = Clock::now();
  if (Status s = failure.restore(ctx); !s) {
    return failed(c, detail + "; restoring failed: " + s.error().str());
  }
  std::vector<std::string> after;
  bool settled = false;
  // Let the restarted router be heard (a few adverts) before judging who holds the VIP. A
  // master whose link comes back leaves FAULT as a BACKUP, and one started after a crash
  // finds the backup MASTER: each preempts only when its master-down timer runs out (3
  // adverts plus its skew, under 4). Wait 5 adverts for it, else the check would judge the
  // backup's hold and the master take over after it.
  const int adverts = failure.how == "stop-keepalived" ? 3 : 5;
  const auto earliest =
      restart_at +
      Millis{static_cast<int64_t>(
          adverts * 1000 *
          (md->agent->keepalived->vrrp ? md->agent->keepalived->vrrp->advert_int : 1))};
  // Restoring is not cut short by the deadline: the lab must be left as it was found.
  const auto restore_until = std::max(ctx.deadline.end, restart_at + 10s);
  while (Clock::now() < restore_until) {
    auto h = holders(ctx, ds, vip);
    if (h) after = *h;
    if (h && after.size() == 1 && Clock::now() >= earliest) {
      settled = true;
      break;
    }
    std::this_thread::sleep_for(kPollEvery * 5);
  }
  if (!settled) {
    return failed(c, detail + "; after restoring (" + failure.restored() + ") the VIP is held by " +
                         (after.empty() ? std::string("nobody") : join(after)) +
                         (after.size() > 1 ? " (split brain)" : ""));
  }
  detail +=
      "; restored: " + failure.restored() + " and " + after.front() + " holds the VIP";
  return verdict(c, ok, detail);
}

}  // namespace

// A failover that fails is most often a split brain: both routers hold the VIP.
extern const KindRun failover_kind{
    "failover", failover,
    [](const Topology& t, const Check& c) { return split_brain_causes(t, c, vip_holders(t, c)); }, {}};

}  // namespace labctl::check_kind
