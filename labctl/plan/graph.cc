#include "labctl/plan/graph.h"

#include <fmt/format.h>

#include <cctype>
#include <deque>
#include <map>
#include <sstream>
#include <vector>

#include "labctl/model/hosts.h"
#include "labctl/plan/roles.h"

namespace labctl {
namespace {

/// The lines shown in a node's box: name, role, then "dev addr, addr" per device.
std::vector<std::string> node_lines(const Roles& r, const Node& n) {
  std::vector<std::string> lines{n.name};
  if (std::string role = r.role_name(n); role != n.name) lines.push_back(role);
  auto dev = [&](const std::string& name, const std::vector<IpPrefix>& addrs) {
    std::string s = name;
    for (std::size_t i = 0; i < addrs.size(); ++i) s += (i ? ", " : " ") + addrs[i].str();
    lines.push_back(s);
  };
  for (const auto& i : n.interfaces) dev(i.name, i.addresses);
  if (!n.lo_addresses.empty()) dev("lo", n.lo_addresses);
  if (n.accept_ipip) dev("tunl0", n.tunl0_addresses);
  if (n.accept_ip6ip6) dev("ip6tnl0", n.ip6tnl0_addresses);
  for (const auto& t : n.tunnels) dev(t.name, t.addresses);
  return lines;
}

/// A switch's box: its name, and for one stretched across hosts its VNI and hosts.
std::vector<std::string> switch_lines(const Topology& t, const Switch& sw) {
  std::vector<std::string> lines{"switch " + sw.name};
  if (auto hosts = switch_hosts(t, sw); multi_host(t) && hosts.size() > 1) {
    std::string on;
    for (const auto& h : hosts) on += (on.empty() ? "" : ", ") + h;
    lines.push_back("VXLAN " + std::to_string(segment_vni(t, sw)) + ": " + on);
  }
  return lines;
}

/// "host h1 (ssh root@10.0.0.1)", or "(this machine)" for the one without ssh.
std::string host_title(const Topology& t, const std::string& name) {
  const Host* h = t.find_host(name);
  return "host " + name + (h && !h->ssh.empty() ? " (ssh " + h->ssh + ")" : " (this machine)");
}

const char* fill(const Roles& r, const Node& n) {
  if (r.directs(n)) return "#fde2c4";
  if (r.is_real_server(n)) return "#d5f0d5";
  if (r.is_router(n)) return "#d6e6fb";
  if (r.is_proxy(n)) return "#eadcf5";
  if (r.is_app(n)) return "#f5f0c8";
  return "#ffffff";
}

/// Calls f(proxy, app's node, label) once for every app an nginx agent of the proxy sends
/// requests to; the label names the paths ("L7 /cart, /api"): the URI split.
template <class F>
void for_each_upstream(const Topology& t, F f) {
  for (const auto& p : t.nodes) {
    std::map<std::string, std::string> paths;  // app node -> "/cart, /"
    for (const auto& a : p.agents) {
      if (!a.nginx) continue;
      for (const auto& route : a.nginx->routes)
        for (const auto& u : a.nginx->upstreams)
          if (u.name == route.upstream)
            for (const auto& srv : u.servers)
              if (const Node* app = t.owner_of(srv.addr)) {
                std::string& l = paths[app->name];
                if (l.find(route.path) == std::string::npos) l += (l.empty() ? "" : ", ") + route.path;
              }
    }
    for (const auto& [app, label] : paths) f(p, *t.node(app), "L7 " + label);
  }
}

std::string service_edge_label(const VirtualService& s, const RealServer& d) {
  return fmt::format("{} {} {}", method_upper(d.method), s.scheduler, service_label(s));
}

/// Calls f(director, service, real server, real server's node) for every service member
/// whose node is in the lab.
template <class F>
void for_each_member(const Roles& r, F f) {
  for (const auto& d : r.topology().nodes)
    for (const auto& s : d.services)
      for (const auto& rs : s.real_servers)
        if (const Node* o = r.owner(rs.addr)) f(d, s, rs, *o);
}

/// Hops from the first node over cables and switches ("node:x" / "switch:y" keys), so that
/// links can be drawn from the near end to the far end: dot then lays the lab out left to
/// right as traffic flows from the client.
std::map<std::string, int> link_depths(const Topology& t) {
  std::map<std::string, std::vector<std::string>> adj;
  for (const auto& n : t.nodes)
    for (const auto& i : n.interfaces) {
      std::string a = "node:" + n.name;
      std::string b = !i.sw.empty() ? "switch:" + i.sw : "node:" + i.peer_node;
      if (i.sw.empty() && i.peer_node.empty()) continue;
      adj[a].push_back(b);
      adj[b].push_back(a);
    }
  std::map<std::string, int> depth;
  for (const auto& n : t.nodes) {
    std::string start = "node:" + n.name;
    if (depth.count(start)) continue;
    std::deque<std::string> q{start};
    depth[start] = 0;
    while (!q.empty()) {
      std::string cur = q.front();
      q.pop_front();
      for (const auto& nb : adj[cur])
        if (!depth.count(nb)) {
          depth[nb] = depth[cur] + 1;
          q.push_back(nb);
        }
    }
  }
  return depth;
}

// ---- DOT ----

std::string dot_quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string dot_label(const std::vector<std::string>& lines) {
  std::string joined;
  for (std::size_t i = 0; i < lines.size(); ++i) joined += (i ? "\n" : "") + lines[i];
  // Quote first, then turn real newlines into DOT's centred line breaks.
  std::string q = dot_quote(joined);
  std::string out;
  for (char c : q) out += c == '\n' ? std::string("\\n") : std::string(1, c);
  return out;
}

std::string dot_node_id(const std::string& n) { return dot_quote("node:" + n); }
std::string dot_switch_id(const std::string& s) { return dot_quote("switch:" + s); }

// ---- Mermaid ----

std::string mermaid_id(const std::string& prefix, const std::string& name) {
  std::string out = prefix;
  for (char c : name) out += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return out;
}

std::string mermaid_text(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"') out += "#quot;";
    else if (c == '|') out += "#124;";
    else out += c;
  }
  return out;
}

// The lab's nodes and switches as a graph draws them: on one host, all at the top level;
// across hosts (docs/multihost.md), a group per host around its nodes and the switches only
// it has, then each stretched switch between the groups. open(host) and close() draw a
// group's frame; node(n, indent) and sw(s, indent) a node and a switch.
template <class Open, class Close, class NodeLine, class SwitchLine>
void draw_grouped(const Topology& t, Open open, Close close, NodeLine node, SwitchLine sw) {
  if (!multi_host(t)) {
    for (const auto& n : t.nodes) node(n, "  ");
    for (const auto& s : t.switches) sw(s, "  ");
    return;
  }
  for (const auto& h : lab_hosts(t)) {
    open(h);
    for (const auto& n : t.nodes)
      if (host_of(t, n) == h) node(n, "    ");
    for (const auto& s : t.switches)
      if (auto on = switch_hosts(t, s); on.size() == 1 && on[0] == h) sw(s, "    ");
    close();
  }
  for (const auto& s : t.switches)
    if (switch_hosts(t, s).size() > 1) sw(s, "  ");
}

}  // namespace

