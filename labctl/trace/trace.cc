#include "labctl/trace/trace.h"

#include <fmt/format.h>
#include <net/if.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>

#include "labctl/base/fd.h"
#include "labctl/kernel/ipvs_proc.h"
#include "labctl/kernel/netns.h"
#include "labctl/kernel/probe.h"
#include "labctl/kernel/rtnl.h"
#include "labctl/kernel/tcp_sockets.h"
#include "labctl/lab/multihost.h"
#include "labctl/lab/remote.h"
#include "labctl/model/hosts.h"
#include "labctl/model/load_target.h"
#include "labctl/trace/host_frames.h"

namespace labctl {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
// After the request: how long the capture may still take to drain what the kernel queued.
constexpr auto kDrainBound = 2s;
// --all: after the client's connection closed, how long the capture goes on for the last
// segments of connections a proxy opened on the request's behalf.
constexpr auto kSettle = 300ms;

Result<std::pair<const Node*, const VirtualService*>> pick_service(const Topology& t, const std::string& name) {
  std::vector<std::pair<const Node*, const VirtualService*>> all;
  for (const auto& n : t.nodes)
    for (const auto& s : n.services) all.push_back({&n, &s});
  std::string names;
  for (const auto& [n, s] : all) names += (names.empty() ? "" : ", ") + s->name + " (on " + n->name + ")";
  if (all.empty()) return fail("lab " + t.name + " has no IPVS service to trace", "trace follows a request to a service's VIP");
  if (name.empty()) {
    if (all.size() > 1) return fail("lab " + t.name + " has several services: " + names, "pick one with --service NAME");
    return all[0];
  }
  for (const auto& p : all)
    if (p.second->name == name) return p;
  return fail("lab " + t.name + " has no service " + name, "its services: " + names);
}

// The node requests come from: the one the lab's own checks of this service use.
Result<std::string> pick_client(const Topology& t, const VirtualService& svc, const std::string& from) {
  std::string nodes;
  for (const auto& n : t.nodes) nodes += (nodes.empty() ? "" : ", ") + n.name;
  if (!from.empty()) {
    if (!t.node(from)) return fail("lab " + t.name + " has no node " + from, "its nodes: " + nodes);
    return from;
  }
  for (const auto& c : t.checks)
    if (c.service == svc.name && !c.from.empty() && t.node(c.from)) return c.from;
  if (t.node("client")) return std::string("client");
  return fail("no node to send the request from", "name one with --from NODE (its nodes: " + nodes + ")");
}

std::map<IpAddr, std::string> address_owners(const Topology& t) {
  std::map<IpAddr, std::string> owners;
  for (const auto& n : t.nodes)
    for (const auto& i : n.interfaces)
      for (const auto& a : i.addresses) owners.emplace(a.addr, n.name);
  return owners;
}

// After the close: each end's socket of the connection from its node's socket table (the
// side that closed first holds TIME_WAIT), and the director's IPVS entry for it.
void read_after_close(const Topology& t, const std::map<std::string, Fd>& ns, const TraceSetup& setup,
                      ConnectionLife& c, bool via_director) {
  for (Side side : {Side::Client, Side::Server}) {
    const std::string& node = side == Side::Client ? c.client_node : c.server_node;
    auto it = ns.find(node);
    if (!t.node(node)) continue;
    SocketFact fact;
    fact.node = node;
    fact.side = side;
    if (it == ns.end()) {
      fact.error = "it runs on host " + host_of(t, *t.node(node)) + ", and socket tables are read only on the "
                   "host the trace runs on (trace --from " + node + " reads it)";
      c.sockets.push_back(std::move(fact));
      continue;
    }
    Status read = run_in_netns(it->second.get(), [&]() -> Status {
      TRY_ASSIGN(auto sockets, tcp_sockets_here());
      for (const auto& s : sockets) {
        const bool match = side == Side::Client
                               ? s.local_port == c.client_port && s.remote == c.server_ip && s.remote_port == c.server_port
                               : s.local_port == c.server_port && s.remote == c.client_ip && s.remote_port == c.client_port;
        if (match && s.state != 10) fact.state = tcp_state_name(s.state);
      }
      return {};
    });
    if (!read) fact.error = read.error().str();
    c.sockets.push_back(std::move(fact));
  }
  if (!via_director || setup.director.empty() || !t.node(setup.director)) return;
  DirectorEntryFact e;
  if (!ns.contains(setup.director)) {
    e.error = "the director runs on host " + host_of(t, *t.node(setup.director)) +
              ", and its connection table is read only on the host the trace runs on";
    c.director_entry = e;
    return;
  }
  Status read = run_in_netns(ns.at(setup.director).get(), [&]() -> Status {
    TRY_ASSIGN(auto conns, ipvs::read_conn_table());
    for (const auto& x : conns)
      if (x.client == c.client_ip && x.client_port == c.client_port && x.vport == c.server_port) {
        e.found = true;
        e.state = x.state;
        e.expires = x.expires;
      }
    return {};
  });
  if (!read) e.error = read.error().str();
  c.director_entry = e;
}

// Another host's capture of its own nodes (`trace LAB --frames-here` over ssh), running on
// a thread of its own from before the request until this host's capture is done.
struct HostCapture {
  RemoteHost host;
  HostFrames got;
  std::string failure;  ///< Why it gave no frames ("" : none).
  std::atomic<bool> armed{false};  ///< It said every capture point is armed.
  std::atomic<bool> ended{false};
  std::thread thread;
};

// Every other host's capture; leaving the scope ends them (their stdin closes) and waits.
struct HostCaptures {
  std::vector<std::unique_ptr<HostCapture>> hosts;
  std::vector<std::string> unreached;  ///< Hosts with nodes but no ssh destination.
  std::atomic<bool> end{false};
  HostCaptures() = default;
  HostCaptures(const HostCaptures&) = delete;
  HostCaptures& operator=(const HostCaptures&) = delete;
  ~HostCaptures() { finish(); }
  void finish() {
    end = true;
    for (auto& h : hosts)
      if (h->thread.joinable()) h->thread.join();
  }
};

// Starts a capture on each host of a lab across hosts that has nodes and is not `self`,
// and waits until every one is armed (a frame a host missed would be a hop missing); an
// error names the host that could not.
Status start_host_captures(const Topology& t, const std::string& self, std::chrono::milliseconds bound,
                           const std::atomic<bool>* interrupted, HostCaptures& hc) {
  auto rec = find_hosts_record(t.name);
  std::set<std::string> hosts;
  for (const auto& n : t.nodes)
    if (host_of(t, n) != self) hosts.insert(host_of(t, n));
  const auto seconds = fmt::format("{:.1f}", std::chrono::duration<double>(bound).count());
  for (const auto& h : hosts) {
    const RemoteHost* r = nullptr;
    if (rec)
      for (const auto& x : rec->remotes)
        if (x.name == h) r = &x;
    if (!r) {
      hc.unreached.push_back(h);
      continue;
    }
    hc.hosts.push_back(std::make_unique<HostCapture>());
    HostCapture* p = hc.hosts.back().get();
    p->host = *r;
    p->thread = std::thread([p, lab = t.name, seconds, bound, end = &hc.end, interrupted] {
      auto session = SshSession::open(p->host);
      if (!session) {
        p->failure = session.error().str();
        p->ended = true;
        return;
      }
      std::string err;
      CaptureIo io;
      io.end_input = end;
      io.on_line = [&](bool is_err, std::string_view line) {
        if (is_err) err += std::string(line) + "\n";
        else if (p->failure.empty())
          if (Status st = p->got.take(line); !st) p->failure = st.error().str();
        if (p->got.ready) p->armed = true;
      };
      auto ran = (*session)->labctl({"trace", lab, "--frames-here", "--timeout", seconds}, io,
                                    Clock::now() + bound + std::chrono::seconds(20), interrupted);
      if (!ran) p->failure = ran.error().str();
      else if (ran->exit_code != 0 && p->failure.empty())
        p->failure = what_it_said(HostRun{p->host.name, ran->exit_code, ran->out, err});
      p->ended = true;
    });
  }
  const auto give_up = Clock::now() + std::chrono::seconds(30);
  for (auto& p : hc.hosts) {
    while (!p->armed && !p->ended && Clock::now() < give_up && !(interrupted && *interrupted))
      std::this_thread::sleep_for(5ms);
    if (interrupted && *interrupted) return fail("trace interrupted");
    if (!p->armed)
      return fail("host " + p->host.name + " could not capture its nodes of lab " + t.name + ": " +
                      (p->failure.empty() ? "it did not start capturing within 30 s" : p->failure),
                  "a trace across hosts captures on each of them over ssh: see `labctl status " + t.name + "`");
  }
  return {};
}

}  // namespace

