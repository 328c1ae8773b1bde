// The connection-tracking table of one network namespace over ctnetlink (`conntrack -L`):
// each entry's original tuple (as the first packet left its sender) and reply tuple (what
// an answer must look like). NAT rewrites the reply tuple: after a masquerade the reply goes
// to the router's own address and port, which is how the router maps it back.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "labctl/base/error.h"
#include "labctl/kernel/netlink.h"
#include "labctl/model/ip.h"

namespace labctl {

/// One direction of a tracked connection: addresses, protocol and ports (0 for ICMP).
struct CtTuple {
  IpAddr src;
  IpAddr dst;
  uint8_t proto = 0;  ///< IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP ...
  uint16_t sport = 0;
  uint16_t dport = 0;
  /// "192.168.1.8:12121 -> 8.8.8.8:80" (no ports for a protocol without them).
  [[nodiscard]] std::string str() const;
};

struct CtEntry {
  CtTuple orig;
  CtTuple reply;
  uint32_t status = 0;     ///< IPS_* bits (IPS_SRC_NAT, IPS_DST_NAT ...).
  uint32_t timeout = 0;    ///< Seconds left.
  std::optional<uint8_t> tcp_state;  ///< TCP_CONNTRACK_*, for TCP entries.
  [[nodiscard]] bool src_nat() const;
  [[nodiscard]] bool dst_nat() const;
  /// "tcp 192.168.1.8:12121 -> 8.8.8.8:80, reply 8.8.8.8:80 -> 6.6.6.6:12121 (ESTABLISHED, source NAT)".
  [[nodiscard]] std::string str() const;
};

namespace conntrack {

/// IPCTNL_MSG_CT_GET with NLM_F_DUMP for one address family.
[[nodiscard]] Request dump_request(int family);
/// IPCTNL_MSG_CT_DELETE of the entry whose original tuple is `orig` (`conntrack -D`).
[[nodiscard]] Request delete_request(const CtTuple& orig);
/// One IPCTNL_MSG_CT_NEW message of the dump; nullopt for entries of another family.
[[nodiscard]] Result<std::optional<CtEntry>> parse_entry(const nlmsghdr& nlh);
/// "ESTABLISHED", "TIME_WAIT" ... (conntrack -L's words).
[[nodiscard]] std::string tcp_state_name(uint8_t state);
/// "tcp", "udp", "icmp", else the number.
[[nodiscard]] std::string proto_name(uint8_t proto);

}  // namespace conntrack

/// Every entry of the calling thread's namespace's conntrack table of `family`. The table
/// stays empty unless the namespace's ruleset uses conntrack (a nat chain does).
[[nodiscard]] Result<std::vector<CtEntry>> conntrack_entries(int family, const std::string& where = {});
/// Deletes the entry of the calling thread's namespace whose original tuple is `orig` (one
/// gone already counts as done): a new flow of the same tuple then starts a new entry, NAT
/// chosen afresh, instead of reusing what an earlier one left.
[[nodiscard]] Status conntrack_forget(const CtTuple& orig, const std::string& where = {});

}  // namespace labctl