std::string render_dot(const Topology& t) {
  Roles r(t);
  std::ostringstream out;
  out << "// Generated by `labctl graph " << t.name << "`. Do not edit.\n";
  out << "graph " << dot_quote(t.name) << " {\n";
  out << "  graph [rankdir=LR, fontname=\"Helvetica\", fontsize=12, labelloc=t, label="
      << dot_quote(t.description.empty() ? t.name : t.name + ": " + t.description) << "];\n";
  out << "  node [fontname=\"Helvetica\", fontsize=10];\n";
  out << "  edge [fontname=\"Helvetica\", fontsize=9];\n";
  auto node_line = [&](const Node& n, const char* indent) {
    out << indent << dot_node_id(n.name) << " [shape=box, style=\"rounded,filled\", fillcolor=\""
        << fill(r, n) << "\", label=" << dot_label(node_lines(r, n)) << "];\n";
  };
  auto switch_line = [&](const Switch& sw, const char* indent) {
    out << indent << dot_switch_id(sw.name) << " [shape=ellipse, style=filled, fillcolor=\"#eeeeee\", label="
        << dot_label(switch_lines(t, sw)) << "];\n";
  };
  draw_grouped(
      t,
      [&](const std::string& h) {
        out << "  subgraph " << dot_quote("cluster_host:" + h) << " {\n    label=" << dot_quote(host_title(t, h))
            << "; style=dashed; color=\"#808080\";\n";
      },
      [&] { out << "  }\n"; }, node_line, switch_line);
  auto depth = link_depths(t);
  for (const auto& n : t.nodes)
    for (const auto& i : n.interfaces) {
      if (!i.sw.empty() && depth["switch:" + i.sw] < depth["node:" + n.name])
        out << "  " << dot_switch_id(i.sw) << " -- " << dot_node_id(n.name)
            << " [label=" << dot_quote(i.name) << "];\n";
      else if (!i.sw.empty())
        out << "  " << dot_node_id(n.name) << " -- " << dot_switch_id(i.sw)
            << " [label=" << dot_quote(i.name) << "];\n";
      else if (!i.peer_node.empty() && n.name < i.peer_node)  // each cable once
        out << "  " << dot_node_id(n.name) << " -- " << dot_node_id(i.peer_node)
            << " [label=" << dot_quote(i.name + " - " + i.peer_ifname) << "];\n";
    }
  for (const auto& n : t.nodes)
    for (const auto& tun : n.tunnels)
      if (const Node* o = r.owner(tun.remote))
        out << "  " << dot_node_id(n.name) << " -- " << dot_node_id(o->name)
            << " [style=dotted, dir=forward, label="
            << dot_quote("ipip " + tun.name + " " + tun.local.str() + " > " + tun.remote.str())
            << "];\n";
  for_each_member(r, [&](const Node& d, const VirtualService& s, const RealServer& rs,
                         const Node& o) {
    out << "  " << dot_node_id(d.name) << " -- " << dot_node_id(o.name)
        << " [style=dashed, color=\"#c05000\", fontcolor=\"#c05000\", dir=forward, constraint=false, label="
        << dot_quote(service_edge_label(s, rs)) << "];\n";
  });
  for_each_upstream(t, [&](const Node& p, const Node& app, const std::string& label) {
    out << "  " << dot_node_id(p.name) << " -- " << dot_node_id(app.name)
        << " [style=dashed, color=\"#7030a0\", fontcolor=\"#7030a0\", dir=forward, constraint=false, label="
        << dot_quote(label) << "];\n";
  });
  out << "}\n";
  return out.str();
}

