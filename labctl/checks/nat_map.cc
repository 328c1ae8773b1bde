// nat-map: the course's home router. `from` sends GET / to `to` from a fixed source port
// (`sport`); the router's connection-tracking table (ctnetlink, read in its namespace) must
// hold the flow with its reply tuple rewritten (source NAT: the answer goes to the router's
// own address and port, which it maps back), the server must have seen the request from
// exactly that address and port (its socket table), and the request must be answered. It
// prints the mapping: 192.168.1.8:12121 -> 8.8.8.8:80 becomes 6.6.6.6:12121 -> 8.8.8.8:80.
// An entry of the same ports left by an earlier run is deleted first (`conntrack -D`).
#include <netinet/in.h>

#include "labctl/checks/check_kind.h"
#include "labctl/kernel/conntrack.h"
#include "labctl/kernel/tcp_sockets.h"

namespace labctl::check_kind {
namespace {

std::string endpoint(const IpAddr& a, uint16_t port) {
  return (a.v6() ? "[" + a.str() + "]" : a.str()) + ":" + std::to_string(port);
}

CheckResult nat_map(Ctx& ctx, const Check& c) {
  const auto sport = static_cast<uint16_t>(c.params.integer("sport"));
  const std::string& router = c.params.text("router");
  // An entry an earlier flow of the same ports left (a refused or untranslated one lives on
  // for minutes) would be reused as it is: forget it first, so the router decides afresh.
  Status forgot = ctx.in(router, [&]() -> Status {
    TRY_ASSIGN(auto before, conntrack_entries(c.to.family, router));
    for (const auto& x : before)
      if (x.orig.proto == IPPROTO_TCP && x.orig.sport == sport && x.orig.dst == c.to && x.orig.dport == c.port)
        TRY(conntrack_forget(x.orig, router));
    return {};
  });
  if (!forgot) return failed(c, "clearing " + router + "'s earlier conntrack entry first: " + forgot.error().str());
  Fd keep;  // the client's end stays open while the router's and the server's tables are read
  std::string body;
  Status got = ctx.in(c.from, [&]() -> Status {
    return patiently(ctx.deadline, [&](Millis timeout) -> Status {
      HttpGetOptions o;
      o.source_port = sport;
      o.keep = &keep;
      TRY_ASSIGN(body, http_get(c.to, c.port, "/", timeout, o));
      return {};
    });
  });
  std::string detail = "GET http://" + endpoint(c.to, c.port) + "/ from " + c.from + " port " + std::to_string(sport) +
                       (got ? " answered (" + shown(body, 40) + ")" : " failed: " + got.error().str());
  std::vector<CtEntry> table;
  Status read = ctx.in(router, [&]() -> Status {
    TRY_ASSIGN(table, conntrack_entries(c.to.family, router));
    return {};
  });
  if (!read) return failed(c, detail + "; reading " + router + "'s conntrack table: " + read.error().str());
  const CtEntry* e = nullptr;
  for (const auto& x : table)
    if (x.orig.proto == IPPROTO_TCP && x.orig.sport == sport && x.orig.dst == c.to && x.orig.dport == c.port) e = &x;
  if (!e)
    return failed(c, detail + "; " + router + "'s conntrack table (" + std::to_string(table.size()) +
                         " entries) has no tcp flow from port " + std::to_string(sport) + " to " +
                         endpoint(c.to, c.port) + ": the request never passed " + router);
  detail += "; " + router + "'s conntrack: " + e->str();
  std::vector<std::string> wrong;
  const bool translated = e->reply.dst != e->orig.src || e->reply.dport != e->orig.sport;
  if (translated)
    detail += "; mapping " + endpoint(e->orig.src, e->orig.sport) + " <-> " + endpoint(e->reply.dst, e->reply.dport);
  else
    wrong.push_back("the reply goes to " + endpoint(e->reply.dst, e->reply.dport) + " unchanged: " + router +
                    " did not translate the source");
  if (const auto& want = c.params.addresses("translated"); translated && !want.empty() && e->reply.dst != want.front())
    wrong.push_back("translated to " + e->reply.dst.str() + ", expected " + want.front().str());
  // What the server saw: its socket for this connection names the peer it talks to.
  // The reply tuple's destination is where the server's answers go: the peer it saw. A
  // request that got no answer may still have arrived (SYN_RECV: the server's answer is lost
  // on the way back).
  if (const Node* server = ctx.t.owner_of(c.to)) {
    std::vector<TcpSocket> socks;
    Status st = ctx.in(server->name, [&]() -> Status {
      TRY_ASSIGN(socks, tcp_sockets_here());
      return {};
    });
    const TcpSocket* seen = nullptr;
    for (const auto& s : socks)
      if (s.local == c.to && s.local_port == c.port && s.remote == e->reply.dst && s.remote_port == e->reply.dport)
        seen = &s;
    const std::string peer = endpoint(e->reply.dst, e->reply.dport);
    if (!st)
      wrong.push_back("reading " + server->name + "'s sockets: " + st.error().str());
    else if (seen)
      detail += "; " + server->name + " saw the request from " + peer +
                (got ? "" : " (" + tcp_state_name(seen->state) + ": its answers to " + peer + " never arrive)");
    else if (got)
      wrong.push_back(server->name + " has no connection from " + peer);
  }
  if (!got) wrong.push_back("the request got no answer");
  for (const auto& w : wrong) detail += "; " + w;
  return verdict(c, wrong.empty(), detail);
}

}  // namespace

extern const KindRun nat_map_kind{"nat-map", nat_map, nullptr, {}};

}  // namespace labctl::check_kind
