// Inside the check engine: the context every kind of check runs with and the helpers they
// share. One file per kind of check implements the functions declared at the end.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "labctl/base/display.h"
#include "labctl/base/error.h"
#include "labctl/base/fd.h"
#include "labctl/checks/checks.h"
#include "labctl/kernel/ipvs.h"
#include "labctl/kernel/netns.h"
#include "labctl/kernel/probe.h"
#include "labctl/kernel/rtnl.h"
#include "labctl/model/topology.h"

namespace labctl::check_kind {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
/// A probe's least bound. Lab traffic crosses veths inside one kernel: a request and its
/// answer take a few milliseconds even under emulation (measured in the micro-VM). A link
/// can be slower on purpose (an impairment's delay, proxy ARP's delayed reply, a VRRP
/// takeover), so a probe first waits a quarter of the check's deadline (at least this), and
/// one that timed out is sent again with twice the time (Deadline::timed_out), as TCP backs
/// off its SYN, while the deadline allows. Waiting long before resending matters: a request
/// given up on may still have been scheduled by the director and counts in its table (wlc
/// then sends the next ones elsewhere).
inline constexpr Millis kProbeTimeout{500};
/// Requests that all failed before any answered: the target is unreachable, stop there.
inline constexpr int kUnreachableAfter = 2;
/// Failures after which a multi-request check stops: its verdict is a failure already.
inline constexpr int kFailuresConclusive = 3;

/// When the running check must have its verdict.
struct Deadline {
  Clock::time_point end;
  Millis total{0};
  [[nodiscard]] Millis left() const;
  [[nodiscard]] bool over() const { return Clock::now() >= end; }
  /// What a probe waits after a timeout of this check; 0 before any (first_patience).
  Millis grown{0};
  /// What a probe waits now: first_patience(total), doubled after each timeout.
  [[nodiscard]] Millis patience() const { return grown.count() ? grown : first_patience(total); }
  /// A probe's timeout: `want` (else the patience), cut to what is left of the deadline (at
  /// least 1 ms).
  [[nodiscard]] Millis probe() const { return probe(patience()); }
  [[nodiscard]] Millis probe(Millis want) const;
  /// A probe timed out: wait twice as long from now on (at most the whole deadline).
  void timed_out() { grown = next_patience(patience(), total); }
  /// Whether a probe that failed with `e` is sent again: it timed out (an answer may only be
  /// slow) and time is left. A refusal or an unreachable is an answer and decides at once.
  [[nodiscard]] bool resend(const Error& e) const;
  /// A probe's first timeout in a check of deadline `total`: a quarter of it, at least
  /// kProbeTimeout (reach 0.75 s, http 1.5 s, balance 2.5 s).
  static Millis first_patience(Millis total);
  /// An answer came after `took` (the slowest of the check so far): from now on a probe
  /// waits four times that (at least kProbeTimeout, at most the whole deadline), as TCP sets
  /// its retransmission timeout from the round trips it saw.
  void answered_after(Millis took) { grown = learned_patience(took, total); }
  static Millis learned_patience(Millis slowest, Millis total);
  /// The patience after a timeout: doubled, at most `total` (at least kProbeTimeout).
  static Millis next_patience(Millis patience, Millis total);
  /// "the check's 5 s deadline ran out".
  [[nodiscard]] std::string ran_out() const;
};

/// Runs `probe(timeout)`, and again with more patience while it timed out and the deadline
/// allows (Deadline::resend); `resent` (when given) counts the extra tries.
template <class Probe>
auto patiently(Deadline& d, Probe&& probe, int* resent = nullptr) {
  auto r = probe(d.probe());
  while (!r && d.resend(r.error())) {
    d.timed_out();
    if (resent) ++*resent;
    r = probe(d.probe());
  }
  return r;
}

struct Ctx {
  const Topology& t;
  std::map<std::string, Fd> ns;  ///< node -> open namespace
  Deadline deadline;             ///< Of the check running now.
  std::function<void(const std::string&)> progress;  ///< "12 of 40 requests"; may be empty.

