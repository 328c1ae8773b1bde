// The resolved topology: what a lab is, after parsing, defaults and reference checks.
// Every name here is final (no prefixes added yet); namespaces are "<lab>-<node>" and
// "<lab>-<switch>" (see netns_name). The loader (load.h) produces this; the
// planner (planner.h) consumes it. Pos fields point back into the TOML for messages, and
// `keys` (located.h) to each key of the object's table, for messages about one key.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "labctl/model/impair.h"
#include "labctl/model/ip.h"
#include "labctl/model/located.h"

namespace labctl {

/// Local: the director is its own real server (the RS address is one of its own addresses);
/// IPVS hands the packet to the director's own stack (IP_VS_CONN_F_LOCALNODE).
enum class FwdMethod { Nat, Dr, Tun, Local };
enum class Proto { Tcp, Udp, Sctp };

/// A veth end inside a node. It connects to exactly one thing: a switch, or a peer
/// interface on another node.
struct Interface {
  std::string name;                 ///< Name inside the node namespace, <= 15 bytes.
  std::vector<IpPrefix> addresses;  ///< Interface addresses with their prefix length.
  int mtu = 0;                      ///< 0: kernel default.
  std::string mac;                  ///< "" : kernel-chosen.
  std::string sw;                   ///< Switch this interface plugs into, or "".
  std::string peer_node;            ///< For node-to-node links: the other node ...
  std::string peer_ifname;          ///< ... and its interface.
  std::string port;                 ///< Name of the bridge port in the switch namespace.
  /// `impair`: this end's egress (root qdisc); empty: none.
  Impairment impair;
  /// `port_impair`: the egress of the bridge port in the switch (traffic towards this node).
  Impairment port_impair;
  Pos pos;
  KeyPositions keys;
};

struct Route {
  std::optional<IpPrefix> to;  ///< nullopt: the default route.
  int family = 0;              ///< AF_INET or AF_INET6 (needed for default routes).
  std::optional<IpAddr> via;   ///< Gateway, if any.
  std::string dev;             ///< Output interface, "" to let the kernel pick from via.
  Pos pos;
  KeyPositions keys;
};

struct Sysctl {
  std::string key;  ///< Dotted form, e.g. "net.ipv4.conf.all.arp_ignore".
  std::string value;
  Pos pos;
};

/// An explicit point-to-point IPIP device.
struct Tunnel {
  std::string name;
  IpAddr local;
  IpAddr remote;
  int ttl = 64;
  std::string dev;  ///< Underlay device to bind to, "" for none.
  std::vector<IpPrefix> addresses;
  Pos pos;
  KeyPositions keys;
};

struct RealServer {
  IpAddr addr;
  std::string node;   ///< The node holding addr, "" when no node of the lab has it.
  uint16_t port = 0;  ///< 0: same as the service port.
  FwdMethod method = FwdMethod::Dr;
  int weight = 1;
  uint32_t u_thresh = 0;  ///< 0: no upper connection threshold.
  uint32_t l_thresh = 0;
  Pos pos;
  KeyPositions keys;
};

/// An IPVS virtual service on a director node. Identified by proto+vip+port, or by fwmark
/// when fwmark != 0 (then vip carries only the address family).
struct VirtualService {
  std::string name;
  Proto proto = Proto::Tcp;
  IpAddr vip;
  uint16_t port = 0;
  uint32_t fwmark = 0;
  std::string scheduler = "rr";
  uint32_t persistence = 0;  ///< Persistence timeout in seconds; 0: not persistent.
  /// Persistence granularity as a prefix length (clients in one such network share a real
  /// server); nullopt: the full length (/32, /128). Only with persistence.
  std::optional<int> netmask;
  /// Scheduler flags as ipvsadm names them (-b): sh-fallback, sh-port, mh-fallback, mh-port.
  std::vector<std::string> sched_flags;
  bool one_packet = false;  ///< One-packet scheduling (ipvsadm -o): each UDP datagram scheduled alone.
  std::vector<RealServer> real_servers;
  Pos pos;
  KeyPositions keys;
};

/// A packet-marking rule of a node (the `marks` list): packets matching every given field
/// get `mark` before routing, so a fwmark service can pick them up. Applied with nftables.
struct MarkRule {
  std::optional<Proto> proto;      ///< nullopt: any protocol (then no ports).
  std::optional<IpPrefix> src;     ///< Network (host bits clear) or a host (/32, /128).
  std::optional<IpPrefix> dst;
  std::vector<uint16_t> sport;     ///< Empty: any; several: any of them.
  std::vector<uint16_t> dport;
  std::string iif;                 ///< Input interface, "" for any.
  uint32_t mark = 0;
  Pos pos;
  KeyPositions keys;
};

/// What a `nat` rule does to the packets it matches: masquerade and snat rewrite the source
/// as packets leave (postrouting), dnat and redirect the destination as they arrive
/// (prerouting, before routing).
enum class NatType { Masquerade, Snat, Dnat, Redirect };

/// A packet NAT rule of a node (the `nat` list), applied with nftables in the node's table
/// beside its marks. Matches like MarkRule (every given field), plus oif for the
/// postrouting types. The first matching rule of its chain wins (a nat statement is final).
struct NatRule {
  NatType type = NatType::Masquerade;
  std::optional<Proto> proto;
  std::optional<IpPrefix> src;
  std::optional<IpPrefix> dst;
  std::vector<uint16_t> sport;
  std::vector<uint16_t> dport;
  std::string iif;           ///< Input interface, "" for any.
  std::string oif;           ///< Output interface (masquerade, snat only), "" for any.
  std::optional<IpAddr> to;  ///< snat, dnat: the new address.
  uint16_t to_port = 0;      ///< snat, dnat, redirect: the new port; 0 keeps it.
  Pos pos;
  KeyPositions keys;
  /// Masquerade and snat: the postrouting chain (srcnat); dnat and redirect: prerouting.
  [[nodiscard]] bool source_nat() const {
    return type == NatType::Masquerade || type == NatType::Snat;
  }
};

/// One VRRP instance of a keepalived agent: the router that holds the floating addresses
/// while it is MASTER (keepalived adds and removes them, labctl never does).
struct VrrpInstance {
  std::string interface;    ///< The node's interface VRRP adverts go out on.
  bool master = false;      ///< state MASTER (else BACKUP) at start.
  int priority = 100;       ///< 1..254; the highest alive router is MASTER.
  int virtual_router_id = 0;  ///< 1..255, the same on every router of the pair.
  double advert_int = 1;    ///< Seconds between adverts.
  std::vector<IpPrefix> vips;  ///< The floating addresses (virtual_ipaddress).
  Pos pos;
  KeyPositions keys;  ///< The agent's table (vrrp) or its gateway table.
};

/// A service of the lab whose IPVS entries keepalived programs (with health checks)
/// instead of labctl.
struct KeepalivedService {
  std::string name;                   ///< A service of the lab (on any director).
  std::string check = "tcp";          ///< tcp, http, udp or none: keepalived's real server check.
  std::string path = "/";             ///< http: the URL path asked for.
  int status = 200;                   ///< http: the status code that means healthy.
  double delay_loop = 1;              ///< Seconds between checks.
  double connect_timeout = 1;         ///< Seconds a check may take.
  int retry = 1;                      ///< Failed checks in a row before a server is removed.
  std::optional<IpAddr> sorry_server; ///< Takes the traffic when every real server is down.
  uint16_t sorry_port = 0;            ///< 0: the service's port.
  bool inhibit_on_failure = false;    ///< A failed server stays with weight 0 instead of leaving.
  Pos pos;
};

/// What a keepalived agent runs: VRRP for a floating VIP (optionally a second, synced
/// instance for the real servers' gateway) and the services it manages; or a config given
/// verbatim, which then manages `services` by itself.
struct KeepalivedSpec {
  std::optional<VrrpInstance> vrrp;     ///< Unset when `config` is given.
  std::optional<VrrpInstance> gateway;  ///< A second instance in one vrrp_sync_group with vrrp.
  std::vector<KeepalivedService> services;
  std::string config;                   ///< Verbatim keepalived.conf, "" to generate it.
};

/// One server of an nginx agent's upstream group: `NODE:PORT` or `ADDRESS:PORT` as written;
/// validate resolves a node to its first address (a lab has no DNS).
struct NginxServer {
  std::string target;  ///< As written before the port: a node's name or an address.
  IpAddr addr;         ///< The address nginx connects to (set by validate for a node).
  uint16_t port = 0;
  Pos pos;
};

/// An nginx `upstream` block: a named group of servers.
struct NginxUpstream {
  std::string name;
  std::vector<NginxServer> servers;
  Pos pos;
};

/// A `location PATH { proxy_pass http://UPSTREAM; }`: requests whose path starts with
/// `path` (the longest match wins) go to the group.
struct NginxRoute {
  std::string path;
  std::string upstream;
  Pos pos;
};

/// An nginx agent (reverse proxy): what its nginx.conf is generated from, or the config
/// given verbatim.
struct NginxSpec {
  std::optional<IpAddr> address;  ///< The listen address; unset: every address of the node.
  std::vector<NginxUpstream> upstreams;  ///< In the order written.
  std::vector<NginxRoute> routes;        ///< In the order written.
  /// Idle connections to its upstreams each worker keeps open (nginx's `keepalive`); 0: a
  /// new connection per request, closed after it.
  int keepalive = 0;
  std::string method = "round_robin";  ///< round_robin, least_conn, ip_hash or hash.
  std::string hash_key;                ///< method "hash": what is hashed, e.g. "$request_uri".
  int worker_processes = 1;
  /// A path nginx answers itself with its node's name (one line, as labagent's http agent
  /// answers), so that checks at a VIP (balance, http) count which proxy answered; "": none.
  std::string name_path;
  std::string config;  ///< Verbatim nginx.conf, "" to generate it.
};

/// A workload process started inside a node. Built-in kinds run `labagent`; command runs
/// argv as given (never through a shell).
struct Agent {
  std::string name;
  /// A registered kind's name: its model half (model/agent_spec.h) and its plan half
  /// (plan/agent_kind.h) are found by it.
  std::string kind = "command";
  uint16_t port = 0;                      ///< Listening port for servers.
  std::vector<std::string> argv;          ///< Command kind: the program and its arguments.
  std::map<std::string, std::string> params;  ///< Kind-specific options (target, count...).
  int ready_timeout_ms = 0;               ///< ready_timeout: how long it may take to be ready; 0: the default.
  bool restart_on_failure = false;        ///< restart = "on-failure": started again when it fails.
  std::optional<KeepalivedSpec> keepalived;  ///< Keepalived kind only.
  std::optional<NginxSpec> nginx;            ///< Nginx kind only.
  Pos pos;
  KeyPositions keys;  ///< The agent's table: its own keys and a keepalived agent's vrrp keys.
};

/// A director's IPVS connection synchronisation (`ipvs_sync`): the kernel's sync daemon
/// multicasts the master's connections on `interface` so that a backup director learns
/// them and carries them on after a takeover. With a keepalived agent (VRRP) on the node,
/// keepalived runs it (`lvs_sync_daemon`) and the role follows the VRRP state; else labctl
/// starts it in the given role(s) over IPVS generic netlink.
struct IpvsSync {
  std::string interface;  ///< The node's interface the sync messages go out and come in on.
  uint32_t id = 0;        ///< Sync id, 0..255: a backup of id N drops other ids' messages (0: none).
  /// "master", "backup" or "both"; "" (not written): follow the VRRP state of the node's
  /// keepalived agent.
  std::string role;
  Pos pos;
  KeyPositions keys;
};

/// Which of a node's addresses make it the owner of an address: lo, tunl0 and ip6tnl0 never
/// do (a DR or TUN real server holds its service's VIP there, shared with the director).
enum class Held {
  OnInterfaces,           ///< Its veth interfaces.
  OnInterfacesOrTunnels,  ///< Those and its explicit IPIP tunnels.
};

struct Node {
  std::string name;
  std::vector<Interface> interfaces;
  std::vector<IpPrefix> lo_addresses;  ///< Extra addresses on lo (the DR real server's VIP).
  /// Those of lo_addresses added with scope host (`{ address = ..., scope = "host" }`):
  /// arp_ignore = 3 never answers ARP for them.
  std::vector<IpAddr> lo_scope_host;
  std::vector<Route> routes;
  std::vector<Sysctl> sysctls;         ///< Applied in the order written.
  std::vector<Tunnel> tunnels;
  bool accept_ipip = false;            ///< Load ipip and bring tunl0 up (LVS-TUN real server).
  std::vector<IpPrefix> tunl0_addresses;  ///< Addresses on tunl0 (the TUN real server's VIP).
  /// Load ip6_tunnel and bring ip6tnl0 up: IPVS's tun method for an IPv6 service sends
  /// IPv6-in-IPv6, which only ip6tnl0 decapsulates (tunl0 takes IPv4 in IPv4).
  bool accept_ip6ip6 = false;
  std::vector<IpPrefix> ip6tnl0_addresses;  ///< Addresses on ip6tnl0 (an IPv6 TUN VIP).
  std::vector<VirtualService> services;
  std::vector<Agent> agents;
  std::vector<MarkRule> marks;  ///< In the order written (a later rule's mark wins).
  std::vector<NatRule> nat;     ///< In the order written (the first match of its chain wins).
  std::optional<IpvsSync> ipvs_sync;  ///< Unset: no connection synchronisation.
  std::string host;  ///< `host`: the [hosts] entry it runs on; "": the local host (model/hosts.h).
  Pos pos;
  KeyPositions keys;

