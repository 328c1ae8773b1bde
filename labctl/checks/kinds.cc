// The registry of the kinds' run halves: each entry is defined in its kind's own file.
// A new kind adds one line here (and its spec in model/check_specs.cc).
#include "labctl/checks/check_kind.h"

namespace labctl::check_kind {

extern const KindRun reach_kind, no_reach_kind, http_kind, balance_kind, bypass_kind,
    via_director_kind, tunnel_kind, arp_owner_kind, sticky_kind, least_conn_kind, failover_kind,
    health_kind, latency_kind, throughput_kind;
extern const KindRun route_kind, neigh_kind, fdb_kind, nat_map_kind, handshakes_kind;
extern const KindRun director_bytes_kind;

const std::vector<const KindRun*>& kind_runs() {
  static const std::vector<const KindRun*> all = {
      &reach_kind,  &no_reach_kind,  &http_kind,       &balance_kind,  &bypass_kind, &via_director_kind,
      &tunnel_kind, &arp_owner_kind, &sticky_kind,     &least_conn_kind, &failover_kind, &health_kind,
      &latency_kind, &throughput_kind,
      &route_kind,  &neigh_kind,     &fdb_kind,        &nat_map_kind,  &handshakes_kind,
      &director_bytes_kind,
  };
  return all;
}

const KindRun* find_kind_run(std::string_view name) {
  for (const KindRun* k : kind_runs())
    if (k->name == name) return k;
  return nullptr;
}

}  // namespace labctl::check_kind
