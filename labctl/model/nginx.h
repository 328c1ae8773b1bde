// The nginx agent kind (an L7 reverse proxy): the rules its keys keep across the lab (an
// upstream server is a lab node with an agent listening on that port, or an address of
// the lab; a route names a known upstream; the listen address is the node's own), and what
// a verbatim config must say so that nginx keeps to the lab's own folders.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "labctl/model/diag.h"
#include "labctl/model/segments.h"
#include "labctl/model/topology.h"

namespace labctl {

/// Bounds of the nginx agent's keys (docs/topology.md, "nginx").
inline constexpr int kMaxNginxKeepalive = 1024;
inline constexpr int kMaxNginxWorkers = 64;

/// The directives a verbatim nginx.conf must hold: without them nginx forks into the
/// background, or writes its pid, temp files and access log to its compiled-in places
/// (/run, /var/lib/nginx, /var/log/nginx), outside the lab's state.
inline constexpr const char* kNginxRequiredDirectives[] = {
    "daemon",          "pid",         "access_log",        "client_body_temp_path",
    "proxy_temp_path", "fastcgi_temp_path", "uwsgi_temp_path", "scgi_temp_path"};

/// Those of kNginxRequiredDirectives that `config` does not write (as a directive: a word at
/// the start of a line or after ';', '{' or '}', followed by a blank).
[[nodiscard]] std::vector<std::string> nginx_config_lacks(std::string_view config);

namespace topo {
/// The nginx rules (docs/topology.md, "nginx"); resolves each upstream server written as a
/// node to that node's first address.
void check_nginx(Topology& t, const Net& net, Reporter& r);
}  // namespace topo

}  // namespace labctl
