// The pure half of the scheduler checks (balance, sticky, least-conn): given what the
// director's IPVS table said and which server answered, is the scheduler's promise kept?
// No kernel here, so every verdict is unit-tested with spreads that must fail.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "labctl/model/ip.h"

namespace labctl::sched {

// ---- balance: shares of requests ----

/// A real server as balance judges it: who answers, and its expected share of requests.
struct Share {
  std::string who;
  double share = 0;  ///< 0: it must get nothing (weight 0).
};
/// What already makes a balance fail, given the answers so far (`counts`), `sent` of
/// `planned` requests and the relative tolerance: a server above its band, one that cannot
/// reach its band with the requests left, or one of weight 0 that answered. With
/// tolerance 0 the counts must be exact (rr and wrr are exact over whole cycles).
[[nodiscard]] std::vector<std::string> share_problems(const std::vector<Share>& servers,
                                                      const std::map<std::string, int>& counts,
                                                      int sent, int planned, double tolerance);

// ---- sticky: sh, dh, persistence ----

enum class Stickiness {
  None,            ///< rr, wrr, lc ... without persistence: no promise.
  PerSource,       ///< sh, mh: one source address, one server.
  PerClient,       ///< Persistence: one client (source under the service's netmask), one server.
  PerDestination,  ///< dh, lblc, lblcr: one destination address, one server, whoever sends.
};
/// The stickiness a service promises, from its scheduler and persistence flag.
[[nodiscard]] Stickiness stickiness(const std::string& scheduler, bool persistent);
/// "one server per source address (sh)" and so on.
[[nodiscard]] std::string promise_text(Stickiness s, const std::string& scheduler);

/// The client a source address is to persistence: the address under the service's netmask
/// as the kernel keeps it (IPv4: mask bits in network order, 0 taken as /32; IPv6: a
/// prefix length), printed: "10.10.0.0" for 10.10.0.20 under 255.255.255.0.
[[nodiscard]] std::string persistence_client(const IpAddr& source, uint32_t netmask);

/// Which servers answered the requests sent from one source address.
struct SourceAnswers {
  std::string source;                  ///< "10.10.0.10".
  std::string client;                  ///< The source under the persistence netmask.
  std::map<std::string, int> servers;  ///< Who answered -> how many times.
  int failed = 0;
};
/// Every group of sources that must share one server does: each source (PerSource), each
/// masked client (PerClient), all of them (PerDestination). Returns what broke the
/// promise; empty when it held. Stickiness::None is a broken promise of its own.
[[nodiscard]] std::vector<std::string> sticky_problems(Stickiness s, const std::string& scheduler,
                                                       const std::vector<SourceAnswers>& answers);

// ---- least-conn: lc, wlc, sed, nq ----

/// A real server's load as the director's IPVS table reports it.
struct DestLoad {
  std::string who;
  int weight = 0;
  uint32_t active = 0;
  uint32_t inactive = 0;
  uint32_t u_thresh = 0;  ///< 0: no connection limit.
  uint32_t l_thresh = 0;
};
/// lc, wlc, sed and nq pick by connections; the others do not.
[[nodiscard]] bool counts_connections(const std::string& scheduler);
/// The servers the kernel's scheduler may give the next new connection, by its own rule:
/// lc the least (active << 8) + inactive, wlc the least of that per weight, sed the least
/// (active + 1) per weight, nq an idle server first, else as sed; any other scheduler is
/// judged by wlc, the kernel's default. Weight 0 never; a server near its u_thresh may or
/// may not be skipped (the kernel's overload flag has hysteresis), so both are allowed.
/// Ties give several.
[[nodiscard]] std::vector<std::string> least_loaded(const std::string& scheduler,
                                                    const std::vector<DestLoad>& loads);
/// Whether only one new connection, to `who`, happened between two reads of the table:
/// every other server's counts unchanged, `who` exactly one more (active or inactive).
/// When not, something else moved the counts (an old connection expired) and a choice
/// against `before` proves nothing either way.
[[nodiscard]] bool only_this_connection(const std::vector<DestLoad>& before,
                                        const std::vector<DestLoad>& after, const std::string& who);
/// "rs1 2/0, rs2 1/3" (active/inactive per server).
[[nodiscard]] std::string loads_text(const std::vector<DestLoad>& loads);


// ---- reused client ports: entries the scheduler never sees ----

/// An entry of the director's connection table as reuse judges it.
struct OldEntry {
  std::string who;     ///< The real server it points to.
  std::string state;   ///< As /proc/net/ip_vs_conn names it: "FIN_WAIT", "TIME_WAIT" ...
  bool no_output = false;  ///< DR or TUN: the director never sees the server's packets.
};
/// Whether the kernel sends a new connection (a SYN) that meets this entry of an earlier
/// connection on the same client port where the entry points, unscheduled: the negation of
/// is_new_conn_expected() in ip_vs_core.c. conn_reuse_mode 0 reuses every entry; bit 1
/// reschedules over TIME_WAIT and CLOSE; bit 2 also over FIN_WAIT of a DR or TUN entry,
/// the last state such a director sees.
[[nodiscard]] bool reused_unscheduled(const OldEntry& e, int conn_reuse_mode);
/// When a client's requests reached more servers than its scheduler promised: if the
/// director holds entries of that client that a reused port would follow past the
/// scheduler (reused_unscheduled), the sentence naming them, why they last, and the two
/// ways out; empty when there are none (then reuse cannot be the reason).
[[nodiscard]] std::string reused_ports_note(const std::vector<OldEntry>& entries, int conn_reuse_mode);

}  // namespace labctl::sched
