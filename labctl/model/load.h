// Loading a topology: TOML text in, a resolved Topology (topology.h) or diagnostics out.
// Two phases, containerlab style: toml++ parses the file as written, keeping the line and
// column of every key and value; the resolver then checks types, names, references and
// the LVS rules and reports every problem at once, each at its own file:line:col.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "labctl/model/topology.h"

namespace labctl {

struct Diagnostic {
  enum class Severity { Error, Warning };
  Severity severity = Severity::Error;
  std::string file;  ///< As given, or "dr-demo.toml" for built-ins.
  int line = 0, col = 0;
  std::string message;
  std::string hint;  ///< "" when none.
};

struct LoadResult {
  std::optional<Topology> topology;     ///< Set only when there are no errors.
  std::vector<Diagnostic> diagnostics;  ///< Errors and warnings, in file order.
  std::string text;  ///< The exact text that was parsed: what `up` keeps as the lab's copy.
  [[nodiscard]] bool ok() const;
};

/// A built-in name (see builtins.h: topologies/*.toml compiled in) or a file path.
/// A path is anything containing '/' or ending in ".toml" or an existing file.
[[nodiscard]] LoadResult load_topology(const std::string& name_or_path);
[[nodiscard]] LoadResult parse_topology(std::string_view text, const std::string& file);
/// "file:line:col: error: msg", plus a "\n  hint: ..." line when there is a hint.
[[nodiscard]] std::string format_diagnostic(const Diagnostic& d);
[[nodiscard]] nlohmann::json diagnostics_json(const std::vector<Diagnostic>&);

}  // namespace labctl
