#include "labctl/kernel/rtnl.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <netlink/addr.h>
#include <netlink/errno.h>
#include <netlink/msg.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/link/ip6tnl.h>
#include <netlink/route/link/ipip.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/link/vxlan.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/route.h>

#include "labctl/base/display.h"

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>

namespace labctl {
namespace rtnl {
namespace {

struct LinkPut {
  void operator()(rtnl_link* l) const { rtnl_link_put(l); }
};
struct AddrPut {
  void operator()(rtnl_addr* a) const { rtnl_addr_put(a); }
};
struct RoutePut {
  void operator()(rtnl_route* r) const { rtnl_route_put(r); }
};
struct NlAddrPut {
  void operator()(nl_addr* a) const { nl_addr_put(a); }
};
struct NeighPut {
  void operator()(rtnl_neigh* n) const { rtnl_neigh_put(n); }
};
struct MsgFree {
  void operator()(nl_msg* m) const { nlmsg_free(m); }
};
using LinkPtr = std::unique_ptr<rtnl_link, LinkPut>;
using AddrPtr = std::unique_ptr<rtnl_addr, AddrPut>;
using RoutePtr = std::unique_ptr<rtnl_route, RoutePut>;
using NlAddrPtr = std::unique_ptr<nl_addr, NlAddrPut>;
using NeighPtr = std::unique_ptr<rtnl_neigh, NeighPut>;
using MsgPtr = std::unique_ptr<nl_msg, MsgFree>;

std::string in_where(const std::string& where) { return where.empty() ? "" : " in " + where; }

Error libnl_error(const std::string& what, int nlerr) {
  return Error{what + ": libnl could not build the request: " + nl_geterror(nlerr), 0, {}, {}};
}

// Copies a message libnl built into a Request value.
Request to_request(nl_msg* raw, std::string what, HintFn hint) {
  MsgPtr msg(raw);
  const nlmsghdr* nlh = nlmsg_hdr(msg.get());
  const auto* p = reinterpret_cast<const uint8_t*>(nlh);
  return Request{std::vector<uint8_t>(p, p + nlh->nlmsg_len), std::move(what), hint, 0};
}

// NLM_F_ECHO on a link creation: the kernel (6.1 on) sends the new link back to us, so its
// ifindex is known without asking (see RtnlBatch::flush). Older kernels ignore the flag.
Result<Request> build_link_add(rtnl_link* link, std::string what, HintFn hint) {
  nl_msg* msg = nullptr;
  int err = rtnl_link_build_add_request(link, NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO, &msg);
  if (err < 0) return tl::unexpected(libnl_error(what, err));
  return to_request(msg, std::move(what), hint);
}

// A change of an existing link found by name: ifi_index 0 plus IFLA_IFNAME makes the
// kernel look the link up by name (rtnl_newlink), so no ifindex is needed.
Result<Request> build_link_change(const std::string& dev, rtnl_link* changes, std::string what) {
  LinkPtr orig(rtnl_link_alloc());
  if (!orig) return tl::unexpected(libnl_error(what, -NLE_NOMEM));
  rtnl_link_set_name(orig.get(), dev.c_str());
  rtnl_link_set_name(changes, dev.c_str());
  nl_msg* msg = nullptr;
  int err = rtnl_link_build_change_request(orig.get(), changes, 0, &msg);
  if (err < 0) return tl::unexpected(libnl_error(what, err));
  return to_request(msg, std::move(what), link_hint);
}

Status set_mac(rtnl_link* link, const std::string& mac, const std::string& what) {
  if (mac.empty()) return {};
  nl_addr* a = nullptr;
  if (nl_addr_parse(mac.c_str(), AF_LLC, &a) < 0 || nl_addr_get_len(a) != 6) {
    if (a) nl_addr_put(a);
    return fail(what + ": '" + mac + "' is not a MAC address (aa:bb:cc:dd:ee:ff)");
  }
  NlAddrPtr addr(a);
  rtnl_link_set_addr(link, addr.get());
  return {};
}

NlAddrPtr to_nl_addr(const IpAddr& a, int prefix_len) {
  NlAddrPtr p(nl_addr_build(a.family, a.bytes.data(), a.size()));
  if (p) nl_addr_set_prefixlen(p.get(), prefix_len);
  return p;
}

Request dump_request(uint16_t type, int family, size_t header_size) {
  std::vector<uint8_t> buf(MNL_ALIGN(sizeof(nlmsghdr)) + MNL_ALIGN(header_size), 0);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  // ifinfomsg, ifaddrmsg and rtmsg all start with the family byte.
  auto* family_byte = static_cast<uint8_t*>(mnl_nlmsg_put_extra_header(nlh, header_size));
  *family_byte = static_cast<uint8_t>(family);
  buf.resize(nlh->nlmsg_len);
  const char* what = type == RTM_GETLINK   ? "list links"
                     : type == RTM_GETADDR ? "list addresses"
                                           : "list routes";
  return Request{std::move(buf), what, nullptr, 0};
}

std::string format_mac(const nlattr* a) {
  const auto* b = static_cast<const uint8_t*>(mnl_attr_get_payload(a));
  const size_t n = mnl_attr_get_payload_len(a);
  if (n != 6) return "";
  char out[18];
  std::snprintf(out, sizeof out, "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4],
                b[5]);
  return out;
}

std::optional<IpAddr> to_ip(int family, const nlattr* a) {
  IpAddr ip;
  const size_t want = family == AF_INET ? 4 : 16;
  if (mnl_attr_get_payload_len(a) != want) return std::nullopt;
  ip.family = family;
  std::memcpy(ip.bytes.data(), mnl_attr_get_payload(a), want);
  return ip;
}


}  // namespace

// ---- hints -------------------------------------------------------------------------------

std::string link_hint(int errnum, const std::string& where) {
  switch (errnum) {
    case EEXIST:
      return "an interface of that name exists already" + in_where(where) +
             ": pick another name, or remove the old lab first (labctl down)";
    case ENODEV:
      return "no interface of that name" + in_where(where) + " (names are per namespace)";
    case EPERM:
    case EACCES:
      return "needs root (CAP_NET_ADMIN over the namespace)";
    case EOPNOTSUPP:
      return "this kernel does not support that kind of link";
    case ERANGE:
      return "a value is out of range: an interface name has at most 15 bytes (IFNAMSIZ - 1)";
    case EINVAL:
      return "check the MTU (68..65535; at least 1280 where the interface carries IPv6) and "
             "the MAC address";
    case EBADF:
      return "the peer's namespace file descriptor is not valid (was the namespace deleted?)";
    case EADDRINUSE:
      // Only a link with a socket of its own answers this, when it is brought up: a VXLAN
      // device binds its UDP port then, in the namespace it was created from.
      return "the link's UDP port is taken in the namespace that holds its socket (for a VXLAN "
             "device, the host's): another program or tunnel uses it; free it, or pick another "
             "port";
    default:
      return "";
  }
}

namespace {

// RTM_NEWLINK answers ERANGE when IFLA_IFNAME is longer than its policy's IFNAMSIZ - 1:
// the hint names the name, the rest is link_hint's (or ipip_hint's).
HintFn names_hint(std::vector<std::string> names, HintFn base) {
  return [names = std::move(names), base = std::move(base)](int errnum, const std::string& where) {
    if (errnum == ERANGE)
      for (const auto& n : names)
        if (n.size() > 15)
          return "the interface name " + shown(n) + " is " + std::to_string(n.size()) +
                 " bytes; Linux allows at most 15 (IFNAMSIZ - 1)";
    return base(errnum, where);
  };
}

// The kernel refuses an IPv6 address on a device whose MTU is below IPv6's minimum
// (addrconf: IPV6_MIN_MTU) with a bare EINVAL.
HintFn addr_hint_for(const IpPrefix& p) {
  return [v6 = p.addr.v6()](int errnum, const std::string& where) {
    if (errnum == EINVAL && v6)
      return std::string("IPv6 needs an MTU of at least 1280 (IPV6_MIN_MTU) on the interface: "
                         "raise its mtu, or give it no IPv6 address");
    return addr_hint(errnum, where);
  };
}

}  // namespace

std::string addr_hint(int errnum, const std::string& where) {
  switch (errnum) {
    case EEXIST:
      return "that address is on the interface already";
    case ENODEV:
      return "no interface of that name" + in_where(where);
    case EPERM:
    case EACCES:
      return "needs root (CAP_NET_ADMIN over the namespace)";
    case EADDRNOTAVAIL:
      return "IPv6 is disabled on this interface (net.ipv6.conf.*.disable_ipv6)";
    default:
      return "";
  }
}

std::string route_hint(int errnum, const std::string& where) {
  switch (errnum) {
    case EEXIST:
      return "a route to that destination exists already" + in_where(where) +
             " (every interface address adds a route to its own subnet)";
    case ENETUNREACH:
      return "the gateway is not in a directly connected subnet" + in_where(where) +
             ": give an interface an address in the gateway's subnet (and bring it up) first";
    case ENODEV:
      return "no interface of that name" + in_where(where);
    case EPERM:
    case EACCES:
      return "needs root (CAP_NET_ADMIN over the namespace)";
    case EINVAL:
      return "the gateway must be of the route's address family and not a local address";
    default:
      return "";
  }
}

std::string ipip_hint(int errnum, const std::string& where) {
  // rtnl_newlink answers EOPNOTSUPP ("Unknown device type") when no "ipip" link kind is
  // registered and the module could not be loaded.
  if (errnum == EOPNOTSUPP)
    return "this kernel has no IPIP tunnels (CONFIG_NET_IPIP); run the lab in the micro-VM: "
           "labctl vm exec -- labctl up LAB";
  if (errnum == EEXIST)
    return "an ipip device with the same local/remote/link exists already" + in_where(where) +
           " (or a device of that name)";
  return link_hint(errnum, where);
}

std::string ip6tnl_hint(int errnum, const std::string& where) {
  if (errnum == EOPNOTSUPP)
    return "this kernel has no IPv6-in-IPv6 tunnels (CONFIG_IPV6_TUNNEL, module ip6_tunnel); run "
           "the lab in "
           "the micro-VM: labctl vm exec -- labctl up LAB";
  return link_hint(errnum, where);
}

std::string vxlan_hint(int errnum, const std::string& where, uint32_t vni, uint16_t port) {
  switch (errnum) {
    case EEXIST:
      // vxlan_vni_in_use looks through the devices made from the same namespace (this host's),
      // whichever namespace they live in; NLM_F_EXCL answers the same for a taken name.
      return "a VXLAN device with that VNI already exists on this host: another lab (or a lab "
             "of the same name left over) uses VNI " +
             std::to_string(vni) + " on UDP port " + std::to_string(port) +
             "; `labctl down` it, or set another vni on the switch (or an interface of that name "
             "exists already" +
             in_where(where) + ")";
    case EADDRINUSE:
      return "UDP port " + std::to_string(port) +
             " is taken on this host (another program, or a VXLAN device with other options): "
             "free it, or set another port";
    case EOPNOTSUPP:
    case EAFNOSUPPORT:
      return "this kernel lacks VXLAN (CONFIG_VXLAN" +
             std::string(errnum == EAFNOSUPPORT ? "; an IPv6 underlay also needs CONFIG_IPV6" : "") +
             "); run the lab in the micro-VM: labctl vm exec -- labctl up LAB";
    default:
      return link_hint(errnum, where);
  }
}

// ---- factories ---------------------------------------------------------------------------

// libnl 3.7 has no setters for bridge options (IFLA_INFO_DATA), so this one is built with
// libmnl. Multicast snooping is off: a lab switch floods multicast like a plain switch, and
// snooping arms timers on every port as it comes up.
Result<Request> bridge_add(const std::string& name, int mtu) {
  std::vector<uint8_t> buf(256 + name.size());
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = RTM_NEWLINK;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO;
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, name.c_str());
  if (mtu > 0) mnl_attr_put_u32(nlh, IFLA_MTU, static_cast<uint32_t>(mtu));
  nlattr* info = mnl_attr_nest_start(nlh, IFLA_LINKINFO);
  mnl_attr_put_strz(nlh, IFLA_INFO_KIND, "bridge");
  nlattr* data = mnl_attr_nest_start(nlh, IFLA_INFO_DATA);
  mnl_attr_put_u8(nlh, IFLA_BR_MCAST_SNOOPING, 0);
  mnl_attr_nest_end(nlh, data);
  mnl_attr_nest_end(nlh, info);
  buf.resize(nlh->nlmsg_len);
  return Request{std::move(buf), "create bridge " + name, names_hint({name}, link_hint), 0};
}

Result<Request> veth_add(const std::string& name, const std::string& peer_name, int peer_netns_fd,
                         int mtu, const std::string& mac, const std::string& peer_mac) {
  const std::string what = "create veth " + name + " (peer " + peer_name + ")";
  LinkPtr link(rtnl_link_veth_alloc());
  if (!link) return tl::unexpected(libnl_error(what, -NLE_NOMEM));
  LinkPtr peer(rtnl_link_veth_get_peer(link.get()));  // takes a reference
  rtnl_link_set_name(link.get(), name.c_str());
  rtnl_link_set_name(peer.get(), peer_name.c_str());
  if (mtu > 0) {
    rtnl_link_set_mtu(link.get(), static_cast<unsigned>(mtu));
    rtnl_link_set_mtu(peer.get(), static_cast<unsigned>(mtu));
  }
  // One queue each way on both ends. Unasked, a veth gets one per possible CPU and trims
  // them to one right after registering, which waits out an RCU grace period per trim
  // under the RTNL lock: a third of a veth pair's cost.
  for (rtnl_link* l : {link.get(), peer.get()}) {
    rtnl_link_set_num_tx_queues(l, 1);
    rtnl_link_set_num_rx_queues(l, 1);
  }
  TRY(set_mac(link.get(), mac, what));
  TRY(set_mac(peer.get(), peer_mac, what));
  if (peer_netns_fd >= 0) rtnl_link_set_ns_fd(peer.get(), peer_netns_fd);
  return build_link_add(link.get(), what, names_hint({name, peer_name}, link_hint));
}

// Built from the socket it is sent on, which decides where the device's UDP socket lives
// (vxlan_newlink takes the link's source namespace from the request's socket), and born in
// `netns_fd`: the device never exists in the sender's namespace, its socket never in the lab's.
Result<Request> vxlan_add(const VxlanLink& v, int netns_fd) {
  const std::string what = "create vxlan " + v.name + " (vni " + std::to_string(v.vni) +
                           ", local " + v.local.str() + ", dstport " + std::to_string(v.port) + ")";
  if (v.vni < 1 || v.vni > kVxlanVniMax) return fail(what + ": a VNI is 1..16777215");
  if (v.local.family != AF_INET && v.local.family != AF_INET6)
    return fail(what + ": the local underlay address is not set");
  if (v.port == 0) return fail(what + ": the UDP port is 0");
  LinkPtr link(rtnl_link_vxlan_alloc());
  if (!link) return tl::unexpected(libnl_error(what, -NLE_NOMEM));
  rtnl_link_set_name(link.get(), v.name.c_str());
  int err = rtnl_link_vxlan_set_id(link.get(), v.vni);
  NlAddrPtr local = to_nl_addr(v.local, v.local.max_prefix());
  if (!local) return tl::unexpected(libnl_error(what, -NLE_NOMEM));
  if (err >= 0) err = rtnl_link_vxlan_set_local(link.get(), local.get());
  if (err >= 0) err = rtnl_link_vxlan_set_port(link.get(), v.port);  // libnl turns it to network order
  if (err < 0) return tl::unexpected(libnl_error(what, err));
  if (v.mtu > 0) rtnl_link_set_mtu(link.get(), static_cast<unsigned>(v.mtu));
  TRY(set_mac(link.get(), v.mac, what));
  if (netns_fd >= 0) rtnl_link_set_ns_fd(link.get(), netns_fd);
  return build_link_add(link.get(), what,
                        names_hint({v.name}, [vni = v.vni, port = v.port](int e, const std::string& w) {
                          return vxlan_hint(e, w, vni, port);
                        }));
}

// `bridge fdb append 00:00:00:00:00:00 dev DEV dst REMOTE`: the all-zero entry is where a
// VXLAN device sends what it has no entry for (broadcast, multicast, unknown unicast), one
// copy per such entry; NTF_SELF puts it into the device's own table, not the bridge's.
Result<Request> fdb_append(int ifindex, const std::string& dev, const IpAddr& remote) {
  const std::string what = "add fdb entry 00:00:00:00:00:00 dst " + remote.str() + " to " + dev;
  if (remote.family != AF_INET && remote.family != AF_INET6)
    return fail(what + ": the remote address is not set");
  NeighPtr neigh(rtnl_neigh_alloc());
  static constexpr uint8_t kZero[6] = {};
  NlAddrPtr lladdr(nl_addr_build(AF_LLC, kZero, sizeof kZero));
  NlAddrPtr dst = to_nl_addr(remote, remote.max_prefix());
  if (!neigh || !lladdr || !dst) return tl::unexpected(libnl_error(what, -NLE_NOMEM));
  // The destination first: libnl takes the family from it (and refuses a mismatch once a
  // family is set), then AF_BRIDGE, which the FDB wants.
  int err = rtnl_neigh_set_dst(neigh.get(), dst.get());
  if (err < 0) return tl::unexpected(libnl_error(what, err));
  rtnl_neigh_set_family(neigh.get(), AF_BRIDGE);
  rtnl_neigh_set_ifindex(neigh.get(), ifindex);
  rtnl_neigh_set_lladdr(neigh.get(), lladdr.get());
  rtnl_neigh_set_state(neigh.get(), NUD_PERMANENT | NUD_NOARP);
  rtnl_neigh_set_flags(neigh.get(), NTF_SELF);
  nl_msg* msg = nullptr;
  err = rtnl_neigh_build_add_request(neigh.get(), NLM_F_CREATE | NLM_F_APPEND, &msg);
  if (err < 0) return tl::unexpected(libnl_error(what, err));
  return to_request(msg, what, [](int errnum, const std::string& where) -> std::string {
    if (errnum == EINVAL || errnum == EOPNOTSUPP)
      return "the device takes no remote entries: is it a VXLAN device?";
    if (errnum == EEXIST) return "that remote is in the device's table already";
    return link_hint(errnum, where);
  });
}

Result<Request> link_set_master(const std::string& dev, int master_index,
                                const std::string& master_name) {
  LinkPtr changes(rtnl_link_alloc());
  const std::string what = "attach " + dev + " to " + master_name;
  if (!changes) return tl::unexpected(libnl_error(what, -NLE_NOMEM));
  rtnl_link_set_master(changes.get(), master_index);
  return build_link_change(dev, changes.get(), what);
}

Result<Request> link_set_up(const std::string& dev) {
  LinkPtr changes(rtnl_link_alloc());
  const std::string what = "bring up " + dev;
  if (!changes) return tl::unexpected(libnl_error(what, -NLE_NOMEM));
  rtnl_link_set_flags(changes.get(), IFF_UP);
  return build_link_change(dev, changes.get(), what);
}

Result<Request> link_set_down(const std::string& dev) {
  LinkPtr changes(rtnl_link_alloc());
  const std::string what = "set down " + dev;
  if (!changes) return tl::unexpected(libnl_error(what, -NLE_NOMEM));
  rtnl_link_unset_flags(changes.get(), IFF_UP);
  return build_link_change(dev, changes.get(), what);
}

Result<Request> link_set_alias(const std::string& dev, const std::string& alias) {
  LinkPtr changes(rtnl_link_alloc());
  const std::string what = "set alias of " + dev;
  if (!changes) return tl::unexpected(libnl_error(what, -NLE_NOMEM));
  rtnl_link_set_ifalias(changes.get(), alias.c_str());
  return build_link_change(dev, changes.get(), what);
}

Result<Request> link_del(const std::string& dev) {
  const std::string what = "delete link " + dev;
  LinkPtr link(rtnl_link_alloc());
  if (!link) return tl::unexpected(libnl_error(what, -NLE_NOMEM));
  rtnl_link_set_name(link.get(), dev.c_str());
  nl_msg* msg = nullptr;
  int err = rtnl_link_build_delete_request(link.get(), &msg);
  if (err < 0) return tl::unexpected(libnl_error(what, err));
  return to_request(msg, what, link_hint);
}

Result<Request> addr_add(int ifindex, const std::string& dev, const IpPrefix& p, int scope,
                         bool deprecated) {
  const std::string what =
      "add address " + p.str() + " to " + dev + (scope == RT_SCOPE_HOST ? " with scope host" : "");
  AddrPtr addr(rtnl_addr_alloc());
  NlAddrPtr local = to_nl_addr(p.addr, p.len);
  if (!addr || !local) return tl::unexpected(libnl_error(what, -NLE_NOMEM));
  rtnl_addr_set_ifindex(addr.get(), ifindex);
  rtnl_addr_set_family(addr.get(), p.addr.family);
  int err = rtnl_addr_set_local(addr.get(), local.get());
  if (err < 0) return tl::unexpected(libnl_error(what, err));
  // set_local takes the prefix length from the nl_addr; set it again to be explicit.
  rtnl_addr_set_prefixlen(addr.get(), p.len);
  if (scope != RT_SCOPE_UNIVERSE) rtnl_addr_set_scope(addr.get(), scope);
  if (deprecated) {  // IFA_CACHEINFO: valid forever, preferred for no time
    rtnl_addr_set_valid_lifetime(addr.get(), 0xFFFFFFFFu);
    rtnl_addr_set_preferred_lifetime(addr.get(), 0);
  }
  if (p.addr.v6()) rtnl_addr_set_flags(addr.get(), IFA_F_NODAD);
  nl_msg* msg = nullptr;
  err = rtnl_addr_build_add_request(addr.get(), NLM_F_CREATE | NLM_F_EXCL, &msg);
  if (err < 0) return tl::unexpected(libnl_error(what, err));
  return to_request(msg, what, addr_hint_for(p));
}

Result<Request> route_add(const Route& r, int oif) {
  const int family = r.to ? r.to->addr.family : r.family;
  const std::string dst_text = r.to ? r.to->network().str() : "default";
  std::string what = "add route " + dst_text;
  if (r.via) what += " via " + r.via->str();
  if (!r.dev.empty()) what += " dev " + r.dev;
  if (family != AF_INET && family != AF_INET6)
    return fail(what + ": the route has no address family");
  if (r.via && r.via->family != family)
    return fail(what + ": the gateway's address family differs from the destination's");

  RoutePtr route(rtnl_route_alloc());
  if (!route) return tl::unexpected(libnl_error(what, -NLE_NOMEM));
  rtnl_route_set_family(route.get(), static_cast<uint8_t>(family));
  rtnl_route_set_table(route.get(), RT_TABLE_MAIN);
  rtnl_route_set_protocol(route.get(), RTPROT_BOOT);
  rtnl_route_set_type(route.get(), RTN_UNICAST);
  // Like `ip route add`: a route without a gateway reaches its destination on the link.
  rtnl_route_set_scope(route.get(),
                       static_cast<uint8_t>(r.via ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK));
  IpAddr any;
  any.family = family;
  NlAddrPtr dst = r.to ? to_nl_addr(r.to->network().addr, r.to->len) : to_nl_addr(any, 0);
  if (!dst) return tl::unexpected(libnl_error(what, -NLE_NOMEM));
  int err = rtnl_route_set_dst(route.get(), dst.get());
  if (err < 0) return tl::unexpected(libnl_error(what, err));

  rtnl_nexthop* nh = rtnl_route_nh_alloc();
  if (!nh) return tl::unexpected(libnl_error(what, -NLE_NOMEM));
  if (oif > 0) rtnl_route_nh_set_ifindex(nh, oif);
  if (r.via) {
    NlAddrPtr gw = to_nl_addr(*r.via, r.via->max_prefix());
    if (!gw) {
      rtnl_route_nh_free(nh);
      return tl::unexpected(libnl_error(what, -NLE_NOMEM));
    }
    rtnl_route_nh_set_gateway(nh, gw.get());
  }
  rtnl_route_add_nexthop(route.get(), nh);  // the route owns nh from here on

  nl_msg* msg = nullptr;
  err = rtnl_route_build_add_request(route.get(), NLM_F_CREATE | NLM_F_EXCL, &msg);
  if (err < 0) return tl::unexpected(libnl_error(what, err));
  return to_request(msg, what, route_hint);
}

Result<Request> ipip_add(const Tunnel& t, int link_index) {
  const std::string what =
      "create ipip tunnel " + t.name + " (" + t.local.str() + " -> " + t.remote.str() + ")";
  if (!t.local.v4() || !t.remote.v4())
    return fail(what + ": ipip carries IPv4 only; local and remote must be IPv4 addresses");
  if (t.ttl < 0 || t.ttl > 255) return fail(what + ": ttl must be 0..255");
  LinkPtr link(rtnl_link_ipip_alloc());
  if (!link) return tl::unexpected(libnl_error(what, -NLE_NOMEM));
  rtnl_link_set_name(link.get(), t.name.c_str());
  rtnl_link_ipip_set_local(link.get(), t.local.v4_be());
  rtnl_link_ipip_set_remote(link.get(), t.remote.v4_be());
  rtnl_link_ipip_set_ttl(link.get(), static_cast<uint8_t>(t.ttl));
  if (link_index > 0) rtnl_link_ipip_set_link(link.get(), static_cast<uint32_t>(link_index));
  return build_link_add(link.get(), what, names_hint({t.name}, ipip_hint));
}

// Why ensure_ipip is an RTM_NEWLINK for an ipip device named tunl0 with no parameters:
// - rtnl_newlink looks the name up first; if tunl0 exists (ipip already loaded), NLM_F_EXCL
//   makes it fail with EEXIST before anything else happens.
// - Otherwise it looks up the link kind "ipip"; when it is not registered it calls
//   request_module("rtnl-link-ipip") and replays. Loading ipip runs ipip_init_net for every
//   namespace, whose ip_tunnel_init_net creates the fallback device tunl0 (all-zero
//   parameters) and hashes it with ip_tunnel_add. The replay then finds tunl0 by name:
//   EEXIST again. (Without a name, ip_tunnel_newlink's ip_tunnel_find would match tunl0's
//   all-zero parameters and also answer EEXIST.)
// - Where net.core.fb_tunnels_only_for_init_net keeps tunl0 out of this namespace, the
//   request creates a device named tunl0 with all-zero parameters, which receives IPIP
//   packets from any peer just like the fallback device would.
// - A kernel without CONFIG_NET_IPIP answers EOPNOTSUPP ("Unknown device type").
// So EEXIST is success; tunl0 still has to be brought up for the fallback to receive.
// (A non-ipip device that someone named tunl0 would also answer EEXIST; labs never do.)
Result<Request> ipip_ensure() {
  const std::string what = "load the ipip module (create tunl0)";
  LinkPtr link(rtnl_link_ipip_alloc());
  if (!link) return tl::unexpected(libnl_error(what, -NLE_NOMEM));
  rtnl_link_set_name(link.get(), kIpipFallback);
  TRY_ASSIGN(Request r, build_link_add(link.get(), what, ipip_hint));
  r.ok_errno = EEXIST;
  return r;
}

// As ipip_ensure, for ip6_tunnel: its per-namespace init creates the fallback ip6tnl0
// (proto IPv6, any local and remote), which decapsulates IPv6-in-IPv6 from any sender
// once it is up; the kind "ip6tnl" is module ip6_tunnel's alias "rtnl-link-ip6tnl".
Result<Request> ip6tnl_ensure() {
  const std::string what = "load the ip6_tunnel module (create ip6tnl0)";
  LinkPtr link(rtnl_link_ip6_tnl_alloc());
  if (!link) return tl::unexpected(libnl_error(what, -NLE_NOMEM));
  rtnl_link_set_name(link.get(), kIp6tnlFallback);
  TRY_ASSIGN(Request r, build_link_add(link.get(), what, ip6tnl_hint));
  r.ok_errno = EEXIST;
  return r;
}

Request link_dump() { return dump_request(RTM_GETLINK, AF_UNSPEC, sizeof(ifinfomsg)); }

// One link by name, without statistics: much cheaper than a dump, which in a switch's
// namespace lists every port.
Request link_get(const std::string& dev) {
  std::vector<uint8_t> buf(64 + dev.size());
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = RTM_GETLINK;
  nlh->nlmsg_flags = NLM_F_REQUEST;
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_family = AF_UNSPEC;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, dev.c_str());
  mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  buf.resize(nlh->nlmsg_len);
  return Request{std::move(buf), "find interface " + dev, link_hint, 0};
}
Request addr_dump(int family) { return dump_request(RTM_GETADDR, family, sizeof(ifaddrmsg)); }
Request route_dump(int family) { return dump_request(RTM_GETROUTE, family, sizeof(rtmsg)); }
Request neigh_dump(int family) { return dump_request(RTM_GETNEIGH, family, sizeof(ndmsg)); }