std::string render_mermaid(const Topology& t) {
  Roles r(t);
  std::ostringstream out;
  out << "flowchart LR\n";
  auto node_line = [&](const Node& n, const char* indent) {
    std::string label;
    for (const auto& l : node_lines(r, n)) label += (label.empty() ? "" : "<br/>") + mermaid_text(l);
    out << indent << mermaid_id("n_", n.name) << "[\"" << label << "\"]\n";
  };
  auto switch_line = [&](const Switch& sw, const char* indent) {
    std::string label;
    for (const auto& l : switch_lines(t, sw)) label += (label.empty() ? "" : "<br/>") + mermaid_text(l);
    out << indent << mermaid_id("s_", sw.name) << "((\"" << label << "\"))\n";
  };
  draw_grouped(
      t,
      [&](const std::string& h) {
        out << "  subgraph " << mermaid_id("h_", h) << "[\"" << mermaid_text(host_title(t, h)) << "\"]\n";
      },
      [&] { out << "  end\n"; }, node_line, switch_line);
  for (const auto& n : t.nodes)
    for (const auto& i : n.interfaces) {
      if (!i.sw.empty())
        out << "  " << mermaid_id("n_", n.name) << " ---|" << mermaid_text(i.name) << "| "
            << mermaid_id("s_", i.sw) << "\n";
      else if (!i.peer_node.empty() && n.name < i.peer_node)
        out << "  " << mermaid_id("n_", n.name) << " ---|" << mermaid_text(i.name + " - " + i.peer_ifname)
            << "| " << mermaid_id("n_", i.peer_node) << "\n";
    }
  for (const auto& n : t.nodes)
    for (const auto& tun : n.tunnels)
      if (const Node* o = r.owner(tun.remote))
        out << "  " << mermaid_id("n_", n.name) << " -.-|" << mermaid_text("ipip " + tun.name)
            << "| " << mermaid_id("n_", o->name) << "\n";
  for_each_member(r, [&](const Node& d, const VirtualService& s, const RealServer& rs,
                         const Node& o) {
    out << "  " << mermaid_id("n_", d.name) << " -.->|" << mermaid_text(service_edge_label(s, rs))
        << "| " << mermaid_id("n_", o.name) << "\n";
  });
  for_each_upstream(t, [&](const Node& p, const Node& app, const std::string& label) {
    out << "  " << mermaid_id("n_", p.name) << " -.->|" << mermaid_text(label) << "| " << mermaid_id("n_", app.name)
        << "\n";
  });
  return out.str();
}

}  // namespace labctl
