#include "labctl/model/builtins.h"

namespace labctl {

const BuiltinTopology* find_builtin(std::string_view name) {
  for (const auto& b : builtin_topologies())
    if (b.name == name) return &b;
  return nullptr;
}

}  // namespace labctl
