#include "labctl/kernel/conntrack.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

namespace labctl {

std::string CtTuple::str() const {
  const bool ports = proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
  auto end = [&](const IpAddr& a, uint16_t port) {
    std::string s = a.v6() ? "[" + a.str() + "]" : a.str();
    return ports ? s + ":" + std::to_string(port) : a.str();
  };
  return end(src, sport) + " -> " + end(dst, dport);
}

bool CtEntry::src_nat() const { return (status & IPS_SRC_NAT) != 0; }
bool CtEntry::dst_nat() const { return (status & IPS_DST_NAT) != 0; }

std::string CtEntry::str() const {
  std::string s = conntrack::proto_name(orig.proto) + " " + orig.str() + ", reply " + reply.str();
  std::string notes;
  if (tcp_state) notes = conntrack::tcp_state_name(*tcp_state);
  if (src_nat()) notes += std::string(notes.empty() ? "" : ", ") + "source NAT";
  if (dst_nat()) notes += std::string(notes.empty() ? "" : ", ") + "destination NAT";
  return notes.empty() ? s : s + " (" + notes + ")";
}

namespace conntrack {
namespace {

Result<CtTuple> parse_tuple(const nlattr* attr, int family) {
  CtTuple t;
  AttrTable<CTA_TUPLE_MAX + 1> tb;
  if (mnl_attr_parse_nested(attr, decltype(tb)::cb, &tb) < 0) return fail("malformed conntrack tuple");
  if (const nlattr* ip = tb[CTA_TUPLE_IP]) {
    AttrTable<CTA_IP_MAX + 1> ipt;
    if (mnl_attr_parse_nested(ip, decltype(ipt)::cb, &ipt) < 0) return fail("malformed conntrack tuple address");
    const bool v4 = family == AF_INET;
    const unsigned src = v4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC, dst = v4 ? CTA_IP_V4_DST : CTA_IP_V6_DST;
    const size_t len = v4 ? 4 : 16;
    for (auto [type, out] : {std::pair{src, &t.src}, std::pair{dst, &t.dst}}) {
      if (!ipt[type] || mnl_attr_get_payload_len(ipt[type]) != len) return fail("conntrack tuple without an address");
      out->family = family;
      std::memcpy(out->bytes.data(), mnl_attr_get_payload(ipt[type]), len);
    }
  }
  if (const nlattr* proto = tb[CTA_TUPLE_PROTO]) {
    AttrTable<CTA_PROTO_MAX + 1> pt;
    if (mnl_attr_parse_nested(proto, decltype(pt)::cb, &pt) < 0) return fail("malformed conntrack tuple protocol");
    if (pt[CTA_PROTO_NUM] && mnl_attr_validate(pt[CTA_PROTO_NUM], MNL_TYPE_U8) == 0)
      t.proto = mnl_attr_get_u8(pt[CTA_PROTO_NUM]);
    // Ports travel in network byte order.
    if (pt[CTA_PROTO_SRC_PORT] && mnl_attr_validate(pt[CTA_PROTO_SRC_PORT], MNL_TYPE_U16) == 0)
      t.sport = ntohs(mnl_attr_get_u16(pt[CTA_PROTO_SRC_PORT]));
    if (pt[CTA_PROTO_DST_PORT] && mnl_attr_validate(pt[CTA_PROTO_DST_PORT], MNL_TYPE_U16) == 0)
      t.dport = ntohs(mnl_attr_get_u16(pt[CTA_PROTO_DST_PORT]));
  }
  return t;
}

}  // namespace

//   nlmsghdr   type (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET, NLM_F_REQUEST | NLM_F_DUMP
//   nfgenmsg   { nfgen_family = family, version = NFNETLINK_V0, res_id = 0 }
Request dump_request(int family) {
  std::vector<uint8_t> buf(MNL_ALIGN(sizeof(nlmsghdr)) + MNL_ALIGN(sizeof(nfgenmsg)), 0);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  nfg->nfgen_family = static_cast<uint8_t>(family);
  nfg->version = NFNETLINK_V0;
  nfg->res_id = 0;
  buf.resize(nlh->nlmsg_len);
  auto hint = [](int errnum, const std::string&) -> std::string {
    if (errnum == EPERM || errnum == EACCES) return "needs root (CAP_NET_ADMIN over the namespace)";
    if (errnum == EPROTONOSUPPORT || errnum == ENOENT)
      return "this kernel has no ctnetlink (CONFIG_NF_CT_NETLINK, module nf_conntrack_netlink)";
    return "";
  };
  return Request{std::move(buf), "list the conntrack table", hint, 0};
}

//   nlmsghdr   type (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE, NLM_F_REQUEST
//   nfgenmsg   { family, NFNETLINK_V0, 0 }
//   CTA_TUPLE_ORIG { CTA_TUPLE_IP { SRC, DST }, CTA_TUPLE_PROTO { NUM, SRC_PORT, DST_PORT } }
Request delete_request(const CtTuple& orig) {
  std::vector<uint8_t> buf(256, 0);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_DELETE;
  nlh->nlmsg_flags = NLM_F_REQUEST;
  auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  nfg->nfgen_family = static_cast<uint8_t>(orig.src.family);
  nfg->version = NFNETLINK_V0;
  nlattr* tuple = mnl_attr_nest_start(nlh, CTA_TUPLE_ORIG);
  nlattr* ip = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
  const bool v4 = orig.src.v4();
  mnl_attr_put(nlh, v4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC, orig.src.size(), orig.src.bytes.data());
  mnl_attr_put(nlh, v4 ? CTA_IP_V4_DST : CTA_IP_V6_DST, orig.dst.size(), orig.dst.bytes.data());
  mnl_attr_nest_end(nlh, ip);
  nlattr* proto = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
  mnl_attr_put_u8(nlh, CTA_PROTO_NUM, orig.proto);
  mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(orig.sport));
  mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(orig.dport));
  mnl_attr_nest_end(nlh, proto);
  mnl_attr_nest_end(nlh, tuple);
  buf.resize(nlh->nlmsg_len);
  return Request{std::move(buf), "conntrack -D " + orig.str(), nullptr, ENOENT};
}

