// rtnetlink operations on one network namespace: links (bridge, veth, ipip), addresses and
// routes. Messages are built by libnl-route and turned into Request values (netlink.h);
// the free functions in namespace rtnl are those pure factories and decoders, the Rtnl
// class sends them over a socket opened in the namespace it acts on.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "labctl/base/error.h"
#include "labctl/model/ip.h"
#include "labctl/kernel/netlink.h"
#include "labctl/model/topology.h"

namespace labctl {

/// What a VXLAN device was made with (IFLA_INFO_DATA of kind "vxlan").
struct VxlanInfo {
  uint32_t vni = 0;
  std::optional<IpAddr> local;  ///< IFLA_VXLAN_LOCAL or LOCAL6, nullopt when unset.
  uint16_t port = 0;            ///< Host order.
};

struct LinkInfo {
  std::string name;
  int index = 0;
  std::string kind;    ///< IFLA_INFO_KIND: "veth", "bridge", "ipip"; "" for lo and the like.
  unsigned flags = 0;  ///< IFF_* from ifinfomsg.
  bool up = false;     ///< IFF_UP (administratively up).
  int mtu = 0;
  std::string mac;        ///< "aa:bb:cc:dd:ee:ff", "" when the link has no Ethernet address.
  int master = 0;         ///< IFLA_MASTER ifindex, 0 when not enslaved.
  std::string alias;      ///< IFLA_IFALIAS.
  int link = 0;           ///< IFLA_LINK: a veth's peer ifindex (in link_netnsid's namespace).
  int link_netnsid = -1;  ///< IFLA_LINK_NETNSID: -1 when the peer is in this namespace.
  uint64_t rx_packets = 0;  ///< IFLA_STATS64 (dumps only): a tunnel's decapsulated packets.
  uint64_t tx_packets = 0;
  std::optional<VxlanInfo> vxlan{};  ///< For kind "vxlan".
};

struct AddrInfo {
  std::string dev;
  int index = 0;
  IpPrefix prefix;  ///< The interface address with its prefix length.
};

/// A neighbour (ARP / NDP) entry: who the kernel thinks owns an address on a link.
struct NeighInfo {
  std::string dev;
  int index = 0;
  IpAddr dst;
  std::string lladdr;  ///< "aa:bb:cc:dd:ee:ff", "" while unresolved.
  uint16_t state = 0;  ///< NUD_* (REACHABLE, STALE, FAILED ...).
};

struct RouteInfo {
  int family = 0;
  std::optional<IpPrefix> dst;  ///< nullopt: the default route.
  std::optional<IpAddr> via;
  std::string dev;
  int oif = 0;
  int protocol = 0;  ///< RTPROT_*: kernel (2) for prefix routes, boot (3) for ours.
  int scope = 0;     ///< RT_SCOPE_*.
};

/// What the kernel's own route lookup answered for one destination (`ip route get ADDR`):
/// the next hop (none: the destination is on the link), the device and the source address
/// it would send from.
struct RouteLookup {
  IpAddr dst;
  int type = 0;                ///< RTN_UNICAST, RTN_LOCAL (an address of this node) ...
  std::optional<IpAddr> via;   ///< RTA_GATEWAY; nullopt: on-link (route -n's gateway 0.0.0.0).
  std::string dev;
  int oif = 0;
  std::optional<IpAddr> src;   ///< RTA_PREFSRC.
  uint32_t table = 0;          ///< RTA_TABLE: the table that matched (main 254, local 255).
  /// As `ip route get` prints it: "192.168.88.88 via 192.168.1.120 dev eth0 src 192.168.1.30".
  [[nodiscard]] std::string str() const;
};

/// One entry of a bridge's forwarding database (`bridge fdb show`): which MAC the switch
/// has seen behind which of its ports.
struct FdbEntry {
  std::string dev;     ///< The bridge port's name (filled by Rtnl::fdb).
  int index = 0;       ///< ndm_ifindex: the port.
  int master = 0;      ///< NDA_MASTER: the bridge; 0 for a port's own address list.
  std::string mac;
  uint16_t state = 0;  ///< NUD_PERMANENT (the bridge's own), NUD_NOARP (static), REACHABLE/STALE (learned).
  uint16_t vlan = 0;   ///< NDA_VLAN, 0 when none.
  std::optional<IpAddr> dst{};  ///< NDA_DST: where a VXLAN device sends frames for `mac`.
  /// Learned from traffic: on a bridge, neither local nor static.
  [[nodiscard]] bool learned() const;
};

/// A VXLAN device to create (`ip link add NAME type vxlan id VNI local LOCAL dstport PORT`),
/// without group or remote: where frames go is its FDB's (rtnl::fdb_append).
struct VxlanLink {
  std::string name;
  uint32_t vni = 0;  ///< 1..kVxlanVniMax.
  IpAddr local;      ///< The underlay address of the host it runs on.
  uint16_t port = 4789;
  int mtu = 0;       ///< 0: kernel default.
  std::string mac;   ///< "": the kernel's.
};
inline constexpr uint32_t kVxlanVniMax = (1u << 24) - 1;

namespace rtnl {

/// The name of the fallback IPIP device the ipip module creates in every namespace.
inline constexpr const char* kIpipFallback = "tunl0";
/// The fallback IPv6-in-IPv6 device the ip6_tunnel module creates in every namespace.
inline constexpr const char* kIp6tnlFallback = "ip6tnl0";

// Factories: one Request each, built with libnl-route, no kernel involved.
[[nodiscard]] Result<Request> bridge_add(const std::string& name, int mtu);
/// A veth pair created here, its peer placed straight into `peer_netns_fd` (-1: here too).
[[nodiscard]] Result<Request> veth_add(const std::string& name, const std::string& peer_name,
                                       int peer_netns_fd, int mtu, const std::string& mac,
                                       const std::string& peer_mac);
/// A VXLAN device placed straight into `netns_fd` (-1: here). Its UDP socket lives in the
/// namespace of the socket the request is sent on, not in `netns_fd`'s.
[[nodiscard]] Result<Request> vxlan_add(const VxlanLink& v, int netns_fd);
/// `bridge fdb append 00:00:00:00:00:00 dev DEV dst REMOTE` (NTF_SELF, permanent): one more
/// host that a VXLAN device's broadcast, multicast and unknown unicast go to.
[[nodiscard]] Result<Request> fdb_append(int ifindex, const std::string& dev, const IpAddr& remote);
[[nodiscard]] Result<Request> link_set_master(const std::string& dev, int master_index,
                                              const std::string& master_name);
[[nodiscard]] Result<Request> link_set_up(const std::string& dev);
/// Sets `dev` administratively down (a veth end set down takes its peer's carrier too).
[[nodiscard]] Result<Request> link_set_down(const std::string& dev);
[[nodiscard]] Result<Request> link_set_alias(const std::string& dev, const std::string& alias);
/// Deletes a link by name (a veth takes its peer with it, wherever the peer lives).
[[nodiscard]] Result<Request> link_del(const std::string& dev);
/// IPv6 addresses are added with IFA_F_NODAD: a lab's addresses are unique by construction
/// and DAD would keep them unusable for a second or more after bring-up.
/// `scope`: RT_SCOPE_* (RT_SCOPE_HOST for an address only this node may use; 0: universe).
/// `deprecated`: preferred lifetime 0, so it is never chosen as a source address (IPv6).
[[nodiscard]] Result<Request> addr_add(int ifindex, const std::string& dev, const IpPrefix& addr,
                                       int scope = 0, bool deprecated = false);
/// A route in the main table; `oif` is the ifindex of r.dev (0 when r.dev is "").
[[nodiscard]] Result<Request> route_add(const Route& r, int oif);
/// An explicit point-to-point ipip device; `link_index` is t.dev's ifindex (0: unbound).
[[nodiscard]] Result<Request> ipip_add(const Tunnel& t, int link_index);
/// The request that makes the kernel load ipip here; see ensure_ipip in rtnl.cc for why
/// EEXIST means success (the request's ok_errno).
[[nodiscard]] Result<Request> ipip_ensure();
/// The same for ip6_tunnel and ip6tnl0 (IPv6 LVS-TUN real servers).
[[nodiscard]] Result<Request> ip6tnl_ensure();

[[nodiscard]] Request link_dump();
/// RTM_GETLINK for one link by name, without statistics.
[[nodiscard]] Request link_get(const std::string& dev);
[[nodiscard]] Request addr_dump(int family);  ///< AF_UNSPEC for both families.
[[nodiscard]] Request route_dump(int family);
[[nodiscard]] Request neigh_dump(int family);
/// RTM_GETROUTE for one destination, as `ip route get ADDR` sends it (RTM_F_LOOKUP_TABLE for
/// IPv4, so the reply names the table that matched).
[[nodiscard]] Request route_get(const IpAddr& dst);
/// RTM_DELNEIGH: forgets one neighbour entry (`ip neigh del ADDR dev DEV`).
[[nodiscard]] Request neigh_del(int ifindex, const IpAddr& dst);
/// RTM_GETNEIGH dump of family AF_BRIDGE: every bridge's forwarding database.
[[nodiscard]] Request fdb_dump();
/// RTM_DELNEIGH, AF_BRIDGE, NTF_MASTER: makes the bridge forget the MAC `mac` it learned on
/// port `port_index` (`bridge fdb del MAC dev PORT master`).
[[nodiscard]] Result<Request> fdb_del(int port_index, const std::string& mac);

// Decoders for the dumps' reply messages.
[[nodiscard]] Result<LinkInfo> parse_link(const nlmsghdr& nlh);
/// Returns nullopt for address families other than IPv4/IPv6.
[[nodiscard]] Result<std::optional<AddrInfo>> parse_addr(const nlmsghdr& nlh);
/// Returns nullopt for routes outside the main table or that are not unicast.
[[nodiscard]] Result<std::optional<RouteInfo>> parse_route(const nlmsghdr& nlh);
/// nullopt for families other than IPv4/IPv6.
[[nodiscard]] Result<std::optional<NeighInfo>> parse_neigh(const nlmsghdr& nlh);
/// The RTM_NEWROUTE answer to route_get.
[[nodiscard]] Result<RouteLookup> parse_route_get(const nlmsghdr& nlh);
/// nullopt for entries of other families and for those without a MAC.
[[nodiscard]] Result<std::optional<FdbEntry>> parse_fdb(const nlmsghdr& nlh);
/// "reachable", "stale", "failed", "permanent" ... for NUD_* states (several joined by ',').
[[nodiscard]] std::string nud_state_name(uint16_t state);

// Hints per errno, chosen by the factories above (exposed for tests).
[[nodiscard]] std::string link_hint(int errnum, const std::string& where);
[[nodiscard]] std::string addr_hint(int errnum, const std::string& where);
[[nodiscard]] std::string route_hint(int errnum, const std::string& where);
[[nodiscard]] std::string ipip_hint(int errnum, const std::string& where);
[[nodiscard]] std::string ip6tnl_hint(int errnum, const std::string& where);
[[nodiscard]] std::string vxlan_hint(int errnum, const std::string& where, uint32_t vni, uint16_t port);

}  // namespace rtnl

class RtnlBatch;

/// rtnetlink requests against the namespace its socket was opened in: the queries, and
/// RtnlBatch for every change (batch() for many in one go, apply() for one).
class Rtnl {
 public:
  /// Opens in the calling thread's current namespace; `where` (e.g. its name) labels errors.
  static Result<Rtnl> open(std::string where = {});