Request neigh_del(int ifindex, const IpAddr& dst) {
  std::vector<uint8_t> buf(MNL_ALIGN(sizeof(nlmsghdr)) + MNL_ALIGN(sizeof(ndmsg)) + MNL_ATTR_HDRLEN + 16, 0);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = RTM_DELNEIGH;
  nlh->nlmsg_flags = NLM_F_REQUEST;
  auto* nd = static_cast<ndmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ndmsg)));
  nd->ndm_family = static_cast<uint8_t>(dst.family);
  nd->ndm_ifindex = ifindex;
  mnl_attr_put(nlh, NDA_DST, dst.size(), dst.bytes.data());
  buf.resize(nlh->nlmsg_len);
  return Request{std::move(buf), "ip neigh del " + dst.str(), nullptr, ENOENT};
}

Request fdb_dump() {
  Request r = dump_request(RTM_GETNEIGH, AF_BRIDGE, sizeof(ndmsg));
  r.what = "list the bridge forwarding database";
  return r;
}

Result<Request> fdb_del(int port_index, const std::string& mac) {
  unsigned x[6];
  char tail = 0;
  if (std::sscanf(mac.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &x[0], &x[1], &x[2], &x[3], &x[4], &x[5], &tail) != 6)
    return fail("'" + mac + "' is not a MAC address");
  uint8_t lladdr[6];
  for (int i = 0; i < 6; ++i) lladdr[i] = static_cast<uint8_t>(x[i]);
  std::vector<uint8_t> buf(MNL_ALIGN(sizeof(nlmsghdr)) + MNL_ALIGN(sizeof(ndmsg)) + MNL_ATTR_HDRLEN + 8, 0);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = RTM_DELNEIGH;
  nlh->nlmsg_flags = NLM_F_REQUEST;
  auto* nd = static_cast<ndmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ndmsg)));
  nd->ndm_family = AF_BRIDGE;
  nd->ndm_ifindex = port_index;
  nd->ndm_flags = NTF_MASTER;
  mnl_attr_put(nlh, NDA_LLADDR, sizeof lladdr, lladdr);
  buf.resize(nlh->nlmsg_len);
  return Request{std::move(buf), "bridge fdb del " + mac + " master", nullptr, ENOENT};
}

