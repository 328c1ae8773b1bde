// What names and values a topology may hold: one place for the limits the parser enforces
// and docs/topology.md describes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "labctl/model/check_spec.h"  // the check kinds, which the parser knows by name
#include "labctl/model/topology.h"

namespace labctl::topo {

/// Lab, node, switch, service, agent and check names. 32 keeps "<lab>-<node>" (the
/// namespace name, a file under /run/netns) readable in `ip netns list`.
inline constexpr std::size_t kMaxNameLen = 32;
inline constexpr std::size_t kMaxIfnameLen = 15;  ///< IFNAMSIZ - 1.
inline constexpr int64_t kMinMtu = 68;             ///< The IPv4 minimum.
inline constexpr int64_t kMaxMtu = 65535;
inline constexpr int64_t kMaxPersistence = 31536000;  ///< A year, in seconds.
inline constexpr int64_t kMaxLoadCount = 1000000;
inline constexpr int64_t kMaxLoadConcurrency = 64;
/// A load agent's time bound (its `seconds`), so a lab's load always stops by itself.
inline constexpr int64_t kMaxLoadSeconds = 3600;
inline constexpr int64_t kDefaultLoadSeconds = 30;
inline constexpr int64_t kMaxCheckRequests = 10000;
/// An http agent's body `size`: up to 1 GiB (it is sent from one buffer of at most 1 MiB).
inline constexpr int64_t kMaxHttpBodySize = int64_t{1} << 30;
/// The http agent's `delay`: milliseconds of simulated work per request, at most a minute.
inline constexpr int64_t kMaxHttpDelayMs = 60000;
/// The longest deadline a check may ask for, in seconds.
inline constexpr double kMaxCheckTimeout = 600;
/// Connections a least-conn check may hold open at once (each is a socket on both ends).
inline constexpr int64_t kMaxCheckHold = 256;
/// failover's `connections`: at most this many held across the failure (the http agent
/// keeps at most 256 connections open at once).
inline constexpr int64_t kMaxCheckConnections = 64;
/// An agent's ready_timeout, in seconds: at most this (a server that needs longer to listen
/// is better started by hand).
inline constexpr double kMaxAgentReadyTimeout = 300;
/// IPv6 needs an MTU of at least 1280 (RFC 8200); below it the kernel drops the
/// interface's IPv6 addresses and refuses new ones.
inline constexpr int64_t kMinMtuIpv6 = 1280;
/// The largest topology file read. Real labs are a few KB; the cap keeps /dev/zero or a
/// mistaken log file from eating memory.
inline constexpr std::size_t kMaxFileBytes = std::size_t{4} << 20;
/// The deepest nesting a topology may have (table and key parts, inline tables, arrays);
/// toml++ recurses per level and a few thousand levels overflow its stack.
inline constexpr int kMaxDepth = 64;
/// A Linux bridge holds at most BR_MAX_PORTS (1024) ports; the 1025th fails with EXFULL.
inline constexpr std::size_t kMaxBridgePorts = 1024;
/// Real network sysctls have at most 6 parts and 60 bytes (net.ipv4.conf.<if>.<name>);
/// the bounds leave room and keep a runaway key out of messages and /proc paths.
inline constexpr std::size_t kMaxSysctlKeyParts = 16;
inline constexpr std::size_t kMaxSysctlKeyLen = 255;

/// Why `name` is not a safe file and interface name part, or nullopt when it is.
[[nodiscard]] std::optional<std::string> bad_name(std::string_view name);
/// Names labctl keeps for its own files beside the labs' (under /run/labctl, see
/// lab/state.h): no lab may be called so, whatever the layout of the day.
[[nodiscard]] const std::vector<std::string>& reserved_lab_names();
/// Why `name` cannot name a lab (bad_name, or reserved), or nullopt when it can.
[[nodiscard]] std::optional<std::string> bad_lab_name(std::string_view name);
/// Why `name` cannot be a lab interface name, or nullopt: 1-15 bytes of letters, digits, '_',
/// '.' and '-' (not first); stricter than the kernel, as names reach nft rulesets.
[[nodiscard]] std::optional<std::string> bad_ifname(std::string_view name);
[[nodiscard]] std::optional<std::string> bad_mac(std::string_view mac);
/// The largest VXLAN network identifier (24 bits).
inline constexpr int64_t kMaxVni = (1 << 24) - 1;
/// Why `dest` is not an ssh destination labctl passes on (`[hosts]`'s `ssh`), or nullopt: at
/// most 255 printable bytes, no space or quote, not beginning with '-' (ssh would read an
/// option).
[[nodiscard]] std::optional<std::string> bad_ssh_destination(std::string_view dest);
/// Why `prog` cannot be `[hosts]`'s `labctl` (an absolute path or a bare program name, no
/// space, no '..'), or nullopt.
[[nodiscard]] std::optional<std::string> bad_remote_program(std::string_view prog);
[[nodiscard]] std::optional<std::string> bad_sysctl_key(std::string_view key);

[[nodiscard]] std::optional<FwdMethod> parse_method(std::string_view s);
/// "tcp", "udp", "sctp".
[[nodiscard]] std::optional<Proto> parse_proto(std::string_view s);
/// A scheduler flag (service key `sched_flags`, ipvsadm -b) and the one scheduler it is for.
struct SchedFlag {
  std::string name;       ///< "sh-port"
  std::string scheduler;  ///< "sh"
  uint32_t bit = 0;       ///< IP_VS_SVC_F_SCHED1..3
};
[[nodiscard]] const std::vector<SchedFlag>& sched_flags();
[[nodiscard]] const SchedFlag* find_sched_flag(std::string_view name);
/// Ports one mark rule may list (dport, sport): an nft set, kept small enough to read.
inline constexpr std::size_t kMaxMarkPorts = 64;

[[nodiscard]] const std::vector<std::string>& schedulers();
[[nodiscard]] bool is_scheduler(std::string_view s);
/// Splits on whitespace; only to suggest an argv list for a command written as one string.
[[nodiscard]] std::vector<std::string> split_words(std::string_view s);

}  // namespace labctl::topo
