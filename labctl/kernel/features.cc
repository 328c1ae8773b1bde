#include "labctl/kernel/features.h"

#include "labctl/kernel/nft.h"

#include <arpa/inet.h>
#include <linux/ip_vs.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <unistd.h>

#include <memory>

#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/link/bridge.h>
#include <netlink/route/link/ipip.h>
#include <netlink/route/link/veth.h>
#include <netlink/route/link/vxlan.h>

#include "labctl/kernel/netlink.h"
#include "labctl/kernel/netns.h"
#include "labctl/kernel/qdisc.h"
#include "labctl/kernel/rtnl.h"

namespace labctl {
namespace {

using Sock = std::unique_ptr<nl_sock, decltype(&nl_socket_free)>;
using Msg = std::unique_ptr<nl_msg, decltype(&nlmsg_free)>;
using Link = std::unique_ptr<rtnl_link, decltype(&rtnl_link_put)>;

Result<Sock> connect(int protocol) {
  Sock sock(nl_socket_alloc(), nl_socket_free);
  if (!sock) return fail("allocate a netlink socket");
  if (int e = nl_connect(sock.get(), protocol); e < 0)
    return fail(std::string("connect a netlink socket: ") + nl_geterror(e));
  int one = 1;
  // Best effort: with it the kernel explains refusals ("Unknown device type").
  ::setsockopt(nl_socket_get_fd(sock.get()), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  return sock;
}

struct KernelAck {
  int errnum = 0;
  std::string kernel;
};

int on_error(sockaddr_nl*, nlmsgerr* err, void* arg) {
  auto* ack = static_cast<KernelAck*>(arg);
  ack->errnum = -err->error;
  // libnl has checked that the message fits what was received (nlmsg_ok); parse_ack checks
  // every attribute's length against it and takes the kernel's text only NUL-terminated.
  const auto* nlh = reinterpret_cast<const nlmsghdr*>(reinterpret_cast<const char*>(err) - NLMSG_HDRLEN);
  if (auto parsed = parse_ack(*nlh)) ack->kernel = parsed->message;
  return NL_STOP;
}

// Sends `msg` and waits for the kernel's ACK; the error keeps errno and the kernel's text.
Status request(nl_sock* sock, nl_msg* msg, const std::string& what) {
  KernelAck ack;
  // nl_wait_for_ack runs the socket's own callbacks: hook the error handler in there.
  std::unique_ptr<nl_cb, decltype(&nl_cb_put)> cb(nl_socket_get_cb(sock), nl_cb_put);
  nl_cb_err(cb.get(), NL_CB_CUSTOM, on_error, &ack);
  if (int e = nl_send_auto_complete(sock, msg); e < 0)
    return fail(what + ": send: " + nl_geterror(e));
  int e = nl_wait_for_ack(sock);
  nl_cb_err(cb.get(), NL_CB_DEFAULT, nullptr, nullptr);
  if (e >= 0 && ack.errnum == 0) return {};
  Error err{what, ack.errnum, ack.kernel, {}};
  if (ack.errnum == 0) err.message += std::string(": ") + nl_geterror(e);
  return tl::unexpected(err);
}

Status add_link(rtnl_link* link, const std::string& what) {
  TRY_ASSIGN(Sock sock, connect(NETLINK_ROUTE));
  nl_msg* raw = nullptr;
  if (int e = rtnl_link_build_add_request(link, NLM_F_CREATE | NLM_F_EXCL, &raw); e < 0)
    return fail(what + ": build request: " + nl_geterror(e));
  Msg msg(raw, nlmsg_free);
  return request(sock.get(), msg.get(), what);
}

Result<int> ipvs_family(nl_sock* sock) {
  int id = genl_ctrl_resolve(sock, IPVS_GENL_NAME);
  if (id < 0)
    return fail(std::string("resolve the generic netlink family \"" IPVS_GENL_NAME "\": ") +
                nl_geterror(id));
  return id;
}

// NEW_SERVICE / DEL_SERVICE for TCP 192.0.2.1:80 (TEST-NET-1, in a throwaway netns).
Result<Msg> service_msg(int family, uint8_t cmd, const std::string& sched,
                        uint16_t protocol = IPPROTO_TCP) {
  Msg msg(nlmsg_alloc(), nlmsg_free);
  if (!msg || !genlmsg_put(msg.get(), NL_AUTO_PORT, NL_AUTO_SEQ, family, 0, NLM_F_ACK, cmd,
                           IPVS_GENL_VERSION))
    return fail("build an IPVS request");
  nlattr* svc = nla_nest_start(msg.get(), IPVS_CMD_ATTR_SERVICE);
  in_addr addr{};
  ::inet_pton(AF_INET, "192.0.2.1", &addr);
  ip_vs_flags flags{0, ~0u};
  bool ok = nla_put_u16(msg.get(), IPVS_SVC_ATTR_AF, AF_INET) == 0 &&
            nla_put_u16(msg.get(), IPVS_SVC_ATTR_PROTOCOL, protocol) == 0 &&
            nla_put(msg.get(), IPVS_SVC_ATTR_ADDR, sizeof addr, &addr) == 0 &&
            nla_put_u16(msg.get(), IPVS_SVC_ATTR_PORT, htons(80)) == 0;
  if (cmd == IPVS_CMD_NEW_SERVICE)
    ok = ok && nla_put_string(msg.get(), IPVS_SVC_ATTR_SCHED_NAME, sched.c_str()) == 0 &&
         nla_put(msg.get(), IPVS_SVC_ATTR_FLAGS, sizeof flags, &flags) == 0 &&
         nla_put_u32(msg.get(), IPVS_SVC_ATTR_TIMEOUT, 0) == 0 &&
         nla_put_u32(msg.get(), IPVS_SVC_ATTR_NETMASK, 0xffffffff) == 0;
  if (!ok) return fail("build an IPVS request: message too large");
  nla_nest_end(msg.get(), svc);
  return msg;
}

// Sets `imp` as the root qdisc of lo in a namespace of its own.
Status probe_qdisc(const Impairment& imp) {
  return run_in_new_netns([&]() -> Status {
    TRY_ASSIGN(Rtnl rtnl, Rtnl::open("a probe namespace"));
    return set_impairment(rtnl, "lo", imp, QdiscChange::Add);
  });
}

Status path_exists(const std::string& path) {
  if (::access(path.c_str(), F_OK) != 0) return fail_errno(path, errno);
  return {};
}

}  // namespace

Status probe_netns() {
  return run_in_new_netns([] { return Status{}; });
}

Status probe_veth() {
  return run_in_new_netns([]() -> Status {
    Link link(rtnl_link_veth_alloc(), rtnl_link_put);
    if (!link) return fail("allocate a veth link");
    rtnl_link_set_name(link.get(), "lcprobe0");
    rtnl_link_set_name(rtnl_link_veth_get_peer(link.get()), "lcprobe1");
    return add_link(link.get(), "create a veth pair");
  });
}

Status probe_bridge() {
  return run_in_new_netns([]() -> Status {
    Link link(rtnl_link_bridge_alloc(), rtnl_link_put);
    if (!link) return fail("allocate a bridge link");
    rtnl_link_set_name(link.get(), "lcprobe0");
    return add_link(link.get(), "create a bridge");
  });
}

Status probe_ipip() {
  return run_in_new_netns([]() -> Status {
    Link link(rtnl_link_ipip_alloc(), rtnl_link_put);
    if (!link) return fail("allocate an ipip link");
    rtnl_link_set_name(link.get(), "lcprobe0");
    // Non-zero endpoints: an all-zero ipip would collide with the fallback tunl0.
    in_addr local{}, remote{};
    ::inet_pton(AF_INET, "192.0.2.1", &local);
    ::inet_pton(AF_INET, "192.0.2.2", &remote);
    rtnl_link_ipip_set_local(link.get(), local.s_addr);
    rtnl_link_ipip_set_remote(link.get(), remote.s_addr);
    return add_link(link.get(), "create an ipip tunnel");
  });
}

// As a lab's is made (vni, local, dstport), but created where the probe runs: the throwaway
// namespace is both the underlay and the switch here.
Status probe_vxlan() {
  return run_in_new_netns([]() -> Status {
    Link link(rtnl_link_vxlan_alloc(), rtnl_link_put);
    if (!link) return fail("allocate a vxlan link");
    rtnl_link_set_name(link.get(), "lcprobe0");
    in_addr local{};
    ::inet_pton(AF_INET, "192.0.2.1", &local);
    std::unique_ptr<nl_addr, decltype(&nl_addr_put)> addr(nl_addr_build(AF_INET, &local, sizeof local),
                                                          nl_addr_put);
    if (!addr) return fail("allocate an address");
    rtnl_link_vxlan_set_id(link.get(), 1);
    rtnl_link_vxlan_set_local(link.get(), addr.get());
    rtnl_link_vxlan_set_port(link.get(), 4789);
    return add_link(link.get(), "create a vxlan device");
  });
}

IpvsProbe probe_ipvs(const std::vector<std::string>& schedulers, bool sctp) {
  IpvsProbe probe;
  Status st = run_in_new_netns([&]() -> Status {
    TRY_ASSIGN(Sock sock, connect(NETLINK_GENERIC));
    TRY_ASSIGN(int family, ipvs_family(sock.get()));
    for (const auto& name : schedulers) {
      probe.schedulers.push_back([&]() -> Status {
        TRY_ASSIGN(Msg add, service_msg(family, IPVS_CMD_NEW_SERVICE, name));
        TRY(request(sock.get(), add.get(), "add a virtual service with scheduler " + name));
        TRY_ASSIGN(Msg del, service_msg(family, IPVS_CMD_DEL_SERVICE, name));
        return request(sock.get(), del.get(), "delete the probe service");
      }());
    }
    if (sctp)
      probe.sctp = [&]() -> Status {
        TRY_ASSIGN(Msg add, service_msg(family, IPVS_CMD_NEW_SERVICE, "rr", IPPROTO_SCTP));
        TRY(request(sock.get(), add.get(), "add an SCTP virtual service"));
        TRY_ASSIGN(Msg del, service_msg(family, IPVS_CMD_DEL_SERVICE, "rr", IPPROTO_SCTP));
        return request(sock.get(), del.get(), "delete the probe service");
      }();
    return {};
  });
  probe.family = st;
  if (!st) {
    probe.schedulers.assign(schedulers.size(), st);
    if (sctp) probe.sctp = st;
  }
  return probe;
}

Status probe_netem() {
  Impairment imp;
  imp.delay = std::chrono::milliseconds(1);
  return probe_qdisc(imp);
}

Status probe_tbf() {
  Impairment imp;
  imp.rate = 125000;  // 1mbit
  return probe_qdisc(imp);
}

Status probe_nftables() {
  return run_in_new_netns([] { return nft_apply("add table inet labctl_probe\n", "create an nftables table"); });
}

Status probe_sysctls() {
  return run_in_new_netns([]() -> Status {
    for (const char* p : {"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv4/conf/all/rp_filter",
                          "/proc/sys/net/ipv4/conf/all/arp_ignore",
                          "/proc/sys/net/ipv4/conf/all/arp_announce"})
      TRY(path_exists(p));
    return {};
  });
}

}  // namespace labctl