Request route_get(const IpAddr& dst) {
  std::vector<uint8_t> buf(MNL_ALIGN(sizeof(nlmsghdr)) + MNL_ALIGN(sizeof(rtmsg)) + MNL_ATTR_HDRLEN + 16, 0);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = RTM_GETROUTE;
  nlh->nlmsg_flags = NLM_F_REQUEST;
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(rtmsg)));
  rtm->rtm_family = static_cast<uint8_t>(dst.family);
  rtm->rtm_dst_len = static_cast<uint8_t>(dst.max_prefix());
  // As ip does for IPv4: the answer names the table that matched, not always main.
  if (dst.v4()) rtm->rtm_flags = RTM_F_LOOKUP_TABLE;
  mnl_attr_put(nlh, RTA_DST, dst.size(), dst.bytes.data());
  buf.resize(nlh->nlmsg_len);
  auto hint = [to = dst.str()](int errnum, const std::string& where) -> std::string {
    if (errnum == ENETUNREACH)
      return "no route" + in_where(where) + " matches " + to +
             ": no interface address has it in its subnet, and no route (nor a default route) covers it";
    if (errnum == EHOSTUNREACH) return "the route to " + to + in_where(where) + " is unreachable or prohibited";
    return "";
  };
  return Request{std::move(buf), "ip route get " + dst.str(), hint, 0};
}

