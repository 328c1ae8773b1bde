// The model half of every kind of agent, one registered entry each (agent_specs.cc): the
// keys an agent of the kind takes and how they are read into the Agent. The plan half
// (plan/agent_kinds.cc: its argv, readiness, start order, why) and labagent's subcommand
// (agents/<kind>.cc) are joined to it by the kind's name; nothing else in the model names
// a kind.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "labctl/model/topology.h"

namespace labctl::topo {

/// An agent's table as the parser reads every table: a reader reports what is wrong with
/// the key (at its position) and returns nullopt or nothing, and parsing goes on.
class AgentTable {
 public:
  explicit AgentTable(std::string w) : where(std::move(w)) {}
  virtual ~AgentTable() = default;
  AgentTable(const AgentTable&) = delete;
  AgentTable& operator=(const AgentTable&) = delete;

  const std::string where;  ///< "agent NODE:NAME", for messages.

  [[nodiscard]] virtual bool has(std::string_view key) const = 0;
  [[nodiscard]] virtual bool is_string(std::string_view key) const = 0;
  [[nodiscard]] virtual bool is_array(std::string_view key) const = 0;
  /// Where `key`'s value was written, else the table.
  [[nodiscard]] virtual Pos at(std::string_view key) const = 0;
  virtual std::optional<std::string> str(std::string_view key, bool required = false) = 0;
  virtual std::optional<int64_t> integer(std::string_view key, int64_t lo, int64_t hi) = 0;
  /// A string or a list of strings, each with its position.
  virtual std::vector<std::pair<std::string, Pos>> strings(std::string_view key) = 0;
  /// "WHERE needs 'KEY'", at the table.
  virtual void missing(std::string_view key, std::string hint) = 0;
  virtual void error(Pos p, std::string message, std::string hint = {}) = 0;
  /// A keepalived agent's keys (its VRRP instance, gateway and services, or a verbatim
  /// config), read by parse.cc's keepalived reader, which checks for unknown keys itself.
  virtual KeepalivedSpec keepalived() = 0;
  /// An nginx agent's keys (its upstreams and routes, or a verbatim config), read by
  /// parse_nginx.cc, which checks for unknown keys itself.
  virtual NginxSpec nginx() = 0;
};

struct AgentKindSpec {
  std::string name;  ///< As written in `kind = "..."`.
  /// Its own keys, besides kind, restart and ready_timeout (every kind's), in the order an
  /// unknown key's hint lists them.
  std::vector<std::string> keys{};
  /// Its parse hook checks its keys itself (keepalived: they depend on `config`).
  bool checks_own_keys = false;
  /// A client: it sends and finishes (exiting 0 is success), its port is none it listens on.
  bool client = false;
  /// Reads the kind's keys into `a` (port, params, argv, keepalived), defaults filled in.
  void (*parse)(AgentTable& t, Agent& a) = nullptr;
};

/// Every kind of agent, in the order docs/topology.md lists them.
[[nodiscard]] const std::vector<AgentKindSpec>& agent_kinds();
[[nodiscard]] const AgentKindSpec* find_agent_kind(std::string_view name);

/// Whether `a` listens on its port (it has one and is no client): what two agents of a
/// node may not share, and what a check that stops a server's agent looks for.
[[nodiscard]] bool agent_listens(const Agent& a);
/// Whether `a` is a client (see AgentKindSpec::client).
[[nodiscard]] bool agent_is_client(const Agent& a);

}  // namespace labctl::topo
