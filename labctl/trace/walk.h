// A packet's walk through a lab, read from captured frames: the one connection a trace
// made (found by the client's SYN to the VIP), every interface its first packet (the SYN)
// and its answer (the SYN-ACK) were seen on, in time order, what changed from one hop to
// the next, and why, in the course's words for the service's forwarding method (DR
// rewrites only the destination MAC; NAT rewrites the destination address and the reply's
// source; TUN wraps the packet in a second IP header). Pure: the frames come in as values,
// so every rule here is unit-tested with hand-built frames.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "labctl/model/ip.h"
#include "labctl/model/topology.h"
#include "labctl/trace/capture.h"
#include "labctl/trace/lifecycle.h"
#include "labctl/trace/packet.h"

namespace labctl {

/// A lab interface a trace captured on, with its link address as the kernel has it.
struct TraceIface {
  std::string node;
  std::string iface;
  std::string mac;  ///< "" for links without one (tunl0).
};

/// What a trace knows before it looks at any packet: the service and the lab's names.
struct TraceSetup {
  std::string lab;
  std::string service;  ///< "" when tracing a plain address and port (no IPVS service).
  std::optional<FwdMethod> method;  ///< The service's forwarding method; nullopt: plain routing.
  Proto proto = Proto::Tcp;
  IpAddr vip;  ///< The service's VIP, or the plain target address.
  uint16_t port = 0;
  std::string client;    ///< The node the request is sent from.
  std::string director;  ///< The node holding the service ("" without one).
  std::vector<TraceIface> ifaces;
  /// Follow the whole connection (trace --all): handshake, request, reply, four-way close.
  bool whole = false;
  /// Who holds an address (node names; the VIP as "VIP"), only for labelling hops.
  std::map<IpAddr, std::string> addr_owner;
};

/// A decoded frame and where it was seen.
struct TracedFrame {
  size_t iface = 0;  ///< Index into TraceSetup::ifaces.
  Direction dir = Direction::In;
  int64_t t_ns = 0;
  Packet pkt;
};

/// One way a packet differs from the hop before it. The walk decides on these values and
/// to_string() puts them into words at the end, so rewording one never changes a verdict.
struct PacketChange {
  enum class Kind {
    SrcMac,  ///< from -> to: the MACs, labelled with their owners.
    DstMac,
    EthernetRemoved,  ///< A tunnel device carries bare IP.
    EthernetAdded,
    Wrapped,    ///< from -> to: the new outer header's addresses (IPIP).
    Unwrapped,  ///< from -> to: the removed outer header's addresses.
    OuterSrc,
    OuterDst,
    OuterTtl,
    SrcIp,  ///< Of the inner header when `inner`, else of the only one.
    DstIp,
    Ttl,
    SrcPort,
    DstPort,
  };
  Kind kind = Kind::SrcMac;
  bool inner = false;  ///< SrcIp, DstIp, Ttl: the inner header of an IPIP packet.
  std::string from;    ///< The old value as shown (an address with its owner, a TTL, a port).
  std::string to;
};
[[nodiscard]] std::string to_string(const PacketChange& c);

struct Hop {
  size_t iface = 0;
  std::string node, ifname;
  Direction dir = Direction::In;
  int64_t t_ns = 0;
  Packet pkt;
  std::vector<PacketChange> changes;  ///< What differs from the previous hop.
  std::string why;                   ///< The reason, in the course's terms.
};

/// A node's socket of a traced connection, read from its socket table after the close
/// (run_trace fills it; the walk itself is pure).
struct SocketFact {
  std::string node;
  Side side = Side::Client;
  std::string state;  ///< "TIME_WAIT", "FIN_WAIT2" ...; "" when the node holds no socket of it.
  std::string error;  ///< Why the table could not be read ("" when it was).
};

/// The director's IPVS connection entry for a traced connection, read after the close.
struct DirectorEntryFact {
  bool found = false;
  std::string state;  ///< As /proc/net/ip_vs_conn names it: "FIN_WAIT", "TIME_WAIT" ...
  uint32_t expires = 0;  ///< Seconds left.
  std::string error;     ///< Why the table could not be read ("" when it was).
};

/// One connection followed from its first SYN to its close (trace --all).
struct ConnectionLife {
  std::string seen_at;  ///< node:iface of the opening side, where its segments were read.
  std::string client_node, server_node;
  IpAddr client_ip, server_ip;
  uint16_t client_port = 0, server_port = 0;
  Lifecycle life;
  /// The connection's segments an LVS director received, from each side (its FINs among them).
  int director_from_client = 0, director_from_server = 0;
  bool director_fin_from_client = false, director_fin_from_server = false;
  std::vector<SocketFact> sockets;                 ///< The client's and the server's, after the close.
  std::optional<DirectorEntryFact> director_entry;  ///< LVS only.
};

/// A proxy's own connection onward: a node that received the request opened a connection
/// of its own (a new source address and port) before it answered (an L7 proxy such as nginx).
struct ProxyLeg {
  std::string proxy;  ///< The node that took the connection before this one.
  IpAddr src, dst;
  uint16_t sport = 0, dport = 0;
  std::vector<Hop> request;  ///< Its SYN, hop by hop.
  std::vector<Hop> reply;    ///< Its SYN-ACK.
  std::string server;        ///< The node its SYN reached last ("" when none did).
  bool answered = false;     ///< The SYN-ACK reached the proxy.
  std::optional<Hop> server_answer;  ///< The server's first data back, as the proxy received it.
  std::optional<Hop> proxy_answer;   ///< The proxy's first data to its own client after that.
  std::optional<ConnectionLife> life;
};

struct Walk {
  TraceSetup setup;
  std::optional<IpAddr> client_ip;
  std::optional<uint16_t> client_port;
  std::vector<Hop> request;  ///< The first packet (TCP SYN / UDP datagram), hop by hop.
  std::vector<Hop> reply;    ///< Its answer (SYN-ACK / datagram back).
  int retransmissions = 0;   ///< Extra copies of the first packet the client sent.
  bool answered = false;     ///< The answer reached the client node.
  std::string real_server;   ///< Node the request reached last ("" when none did).
  bool request_via_director = false;
  bool reply_via_director = false;
  std::string request_result;  ///< What the request sent by the trace got ("" when none was sent).
  std::vector<std::string> findings;  ///< Conclusions: the reply's path, what went wrong.
  /// The connections proxies opened on the request's behalf, in order (none without a proxy).
  std::vector<ProxyLeg> upstream;
  std::optional<ConnectionLife> life;  ///< The whole client connection (setup.whole).
  bool ok = false;  ///< Answered, and every promise of the method held.
};

/// Builds the walk from every frame captured during the trace (any order).
[[nodiscard]] Walk build_walk(const TraceSetup& setup, std::vector<TracedFrame> frames);

/// The segments of the connection `cip`:`cport` <-> `sip`:`sport` the node `node` sent and
/// received on interface `iface`, as the client (cip) side sees them; for run_trace's wait
/// for the close, which follows the same connection while the frames come in.
[[nodiscard]] std::vector<TcpSegment> connection_segments(const std::vector<TracedFrame>& frames, size_t iface,
                                                          const IpAddr& cip, uint16_t cport);

/// "10.0.0.1:80", "[fd00::1]:80".
[[nodiscard]] std::string endpoint_text(const IpAddr& a, uint16_t port);

[[nodiscard]] std::string render_walk(const Walk& w);
[[nodiscard]] nlohmann::json walk_json(const Walk& w);

}  // namespace labctl
