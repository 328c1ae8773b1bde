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
  bool ok = false;  ///< Answered, and every promise of the method held.
};

/// Builds the walk from every frame captured during the trace (any order).
[[nodiscard]] Walk build_walk(const TraceSetup& setup, std::vector<TracedFrame> frames);

[[nodiscard]] std::string render_walk(const Walk& w);
[[nodiscard]] nlohmann::json walk_json(const Walk& w);

}  // namespace labctl