// ---- decoders ----------------------------------------------------------------------------

Result<LinkInfo> parse_link(const nlmsghdr& nlh) {
  if (nlh.nlmsg_type != RTM_NEWLINK || nlh.nlmsg_len < NLMSG_LENGTH(sizeof(ifinfomsg)))
    return fail("malformed RTM_NEWLINK message");
  const auto* ifi = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(&nlh));
  LinkInfo l;
  l.index = ifi->ifi_index;
  l.flags = ifi->ifi_flags;
  l.up = (ifi->ifi_flags & IFF_UP) != 0;
  AttrTable<IFLA_MAX + 1> tb;
  if (mnl_attr_parse(&nlh, sizeof(ifinfomsg), AttrTable<IFLA_MAX + 1>::cb, &tb) < 0)
    return fail("malformed attributes in RTM_NEWLINK message");
  if (tb[IFLA_IFNAME] && mnl_attr_validate(tb[IFLA_IFNAME], MNL_TYPE_NUL_STRING) == 0)
    l.name = mnl_attr_get_str(tb[IFLA_IFNAME]);
  if (tb[IFLA_MTU] && mnl_attr_validate(tb[IFLA_MTU], MNL_TYPE_U32) == 0)
    l.mtu = static_cast<int>(mnl_attr_get_u32(tb[IFLA_MTU]));
  if (tb[IFLA_ADDRESS]) l.mac = format_mac(tb[IFLA_ADDRESS]);
  if (tb[IFLA_MASTER] && mnl_attr_validate(tb[IFLA_MASTER], MNL_TYPE_U32) == 0)
    l.master = static_cast<int>(mnl_attr_get_u32(tb[IFLA_MASTER]));
  if (tb[IFLA_IFALIAS] && mnl_attr_validate(tb[IFLA_IFALIAS], MNL_TYPE_NUL_STRING) == 0)
    l.alias = mnl_attr_get_str(tb[IFLA_IFALIAS]);
  if (tb[IFLA_LINK] && mnl_attr_validate(tb[IFLA_LINK], MNL_TYPE_U32) == 0)
    l.link = static_cast<int>(mnl_attr_get_u32(tb[IFLA_LINK]));
  if (tb[IFLA_LINK_NETNSID] && mnl_attr_validate(tb[IFLA_LINK_NETNSID], MNL_TYPE_U32) == 0)
    l.link_netnsid = static_cast<int32_t>(mnl_attr_get_u32(tb[IFLA_LINK_NETNSID]));
  if (tb[IFLA_STATS64] && mnl_attr_get_payload_len(tb[IFLA_STATS64]) >= sizeof(rtnl_link_stats64)) {
    rtnl_link_stats64 st;
    std::memcpy(&st, mnl_attr_get_payload(tb[IFLA_STATS64]), sizeof st);
    l.rx_packets = st.rx_packets;
    l.tx_packets = st.tx_packets;
  }
  if (tb[IFLA_LINKINFO]) {
    AttrTable<IFLA_INFO_MAX + 1> info;
    if (mnl_attr_parse_nested(tb[IFLA_LINKINFO], AttrTable<IFLA_INFO_MAX + 1>::cb, &info) >= 0 &&
        info[IFLA_INFO_KIND] && mnl_attr_validate(info[IFLA_INFO_KIND], MNL_TYPE_STRING) == 0)
      l.kind.assign(static_cast<const char*>(mnl_attr_get_payload(info[IFLA_INFO_KIND])),
                    strnlen(static_cast<const char*>(mnl_attr_get_payload(info[IFLA_INFO_KIND])),
                            mnl_attr_get_payload_len(info[IFLA_INFO_KIND])));
    if (l.kind == "vxlan" && info[IFLA_INFO_DATA]) {
      AttrTable<IFLA_VXLAN_MAX + 1> vx;
      if (mnl_attr_parse_nested(info[IFLA_INFO_DATA], AttrTable<IFLA_VXLAN_MAX + 1>::cb, &vx) >= 0) {
        VxlanInfo v;
        if (vx[IFLA_VXLAN_ID] && mnl_attr_validate(vx[IFLA_VXLAN_ID], MNL_TYPE_U32) == 0)
          v.vni = mnl_attr_get_u32(vx[IFLA_VXLAN_ID]);
        if (vx[IFLA_VXLAN_LOCAL]) v.local = to_ip(AF_INET, vx[IFLA_VXLAN_LOCAL]);
        if (vx[IFLA_VXLAN_LOCAL6]) v.local = to_ip(AF_INET6, vx[IFLA_VXLAN_LOCAL6]);
        if (vx[IFLA_VXLAN_PORT] && mnl_attr_validate(vx[IFLA_VXLAN_PORT], MNL_TYPE_U16) == 0)
          v.port = ntohs(mnl_attr_get_u16(vx[IFLA_VXLAN_PORT]));
        l.vxlan = v;
      }
    }
  }
  return l;
}

