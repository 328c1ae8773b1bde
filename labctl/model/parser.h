// Inside phase one (parse.cc and its section files): the Parser that reads the TOML tree as
// written into the model. Its generic readers (str, integer, strings, prefix ...) report what
// is wrong at the value's line:col and return nullopt; its parse_* members, one section of the
// schema each, live in parse_nodes.cc (switches, nodes, interfaces, routes, sysctls, tunnels),
// parse_services.cc (services, real servers, marks and nat rules), parse_agents.cc (agents and
// keepalived) and parse_checks.cc (checks); parse.cc holds the readers and the top level.
#pragma once

#include <toml++/toml.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "labctl/model/diag.h"
#include "labctl/model/topology.h"

namespace labctl::topo {

using Keys = std::vector<std::string>;

// Where each key's value (and each element of a list) of `t` was written, for the model
// object made from `t`: later checks blame a key of it without looking its path up again.
KeyPositions key_positions(const toml::table& t);

class Parser {
 public:
  explicit Parser(Reporter& r) : r_(r) {}
  Topology run(const toml::table& root);

 private:
  struct Entry {
    std::string name;
    Pos key_pos;
    const toml::node* value;
  };

  // --- generic readers: each reports what is wrong and returns nullopt ---
  std::vector<Entry> entries(const toml::table& t, Pos fallback);
  void unknown_keys(const toml::table& t, const Keys& known, const std::string& where, Pos fallback);
  const toml::table* table_of(const toml::node& n, const std::string& where, Pos fallback);
  std::optional<std::string> str(const toml::table& t, std::string_view key,
                                 const std::string& where, Pos tpos, bool required = false);
  std::optional<int64_t> integer(const toml::table& t, std::string_view key,
                                 const std::string& where, Pos tpos, int64_t lo, int64_t hi,
                                 bool required = false);
  std::optional<bool> boolean(const toml::table& t, std::string_view key,
                              const std::string& where, Pos tpos);
  std::optional<double> number(const toml::table& t, std::string_view key,
                               const std::string& where, Pos tpos);
  /// A string or an array of strings, each with its position.
  std::vector<std::pair<std::string, Pos>> strings(const toml::table& t, std::string_view key,
                                                   const std::string& where, Pos tpos);
  std::vector<IpPrefix> prefixes(const toml::table& t, std::string_view key,
                                 const std::string& where, Pos tpos);
  /// One CIDR text; reports why it is none.
  std::optional<IpPrefix> prefix(const std::string& text, Pos p, const std::string& where);
  void parse_lo(Node& n, const toml::table& t, const std::string& where, Pos tpos);
  void parse_ip6tnl0(Node& n, const toml::table& t, const std::string& where, Pos tpos);
  std::optional<IpAddr> address(const toml::table& t, std::string_view key,
                                const std::string& where, Pos tpos, bool required = false);
  void missing(std::string_view key, const std::string& where, Pos tpos, std::string hint = {});
  bool name_ok(const std::string& name, Pos p, const std::string& what);

  // --- the schema ---
  Switch parse_switch(const Entry& e);
  /// One `[hosts.NAME]` table (docs/multihost.md).
  Host parse_host(const Entry& e);
  Node parse_node(const Entry& e);
  Interface parse_interface(const std::string& node, const Entry& e);
  std::vector<Route> parse_routes(const std::string& node, const toml::table& t, Pos tpos);
  void flatten_sysctls(const toml::table& t, const std::string& prefix, Pos fallback,
                       std::vector<Sysctl>& out);
  Tunnel parse_tunnel(const std::string& node, const Entry& e);
  /// A node's `ipvs_sync` table: interface, id and role.
  IpvsSync parse_ipvs_sync(const toml::node& n, const std::string& where, Pos tpos);
  VirtualService parse_service(const std::string& node, const Entry& e);
  RealServer parse_real_server(const std::string& where, const toml::table& t, Pos tpos,
                               FwdMethod default_method);
  /// Port 0, netmask, sched_flags and one_packet: the keys whose rules depend on the
  /// service's protocol, scheduler and persistence, read after them.
  void service_options(VirtualService& s, const toml::table& t, const std::string& where, Pos tp);
  std::vector<MarkRule> parse_marks(const std::string& node, const toml::node& n, Pos tpos);
  std::vector<NatRule> parse_nat(const std::string& node, const toml::node& n, Pos tpos);
  /// `to` of a nat rule: ADDR, ADDR:PORT, [V6]:PORT (snat, dnat) or a port (redirect).
  void nat_to(NatRule& r, const toml::table& t, const std::string& where, Pos tp);
  std::vector<uint16_t> ports(const toml::table& t, std::string_view key, const std::string& where, Pos tpos);
  std::optional<IpPrefix> match_prefix(const toml::table& t, std::string_view key, const std::string& where,
                                       Pos tpos);
  Agent parse_agent(const std::string& node, const Entry& e);
  /// An agent's table for its kind's parse hook (model/agent_spec.h).
  class AgentReader;
  /// The keepalived agent's keys (docs/topology.md, "keepalived").
  KeepalivedSpec parse_keepalived(const toml::table& t, const std::string& where, Pos tp);
  /// An agent's verbatim `config` (keepalived.conf, nginx.conf: `file`), beside which only
  /// `common` keys may stand: its text, with an error for an empty one (`generated_from`
  /// says what leaving it out does) or one holding NUL.
  std::string verbatim_config(const toml::table& t, const Keys& common, const std::string& where, Pos tp,
                              std::string_view file, std::string_view generated_from);
  VrrpInstance parse_vrrp(const toml::table& t, const std::string& where, Pos tp, bool gateway);
  KeepalivedService parse_keepalived_service(const Entry& e, const std::string& where);
  /// The nginx agent's keys (docs/topology.md, "nginx"; parse_nginx.cc).
  NginxSpec parse_nginx(const toml::table& t, const std::string& where, Pos tp);
  Check parse_check(const Entry& e);
  void check_param(const toml::table& t, std::string_view key, Check& c, const std::string& where, Pos tp);
  Exercise parse_exercise(const toml::node& n, Pos p);
  std::optional<FwdMethod> method(const toml::table& t, const std::string& where, Pos tpos);

  Reporter& r_;
};

}  // namespace labctl::topo
