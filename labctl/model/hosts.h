// A lab spread over several machines (docs/multihost.md): `[hosts]`, where each node and
// switch runs, and the segments stretched between hosts with VXLAN. Without `[hosts]` every
// answer here is the one machine labctl runs on, and nothing changes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "labctl/model/topology.h"

namespace labctl {

/// The name of the machine labctl runs on, when no `[hosts]` entry is (one without `ssh`).
inline constexpr std::string_view kLocalHostName = "local";
/// The VXLAN device of a stretched switch, beside its bridge in the switch's namespace.
inline constexpr std::string_view kVxlanDevice = "vxlan0";
/// VXLAN's UDP port (IANA).
inline constexpr uint16_t kVxlanPort = 4789;

/// Whether the lab names hosts at all.
[[nodiscard]] inline bool multi_host(const Topology& t) { return !t.hosts.empty(); }
/// The machine labctl runs on: the `[hosts]` entry without `ssh`, else kLocalHostName.
[[nodiscard]] std::string local_host(const Topology& t);
/// The host a node runs on: its `host`, else the local host.
[[nodiscard]] std::string host_of(const Topology& t, const Node& n);
/// The hosts a switch exists on: its own `host` and its members' hosts, sorted. A switch with
/// neither is on the local host.
[[nodiscard]] std::vector<std::string> switch_hosts(const Topology& t, const Switch& sw);
/// Every host something of the lab runs on, in `[hosts]` order (an implicit local host first).
[[nodiscard]] std::vector<std::string> lab_hosts(const Topology& t);

/// A switch with members on more than one host: one VXLAN network identifier, and on each of
/// its hosts a VXLAN device sending to all the others.
struct StretchedSegment {
  const Switch* sw = nullptr;
  uint32_t vni = 0;
  std::vector<std::string> hosts;  ///< Sorted.
};
[[nodiscard]] std::vector<StretchedSegment> stretched_segments(const Topology& t);
/// The switch's `vni`, else one derived from the lab's and the switch's names (FNV-1a, in
/// 4096..16777215 so that small hand-picked VNIs of other tools are not hit by chance).
[[nodiscard]] uint32_t segment_vni(const Topology& t, const Switch& sw);
/// The bytes VXLAN adds to a frame on the underlay: 50 over IPv4, 70 over IPv6.
[[nodiscard]] int vxlan_overhead(const IpAddr& underlay);

/// Spreads the nodes without `host` over the hosts: nodes joined by a veth stay together;
/// each group goes, biggest first, to a host with room (at most ceil(nodes / hosts) each)
/// where it stretches the fewest switches to a new host, then to the least loaded, then to
/// the first in [hosts] order. Deterministic: every host computes the same placement.
void place_auto(Topology& t);

namespace topo {
class Reporter;
/// The `[hosts]` rules: names that exist, one local host at most, no veth between hosts,
/// an underlay address on every host of a stretched segment (one family, distinct), no VNI
/// twice, and a warning where a frame of the lab's MTU does not fit the underlay with
/// VXLAN's overhead. Runs after the bridge ports are named; places the nodes first when the
/// lab asks for `place = "auto"`.
void check_hosts(Topology& t, Reporter& r);
}  // namespace topo

}  // namespace labctl
