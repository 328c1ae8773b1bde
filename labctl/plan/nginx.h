// An nginx agent's nginx.conf, generated from the topology (its upstream groups, routes by
// path prefix, balancing and upstream keep-alive), and how nginx is run so that it keeps to
// the agent's own folder in the lab's state: in the foreground (labagent's supervisor owns
// it), its prefix (-p) that folder, every path of the config relative to it, its error log
// on stderr (-e stderr, so even a config it rejects says why in the agent's log).
#pragma once

#include <string>
#include <vector>

#include "labctl/model/topology.h"

namespace labctl {

/// The nginx binary (Debian's package): $LABCTL_NGINX, else /usr/sbin/nginx.
[[nodiscard]] std::string nginx_program();

/// nginx.conf for nginx agent `a` of `node`: its `config` as given, else one generated from
/// the topology. Upstream servers must have been resolved to addresses (validate does).
[[nodiscard]] std::string nginx_config(const Topology& t, const Node& node, const Agent& a);

/// nginx's own command line for a run in `dir` (which holds nginx.conf); with `test`, the
/// `nginx -t` that checks the config first (and prints only what is wrong: -q).
[[nodiscard]] std::vector<std::string> nginx_command(const std::string& program, const std::string& dir,
                                                     bool test = false);

}  // namespace labctl