  /// Whether `a` is on lo with scope host.
  [[nodiscard]] bool scope_host(const IpAddr& a) const;
  /// Whether the node holds `a` as Held says (Topology::owner_of asks every node this).
  [[nodiscard]] bool holds(const IpAddr& a, Held on = Held::OnInterfaces) const;
  /// The interface holding `a`, or nullptr.
  [[nodiscard]] const Interface* interface_with(const IpAddr& a) const;
};

/// A Linux bridge living in a namespace of its own ("<lab>-<switch>").
struct Switch {
  std::string name;
  int mtu = 0;
  /// `host`: a host it exists on besides its members' hosts (model/hosts.h); "" for none.
  std::string host{};
  /// `vni`: the VXLAN network identifier when it spans hosts; 0: derived from the lab's
  /// and the switch's names (model/hosts.h: segment_vni).
  uint32_t vni = 0;
  Pos pos{};
  KeyPositions keys{};
};

/// One machine of a lab spread over several (`[hosts.NAME]`, docs/multihost.md).
struct Host {
  std::string name;
  /// `ssh`: the destination as ssh takes it ("root@10.0.0.2", an ssh_config Host); "" for
  /// the machine labctl runs on.
  std::string ssh;
  /// `underlay`: its address the VXLAN of stretched segments is sent from and to.
  std::optional<IpAddr> underlay;
  int mtu = 1500;                 ///< `mtu`: the underlay's MTU.
  std::string labctl = "labctl";  ///< `labctl`: the program there (an absolute path, or looked up in PATH).
  Pos pos;
  KeyPositions keys;
};

/// The value of one of a check kind's own keys, of the type its spec gives it.
using CheckValue = std::variant<int64_t, double, std::string, std::vector<IpAddr>>;

/// A check's own keys (those of its kind beyond from, to, service, port and expect), read
/// and range-checked by the parser as the kind's spec says (model/check_spec.h), with the
/// kind's defaults for what the file leaves out: the run half reads typed values and
/// parses nothing.
class CheckParams {
 public:
  void set(std::string key, CheckValue value);
  [[nodiscard]] bool has(std::string_view key) const;
  /// The value of `key` as its kind declares it; a key the check does not have (given
  /// neither in the file nor by a default) reads as 0, "" or an empty list.
  [[nodiscard]] int64_t integer(std::string_view key) const;
  [[nodiscard]] double number(std::string_view key) const;  ///< An integer reads as a number too.
  [[nodiscard]] const std::string& text(std::string_view key) const;
  [[nodiscard]] const std::vector<IpAddr>& addresses(std::string_view key) const;
  /// The check speaks UDP: it says proto = "udp", or its service is UDP (validate).
  [[nodiscard]] bool udp() const { return text("proto") == "udp"; }

