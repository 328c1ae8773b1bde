#include "labctl/checks/sched_judge.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>

namespace labctl::sched {
namespace {

// Counts are whole numbers and shares fractions such as 1/3: a margin keeps 10 of 30 from
// being "above" a band of 9.999999999999998.
constexpr double kSlack = 1e-9;

std::string counts_text(const std::map<std::string, int>& m) {
  std::string s;
  for (const auto& [who, n] : m) s += (s.empty() ? "" : ", ") + who + " " + std::to_string(n);
  return s;
}

bool usable(const DestLoad& d) { return d.weight > 0; }

// The kernel's overload flag is set when a server's active + inactive connections reach
// u_thresh and cleared only below l_thresh (3/4 of u_thresh when l_thresh is 0): between
// the two it depends on the past.
bool maybe_overloaded(const DestLoad& d) {
  if (d.u_thresh == 0) return false;
  const uint64_t total = uint64_t{d.active} + d.inactive;
  return d.l_thresh ? total >= d.l_thresh : total * 4 >= uint64_t{d.u_thresh} * 3;
}

// a's load is below b's when a_num / a_den < b_num / b_den (the kernel compares products).
bool below(uint64_t a_num, uint64_t a_den, uint64_t b_num, uint64_t b_den) {
  return a_num * b_den < b_num * a_den;
}

std::vector<std::string> least_of(const std::string& scheduler, const std::vector<const DestLoad*>& ds) {
  if (ds.empty()) return {};
  if (scheduler == "nq") {
    std::vector<std::string> idle;
    for (const auto* d : ds)
      if (d->active == 0) idle.push_back(d->who);
    if (!idle.empty()) return idle;  // the kernel takes the first idle one in its list
  }
  const bool sed = scheduler == "sed" || scheduler == "nq";
  const bool weighted = scheduler != "lc";
  auto num = [&](const DestLoad& d) -> uint64_t {
    return sed ? uint64_t{d.active} + 1 : (uint64_t{d.active} << 8) + d.inactive;
  };
  auto den = [&](const DestLoad& d) -> uint64_t { return weighted ? static_cast<uint64_t>(d.weight) : 1; };
  const DestLoad* best = ds.front();
  for (const auto* d : ds)
    if (below(num(*d), den(*d), num(*best), den(*best))) best = d;
  std::vector<std::string> out;
  for (const auto* d : ds)
    if (!below(num(*best), den(*best), num(*d), den(*d))) out.push_back(d->who);
  return out;
}

}  // namespace

std::vector<std::string> share_problems(const std::vector<Share>& servers,
                                        const std::map<std::string, int>& counts, int sent,
                                        int planned, double tol) {
  std::vector<std::string> why;
  const int left = planned - sent;
  for (const auto& s : servers) {
    auto it = counts.find(s.who);
    const int got = it == counts.end() ? 0 : it->second;
    const double want = s.share * planned;
    const auto about = std::to_string(static_cast<int>(std::lround(want)));
    const std::string expected = tol == 0 ? "expected exactly " + about : "expected about " + about;
    if (s.share == 0) {
      if (got) why.push_back(s.who + " has weight 0 but answered " + std::to_string(got));
    } else if (got > want * (1 + tol) + kSlack) {
      why.push_back(s.who + " got " + std::to_string(got) + ", " + expected);
    } else if (got + left < want * (1 - tol) - kSlack) {
      if (left == 0 && got == 0) why.push_back(s.who + " never answered");
      else if (left == 0)
        why.push_back(s.who + " got " + std::to_string(got) + ", " + expected);
      else
        why.push_back(s.who + " got " + std::to_string(got) + " of the first " + std::to_string(sent) +
                      " and can no longer reach " + (tol == 0 ? "" : "about ") + about + " of " +
                      std::to_string(planned));
    }
  }
  return why;
}

std::string persistence_client(const IpAddr& a, uint32_t netmask) {
  IpAddr m = a;
  if (a.v4()) {
    if (netmask == 0) return a.str();
    uint8_t mask[4];
    std::memcpy(mask, &netmask, 4);  // network order: the first byte is the first octet's mask
    for (int i = 0; i < 4; ++i) m.bytes[i] &= mask[i];
  } else {
    const uint32_t len = netmask == 0 || netmask > 128 ? 128 : netmask;
    for (uint32_t bit = len; bit < 128; ++bit) m.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
  }
  return m.str();
}

Stickiness stickiness(const std::string& scheduler, bool persistent) {
  if (persistent) return Stickiness::PerClient;
  if (scheduler == "sh" || scheduler == "mh") return Stickiness::PerSource;
  if (scheduler == "dh" || scheduler == "lblc" || scheduler == "lblcr") return Stickiness::PerDestination;
  return Stickiness::None;
}

std::string promise_text(Stickiness s, const std::string& scheduler) {
  switch (s) {
    case Stickiness::None: return scheduler + " promises no stickiness";
    case Stickiness::PerSource: return "one server per source address (" + scheduler + ")";
    case Stickiness::PerClient: return "one server per client while its persistence template lives";
    case Stickiness::PerDestination: return "one server per destination address, whoever sends (" + scheduler + ")";
  }
  return "";
}

std::vector<std::string> sticky_problems(Stickiness s, const std::string& scheduler,
                                         const std::vector<SourceAnswers>& answers) {
  std::vector<std::string> why;
  if (s == Stickiness::None)
    why.push_back("the director's scheduler " + scheduler +
                  " without persistence promises no stickiness (sh, mh, dh, lblc, lblcr or persistence do)");
  // The groups that must each land on one server, in the order first seen.
  std::vector<std::string> order;
  std::map<std::string, std::vector<const SourceAnswers*>> groups;
  for (const auto& a : answers) {
    const std::string key = s == Stickiness::PerDestination ? ""
                            : s == Stickiness::PerClient    ? a.client
                                                            : a.source;
    if (!groups.count(key)) order.push_back(key);
    groups[key].push_back(&a);
  }
  for (const auto& key : order) {
    const auto& g = groups[key];
    std::map<std::string, int> all;
    for (const auto* a : g)
      for (const auto& [who, n] : a->servers) all[who] += n;
    if (all.size() <= 1) continue;
    if (g.size() == 1) {
      why.push_back(g.front()->source + " reached " + counts_text(all));
      continue;
    }
    std::string per;
    for (const auto* a : g)
      per += (per.empty() ? "" : ", ") + a->source + " -> " + (a->servers.empty() ? "none" : counts_text(a->servers));
    if (s == Stickiness::PerDestination)
      why.push_back("the sources reached different servers: " + per);
    else
      why.push_back("client " + key + " reached " + counts_text(all) + " (" + per + ")");
  }
  return why;
}

bool counts_connections(const std::string& scheduler) {
  return scheduler == "lc" || scheduler == "wlc" || scheduler == "sed" || scheduler == "nq";
}

std::vector<std::string> least_loaded(const std::string& scheduler, const std::vector<DestLoad>& loads) {
  const std::string rule = counts_connections(scheduler) ? scheduler : "wlc";
  std::vector<const DestLoad*> all, settled;
  for (const auto& d : loads)
    if (usable(d)) {
      all.push_back(&d);
      if (!maybe_overloaded(d)) settled.push_back(&d);
    }
  std::set<std::string> allowed;
  for (const auto& w : least_of(rule, all)) allowed.insert(w);
  if (settled.size() != all.size())
    for (const auto& w : least_of(rule, settled)) allowed.insert(w);
  return {allowed.begin(), allowed.end()};
}

bool only_this_connection(const std::vector<DestLoad>& before, const std::vector<DestLoad>& after,
                          const std::string& who) {
  if (before.size() != after.size()) return false;
  for (const auto& b : before) {
    auto a = std::find_if(after.begin(), after.end(), [&](const DestLoad& d) { return d.who == b.who; });
    if (a == after.end()) return false;
    if (b.who == who) {
      if (uint64_t{a->active} + a->inactive != uint64_t{b.active} + b.inactive + 1 || a->inactive < b.inactive)
        return false;
    } else if (a->active != b.active || a->inactive != b.inactive) {
      return false;
    }
  }
  return true;
}

std::string loads_text(const std::vector<DestLoad>& loads) {
  std::string s;
  for (const auto& d : loads)
    s += (s.empty() ? "" : ", ") + d.who + " " + std::to_string(d.active) + "/" + std::to_string(d.inactive);
  return s;
}


bool reused_unscheduled(const OldEntry& e, int conn_reuse_mode) {
  if (conn_reuse_mode == 0) return true;
  if (e.state == "TIME_WAIT" || e.state == "CLOSE") return false;
  return !((conn_reuse_mode & 2) && e.state == "FIN_WAIT" && e.no_output);
}

std::string reused_ports_note(const std::vector<OldEntry>& entries, int conn_reuse_mode) {
  std::map<std::string, int> by_server;
  std::map<std::string, int> by_state;
  bool fin_wait_no_output = false;
  for (const auto& e : entries) {
    if (!reused_unscheduled(e, conn_reuse_mode)) continue;
    ++by_server[e.who];
    ++by_state[e.state];
    fin_wait_no_output = fin_wait_no_output || (e.state == "FIN_WAIT" && e.no_output);
  }
  if (by_server.empty()) return "";
  int n = 0;
  for (const auto& [who, k] : by_server) n += k;
  std::string s = "the director still holds " + std::to_string(n) + " entr" + (n == 1 ? "y" : "ies") +
                  " of this client's earlier connections (" + counts_text(by_state) + "; to " +
                  counts_text(by_server) +
                  "): a new connection from a client port one of them names goes where that entry "
                  "points, unscheduled (net.ipv4.vs.conn_reuse_mode = " + std::to_string(conn_reuse_mode) + ")";
  if (fin_wait_no_output)
    s += "; a DR or TUN director never sees the server's FIN, so its entries stay FIN_WAIT for the "
         "tcpfin timeout (120 s)";
  s += "; wait until they expire, or set net.ipv4.vs.conn_reuse_mode = 3 on the director "
       "(reschedules over FIN_WAIT too)";
  return s;
}

}  // namespace labctl::sched
