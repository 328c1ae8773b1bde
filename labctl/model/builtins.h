// Topologies compiled into the binary (from topologies/*.toml at build time).
#pragma once

#include <string_view>
#include <vector>

namespace labctl {

struct BuiltinTopology {
  std::string_view name;  ///< File stem, e.g. "dr-demo".
  std::string_view text;  ///< The TOML source.
};

[[nodiscard]] const std::vector<BuiltinTopology>& builtin_topologies();
[[nodiscard]] const BuiltinTopology* find_builtin(std::string_view name);

}  // namespace labctl