Result<std::vector<TraceIface>> node_interfaces(const std::string& lab, const std::string& node, bool only_up) {
  TRY_ASSIGN(Fd ns, open_netns(netns_name(lab, node)));
  std::vector<TraceIface> out;
  TRY(run_in_netns(ns.get(), [&]() -> Status {
    TRY_ASSIGN(Rtnl rtnl, Rtnl::open(netns_name(lab, node)));
    TRY_ASSIGN(auto links, rtnl.links());
    for (const auto& l : links) {
      if (l.name == "lo" || (only_up && !(l.flags & IFF_UP))) continue;
      out.push_back({node, l.name, l.mac});
    }
    return {};
  }));
  return out;
}

Result<TraceSetup> trace_setup(const Topology& t, const TraceOptions& o) {
  TraceSetup setup;
  setup.lab = t.name;
  setup.whole = o.whole;
  setup.addr_owner = address_owners(t);
  if (!o.to.empty()) {
    if (!o.service.empty()) return fail("give --service or --to, not both");
    TRY_ASSIGN(LoadTarget target, parse_load_target(o.to));
    setup.vip = target.addr;
    setup.port = target.port;
    std::string nodes;
    for (const auto& n : t.nodes) nodes += (nodes.empty() ? "" : ", ") + n.name;
    if (o.from.empty()) return fail("--to needs --from NODE", "its nodes: " + nodes);
    if (!t.node(o.from)) return fail("lab " + t.name + " has no node " + o.from, "its nodes: " + nodes);
    setup.client = o.from;
  } else {
    TRY_ASSIGN(auto found, pick_service(t, o.service));
    const auto& [director, svc] = found;
    if (svc->fwmark != 0)
      return fail("service " + svc->name + " is selected by firewall mark " + std::to_string(svc->fwmark),
                  "trace follows a request to a VIP and port: give --to VIP:PORT --from NODE");
    TRY_ASSIGN(setup.client, pick_client(t, *svc, o.from));
    setup.service = svc->name;
    setup.method = svc->real_servers.empty() ? FwdMethod::Dr : svc->real_servers[0].method;
    setup.proto = svc->proto;
    setup.vip = svc->vip;
    setup.port = svc->port;
    setup.director = director->name;
  }
  return setup;
}