  /// Sends what `add` puts into a batch (one round trip for one change):
  /// `rtnl.apply([&](RtnlBatch& b) { return b.link_up("lo"); })`. The batch's first failure.
  [[nodiscard]] Status apply(const std::function<Status(RtnlBatch&)>& add);
  /// For rolling back a link this lab created; deleting the namespace does it all at once.
  [[nodiscard]] Status delete_link(const std::string& dev);

  [[nodiscard]] Result<std::vector<LinkInfo>> links();
  [[nodiscard]] Result<std::vector<AddrInfo>> addresses();
  /// Unicast routes of the main table for AF_INET or AF_INET6.
  [[nodiscard]] Result<std::vector<RouteInfo>> routes(int family);
  /// The neighbour table (ARP for AF_INET, NDP for AF_INET6).
  [[nodiscard]] Result<std::vector<NeighInfo>> neighbours(int family);
  /// Deletes the neighbour entry `n` (gone already counts as done).
  [[nodiscard]] Status forget_neighbour(const NeighInfo& n);
  /// Makes the bridge forget one learned entry of its forwarding database.
  [[nodiscard]] Status forget_fdb(const FdbEntry& e);
  /// The kernel's own route lookup for `dst` (ENETUNREACH and the like when it has none).
  [[nodiscard]] Result<RouteLookup> route_get(const IpAddr& dst);
  /// Every bridge forwarding database entry in this namespace, ports named.
  [[nodiscard]] Result<std::vector<FdbEntry>> fdb();