  Result<int> fd(const std::string& node) {
    if (auto it = ns.find(node); it != ns.end()) return it->second.get();
    auto f = open_netns(netns_name(t.name, node));
    if (!f) return tl::unexpected(elsewhere(f.error(), node));
    return (ns[node] = std::move(*f)).get();
  }
  // Runs fn inside node's namespace.
  Status in(const std::string& node, const std::function<Status()>& fn) {
    TRY_ASSIGN(int f, fd(node));
    return run_in_netns(f, fn);
  }
  void report(const std::string& what) const {
    if (progress) progress(what);
  }
  /// In a lab across hosts, a node whose namespace is not here runs on another host: the
  /// error says which (a check reads the nodes of the host it runs on: docs/multihost.md).
  [[nodiscard]] Error elsewhere(Error e, const std::string& node) const;

  /// In a lab across hosts: runs `labctl ARGS...` on a host (over ssh) and returns what it
  /// printed. How a check reads a node of another host; empty where no host is reachable.
  std::function<Result<std::string>(const std::string& host, const std::vector<std::string>& args)> on_host = {};
  /// The host that answers for `node` when its namespace is not here and on_host can reach
  /// it; nullopt: read it here (or fail as fd() does).
  [[nodiscard]] std::optional<std::string> remote_host(const std::string& node);
  /// A file of node's /proc, `rel` below it ("net/snmp", "net/ip_vs_conn",
  /// "sys/net/ipv4/vs/conn_reuse_mode"), read in its namespace: here, or on its host
  /// through `labctl exec LAB NODE -- cat /proc/REL`.
  [[nodiscard]] Result<std::string> read_proc(const std::string& node, const std::string& rel);
};

/// A check's result: its verdict and what was seen.
CheckResult verdict(const Check& c, bool passed, std::string detail);
inline CheckResult failed(const Check& c, std::string detail) { return verdict(c, false, std::move(detail)); }

/// "10.0.0.1:80", "[fd00::1]:80" or the bare address when the check has no port.
std::string target_of(const Check& c);
/// "4 MiB", "96.3 KiB", "12 bytes".
std::string bytes_text(uint64_t b);
/// The node that holds `addr` on one of its interfaces, else the address itself.
std::string who_has(const Topology& t, const IpAddr& addr);

/// One request of the check's protocol to its target, from the calling thread's namespace:
/// a UDP datagram (its reply), a banner read (the banner), else an HTTP GET (the body).
/// The answer must match `expect` for UDP when given, else echo the payload.
Result<std::string> exchange(const Check& c, const IpAddr& to, Millis timeout);
/// "GET http://10.0.0.1:80/", "UDP to 10.0.0.1:53", "banner of 10.0.0.1:22".
std::string exchange_name(const Check& c);

/// What a run of requests saw.
struct Requests {
  std::map<std::string, int> counts;  ///< Answer -> how many times.
  int planned = 0;
  int sent = 0;
  int failed = 0;
  int resent = 0;          ///< Requests sent again after a timeout (not counted in `sent`).
  Millis patience{kProbeTimeout};  ///< What the last request waited at most.
  std::string last_error;
  std::string stopped;  ///< Why it stopped before `planned`; "" when all were sent.
  [[nodiscard]] int answered() const { return sent - failed; }
  /// "rs1 20, rs2 20 of 40", plus the failures and why it stopped.
  [[nodiscard]] std::string text() const;
};
/// Returns a reason to stop (the verdict is already certain), or "" to go on.
using Conclusive = std::function<std::string(const Requests&)>;
/// Sends up to `n` requests (exchange()) from the check's `from` node; until one is answered
/// (and with `failures_conclusive`) one that timed out is sent again (patiently). Stops early
/// at the deadline, when `conclusive` gives a reason, and (with `failures_conclusive`) when the
/// first kUnreachableAfter all failed or after kFailuresConclusive failures. Errors only
/// when the namespace is gone.
Result<Requests> send_requests(Ctx& ctx, const Check& c, int n, const Conclusive& conclusive = {},
                               bool failures_conclusive = true);

/// A service as the director's kernel has it now, and its real servers.
struct LiveService {
  IpvsService service;
  std::vector<IpvsDest> dests;
  size_t services_in_table = 0;  ///< Every service of the director's table, this one included.
};
Result<LiveService> live_service(Ctx& ctx, const Node& director, const VirtualService& svc);
/// Why `from`'s requests may have reached more servers than the scheduler promised: the
/// director's entries of earlier connections from `from` that a reused client port follows
/// unscheduled (sched::reused_ports_note), read from its connection table and its
/// net.ipv4.vs.conn_reuse_mode. "" when there are none or they cannot be read.
std::string reused_ports(Ctx& ctx, const Node& director, const VirtualService& svc, const LiveService& live,
                         const std::string& from);

/// Packet counters of the director's IPVS traffic for one service.
struct DirectorCounters {
  uint64_t inpkts = 0;
  uint64_t outpkts = 0;
  bool exact = false;  ///< Read from the per-cpu counters (no estimator lag).
};
/// The per-cpu totals of /proc/net/ip_vs_stats_percpu (exact, updated per packet) when the
/// director has this one service only; else the service's netlink counters, which the
/// estimator refreshes about every 2 s.
Result<DirectorCounters> director_counters(Ctx& ctx, const Node& director,
                                           const VirtualService& svc);

/// `ip -j -s -d link show` read as LinkInfo (name, index, kind, up, MTU, MAC, master,
/// packet counts): the links of a node of another host (links_of). Exposed for tests.
[[nodiscard]] Result<std::vector<LinkInfo>> links_from_ip_json(const std::string& text);

Result<std::vector<LinkInfo>> links_of(Ctx& ctx, const std::string& node);
/// Stops (starts again) node's agent as `labctl node LAB NODE stop-agent|start-agent`
/// does, here or on the node's host.
[[nodiscard]] Status stop_agent_of(Ctx& ctx, const std::string& node, const std::string& agent,
                                   std::chrono::milliseconds wait);
[[nodiscard]] Status start_agent_of(Ctx& ctx, const std::string& node, const std::string& agent);
/// `ip -j addr show` read as the interface addresses it lists (exposed for tests).
[[nodiscard]] Result<std::vector<IpAddr>> addresses_from_ip_json(const std::string& text);
/// Every address on node's interfaces, wherever it runs.
[[nodiscard]] Result<std::vector<IpAddr>> addresses_of(Ctx& ctx, const std::string& node);

/// What diagnose_lvs looks at for a kind (decide_causes).
struct LvsFocus {
  bool arp_only = false;   ///< Only who answers ARP matters (arp-owner).
  bool scheduler = false;  ///< The verdict is the scheduler's: a live change of it is a cause.
};

/// The run half of a kind of check, one entry per kind, defined in the kind's own file
/// (checks/<kind>.cc) and listed in kinds.cc. Its model half (keys, defaults, validation,
/// deadline, expectation) is the topo::CheckKindSpec of the same name (model/check_specs.cc);
/// tests/unit/check_kinds_test.cc proves every kind has both.
struct KindRun {
  std::string_view name;
  CheckResult (*run)(Ctx& ctx, const Check& c) = nullptr;
  /// The causes of a failure (diagnose()), read from the kernel; nullptr for none: a kind
  /// whose failure no missing lab line explains (no-reach reached its target).
  std::vector<Cause> (*diagnose)(const Topology& t, const Check& c) = nullptr;
  LvsFocus focus;
};

/// Every kind's run half, in the order of topo::check_kinds().
const std::vector<const KindRun*>& kind_runs();
const KindRun* find_kind_run(std::string_view name);

}  // namespace labctl::check_kind
