// Phase one, an nginx agent's keys (docs/topology.md, "nginx"): its listen address, upstream
// groups, routes by path prefix and balancing, or a config given verbatim. Every string that
// reaches nginx.conf is checked here to be one word nginx reads as written: no quote, brace,
// semicolon, '#' or space can end a directive early or open a block.
#include <algorithm>

#include <fmt/format.h>

#include "labctl/base/display.h"
#include "labctl/model/diag.h"
#include "labctl/model/nginx.h"
#include "labctl/model/parser.h"

namespace labctl::topo {
namespace {

bool all_of_chars(std::string_view s, std::string_view extra) {
  return std::all_of(s.begin(), s.end(), [&](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           extra.find(c) != std::string_view::npos;
  });
}

// "NODE:PORT", "ADDRESS:PORT" or "[V6]:PORT": the part before the port and the port.
std::optional<std::pair<std::string, uint16_t>> split_target(const std::string& text) {
  std::string host, port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    if (!IpAddr::parse(host) || !IpAddr::parse(host)->v6()) return std::nullopt;
  } else {
    auto colon = text.find(':');
    if (colon == std::string::npos || text.find(':', colon + 1) != std::string::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host.empty() || port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  const int p = std::stoi(port);
  if (p < 1 || p > 65535) return std::nullopt;
  return std::pair{host, static_cast<uint16_t>(p)};
}

}  // namespace

NginxSpec Parser::parse_nginx(const toml::table& t, const std::string& where, Pos tp) {
  NginxSpec k;
  const Keys common = {"kind", "port", "restart", "ready_timeout"};
  if (t.get("config")) {
    // `port` stays beside a verbatim config: it is what ready means.
    k.config = verbatim_config(t, common, where, tp, "nginx.conf", "upstreams and routes");
    if (k.config.find_first_not_of(" \t\r\n") == std::string::npos) return k;  // said: empty
    if (auto lacks = nginx_config_lacks(k.config); !lacks.empty())
      r_.error(pos_at(t, "config", tp),
               fmt::format("config of {} lacks {}: nginx would use its compiled-in defaults under /var/lib/nginx, "
                           "/var/log/nginx or /run, outside the lab",
                           where, fmt::join(lacks, ", ")),
               "nginx runs with its prefix (-p) in the agent's own folder of the lab's state: add `daemon off;` "
               "and `pid nginx.pid;` at the top and `access_log /dev/stdout;` and the five temp paths "
               "(client_body_temp_path client_body_temp; ...) in http { }, as `labctl explain` shows a "
               "generated one");
    return k;
  }
  Keys known = common;
  known.insert(known.end(), {"address", "upstreams", "routes", "keepalive", "method", "hash_key", "worker_processes",
                          "name_path"});
  unknown_keys(t, known, where, tp);
  k.address = address(t, "address", where, tp);
  k.keepalive = static_cast<int>(integer(t, "keepalive", where, tp, 0, kMaxNginxKeepalive).value_or(0));
  k.worker_processes = static_cast<int>(integer(t, "worker_processes", where, tp, 1, kMaxNginxWorkers).value_or(1));
  if (auto m = str(t, "method", where, tp)) {
    const std::vector<std::string> methods = {"round_robin", "least_conn", "ip_hash", "hash"};
    if (std::find(methods.begin(), methods.end(), *m) == methods.end())
      r_.error(pos_at(t, "method", tp), fmt::format("method of {} is {}", where, shown(*m)),
               did_you_mean(*m, methods, "one of round_robin (the default), least_conn, ip_hash, hash"));
    else
      k.method = *m;
  }
  if (auto h = str(t, "hash_key", where, tp)) {
    if (k.method != "hash")
      r_.error(pos_at(t, "hash_key", tp), fmt::format("{} has a hash_key but its method is {}, not hash", where, k.method),
               "hash_key is what method = \"hash\" hashes: add method = \"hash\", or leave hash_key out");
    else if (h->empty() || !all_of_chars(*h, "$_"))
      r_.error(pos_at(t, "hash_key", tp), fmt::format("hash_key of {} is {}", where, shown(*h)),
               "an nginx variable, e.g. hash_key = \"$request_uri\" or \"$remote_addr\"");
    else
      k.hash_key = *h;
  } else if (k.method == "hash") {
    missing("hash_key", where, tp, "what method = \"hash\" hashes, e.g. hash_key = \"$request_uri\"");
  }

  if (auto np = str(t, "name_path", where, tp)) {
    if (np->empty() || np->front() != '/' || !all_of_chars(*np, "/-._~%!&+,=:@"))
      r_.error(pos_at(t, "name_path", tp), fmt::format("name_path of {} is {}", where, shown(*np)),
               "a path that starts with '/' and holds letters, digits and /-._~%!&+,=:@, e.g. \"/whoami\"");
    else
      k.name_path = *np;
  }

  if (const auto* up = t.get("upstreams")) {
    if (const auto* ut = table_of(*up, "upstreams of " + where, tp)) {
      if (ut->empty())
        r_.error(pos_at(t, "upstreams", tp), fmt::format("upstreams of {} is empty", where),
                 "name a group of servers, e.g. upstreams.apps = [\"app1:8080\", \"app2:8080\"]");
      for (const auto& e : entries(*ut, tp)) {
        NginxUpstream u;
        u.name = e.name;
        u.pos = e.key_pos;
        const std::string w = fmt::format("upstream {} of {}", plain(e.name), where);
        if (e.name.empty() || !all_of_chars(e.name, "_-") || e.name.front() == '-')
          r_.error(e.key_pos, fmt::format("{}: an upstream's name is letters, digits, '_' and '-' (not first)", w));
        if (!e.value->is_array()) {
          r_.error(e.key_pos, fmt::format("{} must be a list of \"NODE:PORT\" or \"ADDRESS:PORT\"", w),
                   fmt::format("e.g. upstreams.{} = [\"app1:8080\", \"10.0.0.12:8080\"]", plain(e.name)));
          k.upstreams.push_back(std::move(u));
          continue;
        }
        for (const auto& [text, p] : strings(*ut, e.name, w, e.key_pos)) {
          NginxServer s;
          s.pos = p;
          auto split = split_target(text);
          if (!split) {
            r_.error(p, fmt::format("server {} of {} is not NODE:PORT or ADDRESS:PORT", shown(text), w),
                     "e.g. \"app1:8080\" (a node of the lab), \"10.0.0.11:8080\" or \"[fd00::11]:8080\"");
            continue;
          }
          s.target = split->first;
          s.port = split->second;
          if (auto a = IpAddr::parse(s.target)) s.addr = *a;
          u.servers.push_back(std::move(s));
        }
        if (e.value->as_array()->empty())
          r_.error(e.key_pos, fmt::format("{} has no servers", w),
                   fmt::format("e.g. upstreams.{} = [\"app1:8080\", \"app2:8080\"]", plain(e.name)));
        k.upstreams.push_back(std::move(u));
      }
    }
  } else {
    missing("upstreams", where, tp,
            "the groups nginx forwards to, e.g. upstreams.apps = [\"app1:8080\", \"app2:8080\"] (or give a "
            "verbatim config)");
  }

  if (const auto* rt = t.get("routes")) {
    if (const auto* rtt = table_of(*rt, "routes of " + where, tp)) {
      if (rtt->empty())
        r_.error(pos_at(t, "routes", tp), fmt::format("routes of {} is empty", where),
                 "map path prefixes to upstreams, e.g. routes = { \"/cart\" = \"cart\", \"/\" = \"apps\" }");
      for (const auto& e : entries(*rtt, tp)) {
        NginxRoute r;
        r.path = e.name;
        r.pos = pos_or(*e.value, e.key_pos);  // where the upstream is named
        const std::string w = fmt::format("route {} of {}", shown(e.name), where);
        if (e.name.empty() || e.name.front() != '/')
          r_.error(e.key_pos, fmt::format("{}: a route's path must start with '/'", w),
                   "a path prefix, e.g. \"/cart\" (or \"/\" for everything else)");
        else if (!all_of_chars(e.name, "/-._~%!&+,=:@"))
          r_.error(e.key_pos, fmt::format("{}: a path is letters, digits and /-._~%!&+,=:@", w),
                   "no spaces, quotes, braces, ';' or '#': percent-encode them as a URL does (%20)");
        if (auto name = str(*rtt, e.name, w, e.key_pos)) r.upstream = *name;
        k.routes.push_back(std::move(r));
      }
    }
  } else if (k.upstreams.size() == 1) {
    // One group: everything goes to it.
    k.routes.push_back({"/", k.upstreams.front().name, tp});
  } else if (k.upstreams.size() > 1) {
    missing("routes", where, tp,
            fmt::format("with {} upstreams, say which path goes where, e.g. routes = {{ \"/cart\" = \"{}\", \"/\" = "
                        "\"{}\" }}",
                        k.upstreams.size(), plain(k.upstreams.back().name), plain(k.upstreams.front().name)));
  }
  return k;
}

}  // namespace labctl::topo