std::string send_trace_request(int client_ns, const TraceSetup& setup, std::chrono::milliseconds timeout) {
  std::string result;
  Status sent = run_in_netns(client_ns, [&]() -> Status {
    if (setup.proto == Proto::Udp) {
      auto r = udp_exchange(setup.vip, setup.port, "labctl trace\n", timeout);
      if (!r) return tl::unexpected(r.error());
      result = "UDP answer: " + *r;
      return {};
    }
    auto r = http_get(setup.vip, setup.port, "/", timeout);
    if (!r) return tl::unexpected(r.error());
    result = "HTTP 200: " + *r;
    return {};
  });
  if (!sent)
    result = "failed: " + sent.error().message +
             (sent.error().errnum && sent.error().errnum != ETIMEDOUT ? std::string(": ") + std::strerror(sent.error().errnum)
                                                                      : "");
  return result;
}

Result<Walk> run_trace(const Topology& t, TraceSetup setup, const TraceOptions& o) {
  const std::string client = setup.client;

  // Every up interface of every node: the walk is what the packets say, wherever they went.
  // In a lab across hosts this host captures its own nodes and every other host its own,
  // armed before anything is sent.
  std::string self;
  if (multi_host(t)) {
    auto rec = find_hosts_record(t.name);
    self = rec ? rec->self : local_host(t);
  }
  HostCaptures others;
  std::unique_ptr<SshSession> sender;  // the client's host, when it is another
  if (multi_host(t)) {
    TRY(start_host_captures(t, self, o.timeout * 2 + kDrainBound + std::chrono::seconds(5), o.interrupted, others));
    const std::string at = host_of(t, *t.node(client));
    if (at != self && !o.passive) {
      auto rec = find_hosts_record(t.name);
      const RemoteHost* r = nullptr;
      if (rec)
        for (const auto& x : rec->remotes)
          if (x.name == at) r = &x;
      if (!r)
        return fail("node " + client + " runs on host " + at + ", which has no ssh destination in [hosts] (the "
                        "machine the lab was brought up from)",
                    "run the trace there");
      TRY_ASSIGN(sender, SshSession::open(*r));
    }
  }
  std::map<std::string, Fd> ns;
  std::vector<CaptureIface> where;
  for (const auto& n : t.nodes) {
    if (multi_host(t) && host_of(t, n) != self) continue;
    auto fd = open_netns(netns_name(t.name, n.name));
    if (!fd)
      return fail("lab " + t.name + " has no namespace for node " + n.name + " (" + fd.error().str() + ")",
                  "is the lab up? `labctl up " + t.name + "`");
    TRY_ASSIGN(auto ifs, node_interfaces(t.name, n.name, true));
    for (auto& i : ifs) {
      where.push_back({n.name, i.iface, fd->get()});
      setup.ifaces.push_back(std::move(i));
    }
    ns[n.name] = std::move(*fd);
  }
  CaptureOptions co;
  co.snaplen = kTraceSnaplen;
  co.buffer_bytes = kTraceBuffer;
  TRY_ASSIGN(PcapCapture cap, PcapCapture::open(where, co));
  const int64_t armed_ns = cap.armed_ns();

  // The capture reads on a thread of its own while this one sends the request.
  std::vector<TracedFrame> frames;
  std::atomic<bool> finish{false};
  std::optional<uint16_t> passive_port;  // passive: the connection being followed
  std::atomic<bool> passive_answered{false};
  std::atomic<bool> closed{false};  // --all: the followed connection's four-way close ended
  IpAddr client_ip;
  Result<CaptureReport> rep = CaptureReport{};
  const auto until = Clock::now() + o.timeout + kDrainBound;
  std::thread reader([&] {
    CaptureLimits lim;
    lim.until = until;
    lim.interrupted = o.interrupted;
    lim.finish = &finish;
    if (o.passive)
      lim.done = [&] { return passive_answered.load() && (!o.whole || setup.proto != Proto::Tcp || closed.load()); };
    rep = cap.run(lim, [&](const CapturedFrame& f) {
      // Passive: a connection that went by while the handles were still being opened may
      // be missing hops on the late ones; the walk starts with the first one seen whole.
      if (o.passive && f.t_ns < armed_ns) return;
      TracedFrame tf{f.iface, f.dir, f.t_ns, decode_packet(f.link, f.data.data(), f.data.size(), f.wire_len)};
      bool ours = false;  // a TCP segment of the followed connection, on the client's side
      if ((o.passive || o.whole) && where[f.iface].node == client) {
        const Packet& p = tf.pkt;
        if (!passive_port && f.dir == Direction::Out && p.l4 && p.inner() && p.inner()->dst == setup.vip &&
            p.l4->dport == setup.port && (setup.proto == Proto::Udp || (p.l4->tcp_flags & 0x12) == 0x02)) {
          passive_port = p.l4->sport;
          client_ip = p.inner()->src;
          ours = true;
        } else if (passive_port && f.dir == Direction::In && p.l4 && p.l4->dport == *passive_port) {
          passive_answered = true;
          ours = true;
        } else if (passive_port && f.dir == Direction::Out && p.l4 && p.l4->sport == *passive_port) {
          ours = true;
        }
      }
      const size_t at = f.iface;
      frames.push_back(std::move(tf));
      if (ours && o.whole && setup.proto == Proto::Tcp) {
        Lifecycle l = follow_connection(connection_segments(frames, at, client_ip, *passive_port));
        if (l.closed || l.reset_by) closed = true;
      }
    });
  });

  std::string result;
  if (!o.passive) {
    if (!sender) {
      result = send_trace_request(ns.at(client).get(), setup, o.timeout);
    } else {
      // The client runs on another host: that host's labctl sends the request.
      std::vector<std::string> args = {"trace", t.name, "--send-only", "--from", client, "--timeout",
                                       fmt::format("{:.3f}", std::chrono::duration<double>(o.timeout).count())};
      if (setup.service.empty()) args.insert(args.end(), {"--to", endpoint_text(setup.vip, setup.port)});
      else args.insert(args.end(), {"--service", setup.service});
      auto ran = sender->labctl(args, {}, Clock::now() + o.timeout + std::chrono::seconds(20), o.interrupted);
      if (!ran) result = "failed: " + ran.error().str();
      else if (ran->exit_code != 0)
        result = "failed: " + what_it_said(HostRun{sender->host().name, ran->exit_code, ran->out, ran->err});
      else result = ran->out.substr(0, ran->out.find('\n'));
    }
    if (o.whole && setup.proto == Proto::Tcp) {
      // The close follows the answer: wait for its last ACK, then a little longer for a
      // proxy's own connection to end too.
      const auto close_by = Clock::now() + o.timeout;
      while (!closed && Clock::now() < close_by && !(o.interrupted && *o.interrupted)) std::this_thread::sleep_for(10ms);
      std::this_thread::sleep_for(kSettle);
    }
    finish = true;
  }
  reader.join();
  others.finish();  // each host drains what its kernel queued, sends it, and ends
  if (!rep) return tl::unexpected(rep.error());
  if (rep->interrupted) return fail("trace interrupted");
  std::vector<std::string> merged;
  for (auto& h : others.hosts) {
    if (!h->failure.empty())
      return fail("host " + h->host.name + " stopped capturing its nodes of lab " + t.name + ": " + h->failure);
    const size_t base = setup.ifaces.size();
    for (auto& i : h->got.ifaces) setup.ifaces.push_back(std::move(i));
    for (const auto& f : h->got.frames) {
      if (o.passive && f.t_ns < armed_ns) continue;
      frames.push_back({base + f.iface, f.dir, f.t_ns, decode_packet(f.link, f.data.data(), f.data.size(), f.wire_len)});
    }
    merged.push_back(h->host.name);
  }

  Walk w = build_walk(setup, std::move(frames));
  if (w.life) read_after_close(t, ns, setup, *w.life, true);
  for (auto& leg : w.upstream)
    if (leg.life) read_after_close(t, ns, setup, *leg.life, false);
  if (!o.passive) {
    w.request_result = (setup.proto == Proto::Udp ? "UDP datagram" : "HTTP GET /") + std::string(" from ") +
                       client + ": " + result;
    w.findings.insert(w.findings.begin(), w.request_result);
  } else if (!w.client_port) {
    w.findings.insert(w.findings.begin(),
                      fmt::format("no connection from {} to the service came within {} ms (passive: nothing was sent)",
                                  client, o.timeout.count()));
  }
  if (!merged.empty()) {
    std::string hosts;
    for (const auto& h : merged) hosts += (hosts.empty() ? "" : ", ") + h;
    w.findings.push_back("captured " + (where.empty() ? std::string() : "here (host " + self + ") and ") + "on host" +
                         (merged.size() > 1 ? "s " : " ") + hosts +
                         " over ssh, merged in time order by each host's clock: hops on different hosts are in "
                         "order only as far as their clocks agree (NTP keeps them within a millisecond or so)");
  }
  for (const auto& h : others.unreached) {
    std::string nodes;
    for (const auto& n : t.nodes)
      if (host_of(t, n) == h) nodes += (nodes.empty() ? "" : ", ") + n.name;
    w.findings.push_back("not captured: " + nodes + " on host " + h +
                         ", which has no ssh destination in [hosts] (the machine the lab was brought up from): "
                         "trace from a node there to see its hops");
  }
  if (rep->dropped)
    w.findings.push_back(fmt::format("the kernel dropped {} captured frame(s): the walk may miss hops", rep->dropped));
  return w;
}

}  // namespace labctl