  /// One link by name (ENODEV when there is none).
  [[nodiscard]] Result<LinkInfo> link(const std::string& dev);
  /// The ifindex of `dev`, from a cache filled by link dumps and lookups (looked up on a miss).
  [[nodiscard]] Result<int> ifindex(const std::string& dev);
  /// A builder that sends its requests in as few round trips as possible.
  [[nodiscard]] RtnlBatch batch();

  [[nodiscard]] NetlinkSocket& socket() { return sock_; }
  [[nodiscard]] const std::string& where() const { return sock_.where(); }

 private:
  friend class RtnlBatch;
  explicit Rtnl(NetlinkSocket s) : sock_(std::move(s)) {}
  std::optional<int> cached_index(const std::string& dev) const;

  NetlinkSocket sock_;
  std::map<std::string, int> index_;
};

/// Collects requests for one namespace and sends them together, keeping one status per
/// call. Calls that need the ifindex of a link not yet known (set_master's master,
/// add_address, add_route's dev) first send what is pending, since the batch may be creating
/// that link, and then look it up. Each call returns its own build or lookup error at once;
/// what the kernel says comes from commit() or commit_each(). After a request fails nothing
/// more is sent.
class RtnlBatch {
 public:
  explicit RtnlBatch(Rtnl& rtnl) : rtnl_(&rtnl) {}