Result<std::optional<AddrInfo>> parse_addr(const nlmsghdr& nlh) {
  if (nlh.nlmsg_type != RTM_NEWADDR || nlh.nlmsg_len < NLMSG_LENGTH(sizeof(ifaddrmsg)))
    return fail("malformed RTM_NEWADDR message");
  const auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(&nlh));
  if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6) return std::nullopt;
  AttrTable<IFA_MAX + 1> tb;
  if (mnl_attr_parse(&nlh, sizeof(ifaddrmsg), AttrTable<IFA_MAX + 1>::cb, &tb) < 0)
    return fail("malformed attributes in RTM_NEWADDR message");
  // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on point-to-point
  // links, and the only one IPv6 sends.
  const nlattr* a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
  if (!a) return fail("RTM_NEWADDR message without an address");
  auto ip = to_ip(ifa->ifa_family, a);
  if (!ip) return fail("RTM_NEWADDR message with a malformed address");
  AddrInfo info;
  info.index = static_cast<int>(ifa->ifa_index);
  info.prefix = IpPrefix{*ip, ifa->ifa_prefixlen};
  return info;
}

Result<std::optional<NeighInfo>> parse_neigh(const nlmsghdr& nlh) {
  if (nlh.nlmsg_type != RTM_NEWNEIGH || nlh.nlmsg_len < NLMSG_LENGTH(sizeof(ndmsg)))
    return fail("malformed RTM_NEWNEIGH message");
  const auto* nd = static_cast<const ndmsg*>(mnl_nlmsg_get_payload(&nlh));
  if (nd->ndm_family != AF_INET && nd->ndm_family != AF_INET6) return std::nullopt;
  AttrTable<NDA_MAX + 1> tb;
  if (mnl_attr_parse(&nlh, sizeof(ndmsg), AttrTable<NDA_MAX + 1>::cb, &tb) < 0)
    return fail("malformed attributes in RTM_NEWNEIGH message");
  if (!tb[NDA_DST]) return std::nullopt;
  auto ip = to_ip(nd->ndm_family, tb[NDA_DST]);
  if (!ip) return fail("RTM_NEWNEIGH message with a malformed address");
  NeighInfo n;
  n.index = nd->ndm_ifindex;
  n.dst = *ip;
  n.state = nd->ndm_state;
  if (tb[NDA_LLADDR]) n.lladdr = format_mac(tb[NDA_LLADDR]);
  return n;
}

