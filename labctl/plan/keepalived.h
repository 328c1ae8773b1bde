// A keepalived agent's keepalived.conf, generated from the topology (its VRRP instances
// and the IPVS services it manages with health checks), and how keepalived is run so that
// several instances, one per director namespace, never meet: pid files and config in a
// directory of their own, in the foreground, so labagent's supervisor owns it.
#pragma once

#include <string>
#include <vector>

#include "labctl/model/topology.h"

namespace labctl {

/// The keepalived binary (Debian's package): $LABCTL_KEEPALIVED, else /usr/sbin/keepalived.
[[nodiscard]] std::string keepalived_program();

/// keepalived.conf for keepalived agent `a` of `node`: its `config` as given, else one
/// generated from the topology (global_defs, the VRRP instance(s), a vrrp_sync_group when
/// there is a gateway instance, and a virtual_server block per managed service).
[[nodiscard]] std::string keepalived_config(const Topology& t, const Node& node, const Agent& a);

/// keepalived's own command line for a run in `dir` (which holds keepalived.conf): in the
/// foreground, logging to the console in detail, not to syslog, with pid files in dir.
[[nodiscard]] std::vector<std::string> keepalived_command(const std::string& program,
                                                          const std::string& dir);

/// The VRRP instance names keepalived_config() gives agent `a` (the main one, the gateway's).
[[nodiscard]] std::string vrrp_instance_name(const Agent& a, bool gateway = false);

}  // namespace labctl