Result<std::optional<CtEntry>> parse_entry(const nlmsghdr& nlh) {
  if ((nlh.nlmsg_type >> 8) != NFNL_SUBSYS_CTNETLINK || nlh.nlmsg_len < NLMSG_LENGTH(sizeof(nfgenmsg)))
    return fail("malformed ctnetlink message");
  const auto* nfg = static_cast<const nfgenmsg*>(mnl_nlmsg_get_payload(&nlh));
  const int family = nfg->nfgen_family;
  if (family != AF_INET && family != AF_INET6) return std::nullopt;
  AttrTable<CTA_MAX + 1> tb;
  if (mnl_attr_parse(&nlh, sizeof(nfgenmsg), decltype(tb)::cb, &tb) < 0)
    return fail("malformed attributes in a conntrack entry");
  if (!tb[CTA_TUPLE_ORIG] || !tb[CTA_TUPLE_REPLY]) return fail("conntrack entry without its tuples");
  CtEntry e;
  TRY_ASSIGN(e.orig, parse_tuple(tb[CTA_TUPLE_ORIG], family));
  TRY_ASSIGN(e.reply, parse_tuple(tb[CTA_TUPLE_REPLY], family));
  if (tb[CTA_STATUS] && mnl_attr_validate(tb[CTA_STATUS], MNL_TYPE_U32) == 0)
    e.status = ntohl(mnl_attr_get_u32(tb[CTA_STATUS]));
  if (tb[CTA_TIMEOUT] && mnl_attr_validate(tb[CTA_TIMEOUT], MNL_TYPE_U32) == 0)
    e.timeout = ntohl(mnl_attr_get_u32(tb[CTA_TIMEOUT]));
  if (const nlattr* pi = tb[CTA_PROTOINFO]) {
    AttrTable<CTA_PROTOINFO_MAX + 1> pit;
    if (mnl_attr_parse_nested(pi, decltype(pit)::cb, &pit) >= 0 && pit[CTA_PROTOINFO_TCP]) {
      AttrTable<CTA_PROTOINFO_TCP_MAX + 1> tcp;
      if (mnl_attr_parse_nested(pit[CTA_PROTOINFO_TCP], decltype(tcp)::cb, &tcp) >= 0 &&
          tcp[CTA_PROTOINFO_TCP_STATE] && mnl_attr_validate(tcp[CTA_PROTOINFO_TCP_STATE], MNL_TYPE_U8) == 0)
        e.tcp_state = mnl_attr_get_u8(tcp[CTA_PROTOINFO_TCP_STATE]);
    }
  }
  return e;
}

std::string tcp_state_name(uint8_t state) {
  static const char* const names[] = {"NONE",       "SYN_SENT",  "SYN_RECV", "ESTABLISHED", "FIN_WAIT",
                                      "CLOSE_WAIT", "LAST_ACK",  "TIME_WAIT", "CLOSE",      "SYN_SENT2"};
  return state < std::size(names) ? names[state] : "state " + std::to_string(state);
}

std::string proto_name(uint8_t proto) {
  switch (proto) {
    case IPPROTO_TCP: return "tcp";
    case IPPROTO_UDP: return "udp";
    case IPPROTO_ICMP: return "icmp";
    case IPPROTO_ICMPV6: return "icmpv6";
    case IPPROTO_SCTP: return "sctp";
    default: return "proto " + std::to_string(proto);
  }
}

}  // namespace conntrack

Result<std::vector<CtEntry>> conntrack_entries(int family, const std::string& where) {
  TRY_ASSIGN(NetlinkSocket sock, NetlinkSocket::open(NETLINK_NETFILTER, where));
  std::vector<CtEntry> out;
  TRY(sock.dump(conntrack::dump_request(family), [&](const nlmsghdr& nlh) -> Status {
    TRY_ASSIGN(auto e, conntrack::parse_entry(nlh));
    if (e) out.push_back(std::move(*e));
    return {};
  }));
  return out;
}

Status conntrack_forget(const CtTuple& orig, const std::string& where) {
  TRY_ASSIGN(NetlinkSocket sock, NetlinkSocket::open(NETLINK_NETFILTER, where));
  return sock.transact(conntrack::delete_request(orig));
}

}  // namespace labctl