  Status create_bridge(const std::string& name, int mtu);
  Status create_veth(const std::string& name, const std::string& peer_name, int peer_netns_fd,
                     int mtu, const std::string& mac, const std::string& peer_mac);
  Status set_master(const std::string& dev, const std::string& master);
  /// Sent on this batch's socket, whose namespace keeps the device's UDP socket.
  Status create_vxlan(const VxlanLink& v, int netns_fd);
  Status fdb_append(const std::string& dev, const IpAddr& remote);
  Status link_up(const std::string& dev);
  Status link_down(const std::string& dev);
  Status add_address(const std::string& dev, const IpPrefix& addr, int scope = 0,
                     bool deprecated = false);
  /// labctl::Route: the default route when !r.to.
  Status add_route(const Route& r);
  Status create_ipip(const Tunnel& t);
  /// Makes the ipip module load so tunl0 exists here (LVS-TUN real servers).
  Status ensure_ipip();
  Status ensure_ip6tnl();
  Status set_alias(const std::string& dev, const std::string& alias);
  /// Adds an already-built request, or the error of one that could not be built.
  Status add(Result<Request> r);
  /// Adds the request `build` makes for `dev`'s ifindex (resolved as add_address does):
  /// requests of other files' factories, such as kernel/qdisc.h's.
  Status add_for(const std::string& dev, const std::function<Result<Request>(int ifindex)>& build);

  /// Sends everything pending; the first failure of every call since the last commit, as
  /// NetlinkSocket::batch names it ("request 2 of 3: ...").
  [[nodiscard]] Status commit();
  /// Sends everything pending; one status per call since the last commit, in call order.
  [[nodiscard]] std::vector<Status> commit_each();
  /// Requests built but not sent yet.
  [[nodiscard]] size_t pending() const { return pending_.size(); }

 private:
  Result<int> resolve(const std::string& dev);
  Status fail_slot(const Error& e);  ///< A call whose request could not be built.
  void flush();
  bool failed() const;

  Rtnl* rtnl_;
  std::vector<Request> pending_;
  std::vector<size_t> pending_slot_;  ///< Index into slots_ of each pending request.
  std::vector<Status> slots_;         ///< One per call since the last commit.
};

}  // namespace labctl