Result<std::optional<RouteInfo>> parse_route(const nlmsghdr& nlh) {
  if (nlh.nlmsg_type != RTM_NEWROUTE || nlh.nlmsg_len < NLMSG_LENGTH(sizeof(rtmsg)))
    return fail("malformed RTM_NEWROUTE message");
  const auto* rtm = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(&nlh));
  if (rtm->rtm_family != AF_INET && rtm->rtm_family != AF_INET6) return std::nullopt;
  AttrTable<RTA_MAX + 1> tb;
  if (mnl_attr_parse(&nlh, sizeof(rtmsg), AttrTable<RTA_MAX + 1>::cb, &tb) < 0)
    return fail("malformed attributes in RTM_NEWROUTE message");
  uint32_t table = rtm->rtm_table;
  if (tb[RTA_TABLE] && mnl_attr_validate(tb[RTA_TABLE], MNL_TYPE_U32) == 0)
    table = mnl_attr_get_u32(tb[RTA_TABLE]);
  if (table != RT_TABLE_MAIN || rtm->rtm_type != RTN_UNICAST) return std::nullopt;
  RouteInfo r;
  r.family = rtm->rtm_family;
  r.protocol = rtm->rtm_protocol;
  r.scope = rtm->rtm_scope;
  if (rtm->rtm_dst_len > 0 || tb[RTA_DST]) {
    if (!tb[RTA_DST]) return fail("RTM_NEWROUTE message with a prefix length but no RTA_DST");
    auto dst = to_ip(rtm->rtm_family, tb[RTA_DST]);
    if (!dst) return fail("RTM_NEWROUTE message with a malformed RTA_DST");
    if (rtm->rtm_dst_len > 0) r.dst = IpPrefix{*dst, rtm->rtm_dst_len};
  }
  if (tb[RTA_GATEWAY]) {
    auto gw = to_ip(rtm->rtm_family, tb[RTA_GATEWAY]);
    if (!gw) return fail("RTM_NEWROUTE message with a malformed RTA_GATEWAY");
    r.via = *gw;
  }
  if (tb[RTA_OIF] && mnl_attr_validate(tb[RTA_OIF], MNL_TYPE_U32) == 0)
    r.oif = static_cast<int>(mnl_attr_get_u32(tb[RTA_OIF]));
  return r;
}