 private:
  std::map<std::string, CheckValue, std::less<>> values_;
};

/// An assertion run after bring-up. `kind` is one of the kinds the checks code knows
/// (reach, no-reach, http, balance, bypass, arp-owner ...); the remaining fields are its
/// arguments, validated per kind by the parser.
struct Check {
  std::string name;
  std::string kind;
  std::string from;     ///< Node the check runs in.
  /// The target as written ("to": an address or a node name); after resolve, as shown: the
  /// address as written, or the node's or the service's address.
  std::string to_text;
  IpAddr to;  ///< The target, resolved once (validate); unset (family 0) when there is none.
  uint16_t port = 0;
  std::string service;  ///< Director-side virtual service the check is about, if any.
  std::vector<std::string> expect;  ///< http: the body must contain one of these.
  /// The kind's own keys, typed, with the kind's defaults for what the file leaves out.
  CheckParams params;
  Pos pos;
  KeyPositions keys;  ///< Of the check's table: a message about `service` points at it.
};

/// A lab broken on purpose for students to repair (topologies/exercises/, docs/exercises.md).
struct Exercise {
  std::string task;                  ///< What the student sees going wrong and is asked to do.
  std::vector<std::string> look_at;  ///< Where to look, without giving the answer away.
  /// LVS rules this lab breaks on purpose (exercise_rules()): their errors become warnings,
  /// so the broken lab can still be built.
  std::vector<std::string> breaks;
  /// `hints = false`: a failed check shows what it observed, never the cause labctl found
  /// nor its fix (for grading: docs/exercises.md).
  bool hints = true;
  Pos pos;
};

/// A service of the lab with the director it runs on.
struct ServiceRef {
  const Node* director = nullptr;
  const VirtualService* service = nullptr;
  explicit operator bool() const { return service != nullptr; }
};

/// The LVS rules an exercise may break on purpose: "nat-route" (a NAT real server's route
/// back to the client not via the director), "tun-ipip" (a TUN real server without IPIP).
[[nodiscard]] const std::vector<std::string>& exercise_rules();

struct Topology {
  int version = 1;
  std::string name;
  std::string description;
  std::string source;  ///< The file it came from, or "builtin:<name>".
  std::vector<Node> nodes;
  std::vector<Switch> switches;
  std::vector<Check> checks;
  std::optional<Exercise> exercise;  ///< Set for a lab broken on purpose.
  std::vector<Host> hosts;           ///< `[hosts]`: empty for a lab on one machine.
  /// `place = "auto"` (or `up --place auto`): nodes without `host` are spread over the hosts
  /// (model/hosts.h: place_auto) instead of running on the local host.
  bool place_auto = false;
  Pos place_pos;

  [[nodiscard]] const Node* node(const std::string& n) const;
  [[nodiscard]] const Host* find_host(const std::string& n) const;
  [[nodiscard]] const Switch* find_switch(const std::string& n) const;
  /// The first node (in the order written) holding `a`, or nullptr.
  [[nodiscard]] const Node* owner_of(const IpAddr& a, Held on = Held::OnInterfaces) const;
  /// Every node holding `a`: more than one when separate segments reuse a subnet.
  [[nodiscard]] std::vector<const Node*> owners_of(const IpAddr& a,
                                                   Held on = Held::OnInterfaces) const;
  /// The service named `name` (service names are unique in a lab), or an empty ref.
  [[nodiscard]] ServiceRef service(const std::string& name) const;
};

/// The namespace of a node or switch: "<lab>-<name>".
[[nodiscard]] std::string netns_name(const std::string& lab, const std::string& name);

[[nodiscard]] const char* to_string(FwdMethod m);
[[nodiscard]] const char* to_string(Proto p);
/// IPPROTO_TCP, IPPROTO_UDP or IPPROTO_SCTP.
[[nodiscard]] int ip_protocol(Proto p);
[[nodiscard]] const char* to_string(NatType t);

}  // namespace labctl
