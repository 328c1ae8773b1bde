// Internal to the topology loader: collecting diagnostics and suggesting near names.
// Shared by parse.cc (TOML to model) and validate.cc (cross checks).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "labctl/model/topology.h"
#include "labctl/model/load.h"

namespace labctl::topo {

/// Collects every diagnostic of one load, so that all errors are reported at once.
class Reporter {
 public:
  explicit Reporter(std::string file) : file_(std::move(file)) {}
  void error(Pos p, std::string message, std::string hint = {});
  void warning(Pos p, std::string message, std::string hint = {});
  [[nodiscard]] bool has_errors() const;
  [[nodiscard]] const std::string& file() const { return file_; }
  /// The diagnostics sorted by position (stable, so same-position ones keep their order).
  [[nodiscard]] std::vector<Diagnostic> take();

 private:
  std::string file_;
  std::vector<Diagnostic> diags_;
};

/// Levenshtein distance, for "did you mean" hints.
[[nodiscard]] std::size_t edit_distance(std::string_view a, std::string_view b);
/// The candidate closest to `word` if it is close enough to be a likely typo, else "".
[[nodiscard]] std::string nearest(std::string_view word, const std::vector<std::string>& candidates);
/// "did you mean 'x'?" for the nearest candidate, or `otherwise` when none is near.
[[nodiscard]] std::string did_you_mean(std::string_view word,
                                       const std::vector<std::string>& candidates,
                                       std::string otherwise = {});

/// A user-given name for a message without quotes ("node rs1"): as it is when it is a short
/// printable word, else through shown() (quoted, escaped, bounded), so no message echoes
/// control bytes or a megabyte.
[[nodiscard]] std::string plain(std::string_view name);

[[nodiscard]] Pos pos_of(const toml::source_region& r);
/// The position of `n`, or `fallback` when it has none.
[[nodiscard]] Pos pos_or(const toml::node& n, Pos fallback);
/// "a string", "an integer" ...: a TOML value's type for messages.
[[nodiscard]] const char* type_name(const toml::node& n);
/// The position of the value at a toml++ path such as "nodes.rs1.routes[0].via", or
/// `fallback` when the path is absent or has no position.
[[nodiscard]] Pos pos_at(const toml::table& root, std::string_view path, Pos fallback);

/// TOML text to the model. Checks everything that one value or one table can show on its
/// own (types, unknown keys, names, address syntax, ranges); cross references are left to
/// validate_topology. Real servers named by `node` keep an unset address until then.
[[nodiscard]] Topology parse_tables(const toml::table& root, Reporter& r);
/// Cross checks on the parsed model (references, duplicates, addressing, the LVS rules),
/// filling in what depends on other objects (real server addresses by node, default
/// bridge port names, check targets by service).
void validate_topology(Topology& t, Reporter& r);

}  // namespace labctl::topo