Result<RouteLookup> parse_route_get(const nlmsghdr& nlh) {
  if (nlh.nlmsg_type != RTM_NEWROUTE || nlh.nlmsg_len < NLMSG_LENGTH(sizeof(rtmsg)))
    return fail("malformed answer to a route lookup");
  const auto* rtm = static_cast<const rtmsg*>(mnl_nlmsg_get_payload(&nlh));
  AttrTable<RTA_MAX + 1> tb;
  if (mnl_attr_parse(&nlh, sizeof(rtmsg), AttrTable<RTA_MAX + 1>::cb, &tb) < 0)
    return fail("malformed attributes in the answer to a route lookup");
  RouteLookup r;
  r.type = rtm->rtm_type;
  r.table = rtm->rtm_table;
  if (tb[RTA_TABLE] && mnl_attr_validate(tb[RTA_TABLE], MNL_TYPE_U32) == 0) r.table = mnl_attr_get_u32(tb[RTA_TABLE]);
  auto ip_of = [&](unsigned type) { return tb[type] ? to_ip(rtm->rtm_family, tb[type]) : std::nullopt; };
  if (auto d = ip_of(RTA_DST)) r.dst = *d;
  r.via = ip_of(RTA_GATEWAY);
  r.src = ip_of(RTA_PREFSRC);
  if (tb[RTA_OIF] && mnl_attr_validate(tb[RTA_OIF], MNL_TYPE_U32) == 0)
    r.oif = static_cast<int>(mnl_attr_get_u32(tb[RTA_OIF]));
  return r;
}

Result<std::optional<FdbEntry>> parse_fdb(const nlmsghdr& nlh) {
  if (nlh.nlmsg_type != RTM_NEWNEIGH || nlh.nlmsg_len < NLMSG_LENGTH(sizeof(ndmsg)))
    return fail("malformed RTM_NEWNEIGH message");
  const auto* nd = static_cast<const ndmsg*>(mnl_nlmsg_get_payload(&nlh));
  if (nd->ndm_family != AF_BRIDGE) return std::nullopt;
  AttrTable<NDA_MAX + 1> tb;
  if (mnl_attr_parse(&nlh, sizeof(ndmsg), AttrTable<NDA_MAX + 1>::cb, &tb) < 0)
    return fail("malformed attributes in RTM_NEWNEIGH message");
  if (!tb[NDA_LLADDR]) return std::nullopt;
  FdbEntry e;
  e.index = nd->ndm_ifindex;
  e.state = nd->ndm_state;
  e.mac = format_mac(tb[NDA_LLADDR]);
  if (e.mac.empty()) return std::nullopt;
  if (tb[NDA_MASTER] && mnl_attr_validate(tb[NDA_MASTER], MNL_TYPE_U32) == 0)
    e.master = static_cast<int>(mnl_attr_get_u32(tb[NDA_MASTER]));
  if (tb[NDA_VLAN] && mnl_attr_validate(tb[NDA_VLAN], MNL_TYPE_U16) == 0) e.vlan = mnl_attr_get_u16(tb[NDA_VLAN]);
  if (tb[NDA_DST]) {
    const size_t n = mnl_attr_get_payload_len(tb[NDA_DST]);
    e.dst = to_ip(n == 4 ? AF_INET : AF_INET6, tb[NDA_DST]);
  }
  return e;
}

std::string nud_state_name(uint16_t state) {
  static const std::pair<uint16_t, const char*> names[] = {
      {NUD_INCOMPLETE, "incomplete"}, {NUD_REACHABLE, "reachable"}, {NUD_STALE, "stale"},
      {NUD_DELAY, "delay"},           {NUD_PROBE, "probe"},         {NUD_FAILED, "failed"},
      {NUD_NOARP, "noarp"},           {NUD_PERMANENT, "permanent"},
  };
  std::string out;
  for (const auto& [bit, name] : names)
    if (state & bit) out += (out.empty() ? "" : ",") + std::string(name);
  return out.empty() ? "none" : out;
}

}  // namespace rtnl

std::string RouteLookup::str() const {
  std::string s = dst.str();
  if (type == RTN_LOCAL) s = "local " + s;
  if (via) s += " via " + via->str();
  if (!dev.empty()) s += " dev " + dev;
  if (src) s += " src " + src->str();
  if (table != 0 && table != RT_TABLE_MAIN) s += table == RT_TABLE_LOCAL ? " table local" : " table " + std::to_string(table);
  return s;
}

// The kernel marks what the bridge learned from traffic REACHABLE (or STALE once aged),
// its own addresses PERMANENT and static entries NOARP (br_fdb.c, fdb_fill_info); rows
// without NDA_MASTER are a port's own address list (multicast), not the bridge's.
bool FdbEntry::learned() const {
  return master != 0 && (state & (NUD_REACHABLE | NUD_STALE)) && !(state & (NUD_PERMANENT | NUD_NOARP));
}

// ---- Rtnl --------------------------------------------------------------------------------

Result<Rtnl> Rtnl::open(std::string where) {
  TRY_ASSIGN(NetlinkSocket s, NetlinkSocket::open(NETLINK_ROUTE, std::move(where)));
  return Rtnl(std::move(s));
}

std::optional<int> Rtnl::cached_index(const std::string& dev) const {
  auto it = index_.find(dev);
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

Result<int> Rtnl::ifindex(const std::string& dev) {
  if (auto i = cached_index(dev)) return *i;
  TRY_ASSIGN(LinkInfo l, link(dev));
  return l.index;
}

Result<LinkInfo> Rtnl::link(const std::string& dev) {
  std::optional<LinkInfo> found;
  TRY(sock_.transact(rtnl::link_get(dev), [&](const nlmsghdr& nlh) -> Status {
    TRY_ASSIGN(LinkInfo l, rtnl::parse_link(nlh));
    found = std::move(l);
    return {};
  }));
  if (!found || found->name != dev)
    return fail_errno("find interface " + dev + (where().empty() ? "" : " in " + where()), ENODEV,
                      rtnl::link_hint(ENODEV, where()));
  index_[dev] = found->index;
  return std::move(*found);
}

Result<std::vector<LinkInfo>> Rtnl::links() {
  std::vector<LinkInfo> out;
  TRY(sock_.dump(rtnl::link_dump(), [&](const nlmsghdr& nlh) -> Status {
    TRY_ASSIGN(LinkInfo l, rtnl::parse_link(nlh));
    out.push_back(std::move(l));
    return {};
  }));
  index_.clear();
  for (const auto& l : out) index_[l.name] = l.index;
  return out;
}

namespace {

// The entries of a dump that `parse` keeps (nullopt: not one of them), each named after
// its link (`index`: its ifindex field) from a fresh link dump.
template <class T, class Parse>
Result<std::vector<T>> dump_named(Rtnl& rtnl, const Request& r, Parse parse, int T::*index) {
  std::vector<T> out;
  TRY(rtnl.socket().dump(r, [&](const nlmsghdr& nlh) -> Status {
    auto e = parse(nlh);
    if (!e) return tl::unexpected(std::move(e).error());
    if (*e) out.push_back(std::move(**e));
    return {};
  }));
  TRY_ASSIGN(auto ls, rtnl.links());
  for (auto& e : out)
    for (const auto& l : ls)
      if (l.index == e.*index) e.dev = l.name;
  return out;
}

}  // namespace

Result<std::vector<AddrInfo>> Rtnl::addresses() {
  return dump_named(*this, rtnl::addr_dump(AF_UNSPEC), rtnl::parse_addr, &AddrInfo::index);
}

Result<std::vector<NeighInfo>> Rtnl::neighbours(int family) {
  return dump_named(*this, rtnl::neigh_dump(family), rtnl::parse_neigh, &NeighInfo::index);
}

Result<std::vector<RouteInfo>> Rtnl::routes(int family) {
  auto of_family = [family](const nlmsghdr& nlh) {
    auto r = rtnl::parse_route(nlh);
    if (r && *r && (*r)->family != family) *r = std::nullopt;
    return r;
  };
  return dump_named(*this, rtnl::route_dump(family), of_family, &RouteInfo::oif);
}

Status Rtnl::forget_neighbour(const NeighInfo& n) {
  return sock_.transact(rtnl::neigh_del(n.index, n.dst));
}

Status Rtnl::forget_fdb(const FdbEntry& e) {
  TRY_ASSIGN(Request r, rtnl::fdb_del(e.index, e.mac));
  return sock_.transact(r);
}

Result<RouteLookup> Rtnl::route_get(const IpAddr& dst) {
  std::optional<RouteLookup> found;
  TRY(sock_.transact(rtnl::route_get(dst), [&](const nlmsghdr& nlh) -> Status {
    TRY_ASSIGN(RouteLookup r, rtnl::parse_route_get(nlh));
    found = std::move(r);
    return {};
  }));
  if (!found) return fail("ip route get " + dst.str() + (where().empty() ? "" : " in " + where()) + ": the kernel gave no answer");
  if (found->oif) {
    TRY_ASSIGN(auto ls, links());
    for (const auto& l : ls)
      if (l.index == found->oif) found->dev = l.name;
  }
  return std::move(*found);
}

Result<std::vector<FdbEntry>> Rtnl::fdb() {
  return dump_named(*this, rtnl::fdb_dump(), rtnl::parse_fdb, &FdbEntry::index);
}

RtnlBatch Rtnl::batch() { return RtnlBatch(*this); }

// A single change is a one-request batch: one code path, one set of errors.
Status Rtnl::apply(const std::function<Status(RtnlBatch&)>& add) {
  RtnlBatch b(*this);
  (void)add(b);  // its error is also the batch's
  return b.commit();
}

Status Rtnl::delete_link(const std::string& dev) {
  TRY_ASSIGN(Request r, rtnl::link_del(dev));
  index_.erase(dev);
  return sock_.transact(r);
}

// ---- RtnlBatch ---------------------------------------------------------------------------

Status RtnlBatch::add(Result<Request> r) {
  if (!r) {
    if (!rtnl_->where().empty()) r.error().message += " in " + rtnl_->where();
    slots_.push_back(tl::unexpected(r.error()));
    return tl::unexpected(std::move(r).error());
  }
  pending_slot_.push_back(slots_.size());
  slots_.emplace_back();
  pending_.push_back(std::move(*r));
  return {};
}

Status RtnlBatch::fail_slot(const Error& e) {
  slots_.push_back(tl::unexpected(e));
  return tl::unexpected(e);
}

bool RtnlBatch::failed() const {
  for (const auto& s : slots_)
    if (!s) return true;
  return false;
}

void RtnlBatch::flush() {
  if (pending_.empty()) return;
  std::vector<Status> st;
  if (failed()) {
    for (const auto& r : pending_)
      st.push_back(fail(r.what + ": not sent: an earlier request of its batch failed"));
  } else {
    // Links this batch creates come back echoed: remember their ifindex, so that setting
    // a master or adding an address needs no lookup (and no flush) afterwards.
    st = rtnl_->socket().batch_each(pending_, [&](const nlmsghdr& nlh) -> Status {
      if (nlh.nlmsg_type != RTM_NEWLINK) return {};
      TRY_ASSIGN(LinkInfo l, rtnl::parse_link(nlh));
      if (l.index > 0 && !l.name.empty()) rtnl_->index_[l.name] = l.index;
      return {};
    });
  }
  for (size_t i = 0; i < st.size(); ++i) slots_[pending_slot_[i]] = std::move(st[i]);
  pending_.clear();
  pending_slot_.clear();
}

Result<int> RtnlBatch::resolve(const std::string& dev) {
  if (auto i = rtnl_->cached_index(dev)) return *i;
  flush();  // the link may be one this batch creates
  return rtnl_->ifindex(dev);
}

Status RtnlBatch::create_bridge(const std::string& name, int mtu) {
  return add(rtnl::bridge_add(name, mtu));
}
Status RtnlBatch::create_veth(const std::string& name, const std::string& peer_name,
                              int peer_netns_fd, int mtu, const std::string& mac,
                              const std::string& peer_mac) {
  return add(rtnl::veth_add(name, peer_name, peer_netns_fd, mtu, mac, peer_mac));
}
Status RtnlBatch::create_vxlan(const VxlanLink& v, int netns_fd) {
  return add(rtnl::vxlan_add(v, netns_fd));
}
Status RtnlBatch::fdb_append(const std::string& dev, const IpAddr& remote) {
  auto i = resolve(dev);
  if (!i) return fail_slot(i.error());
  return add(rtnl::fdb_append(*i, dev, remote));
}
Status RtnlBatch::set_master(const std::string& dev, const std::string& master) {
  auto m = resolve(master);
  if (!m) return fail_slot(m.error());
  return add(rtnl::link_set_master(dev, *m, master));
}
Status RtnlBatch::link_up(const std::string& dev) { return add(rtnl::link_set_up(dev)); }
Status RtnlBatch::link_down(const std::string& dev) { return add(rtnl::link_set_down(dev)); }
Status RtnlBatch::add_address(const std::string& dev, const IpPrefix& addr, int scope,
                              bool deprecated) {
  auto i = resolve(dev);
  if (!i) return fail_slot(i.error());
  return add(rtnl::addr_add(*i, dev, addr, scope, deprecated));
}
Status RtnlBatch::add_for(const std::string& dev,
                          const std::function<Result<Request>(int ifindex)>& build) {
  auto i = resolve(dev);
  if (!i) return fail_slot(i.error());
  return add(build(*i));
}
Status RtnlBatch::add_route(const Route& r) {
  int oif = 0;
  if (!r.dev.empty()) {
    auto i = resolve(r.dev);
    if (!i) return fail_slot(i.error());
    oif = *i;
  }
  return add(rtnl::route_add(r, oif));
}
Status RtnlBatch::create_ipip(const Tunnel& t) {
  int link = 0;
  if (!t.dev.empty()) {
    auto i = resolve(t.dev);
    if (!i) return fail_slot(i.error());
    link = *i;
  }
  return add(rtnl::ipip_add(t, link));
}
Status RtnlBatch::ensure_ipip() { return add(rtnl::ipip_ensure()); }
Status RtnlBatch::ensure_ip6tnl() { return add(rtnl::ip6tnl_ensure()); }
Status RtnlBatch::set_alias(const std::string& dev, const std::string& alias) {
  return add(rtnl::link_set_alias(dev, alias));
}

std::vector<Status> RtnlBatch::commit_each() {
  flush();
  std::vector<Status> out = std::move(slots_);
  slots_.clear();
  return out;
}

Status RtnlBatch::commit() { return first_failure(commit_each()); }

}  // namespace labctl
