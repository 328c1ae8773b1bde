// A pre-scan of TOML text for nesting that is too deep to hand to toml++. toml++ parses
// dotted keys, inline tables and arrays by recursion, so a key of 50,000 parts (one 100 KB
// line) or a few thousand nested brackets overflow the stack. This scan is iterative and
// cheap (one pass, no allocation beyond a stack of at most kMaxDepth frames) and stops at
// the first construct that passes the limit, before toml++ sees the text.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "labctl/model/topology.h"

namespace labctl::topo {

struct DepthError {
  Pos pos;              ///< Where the key or the bracket that goes too deep starts.
  std::string message;  ///< Says what is too deep and the limit.
};

/// The first place where `text` nests deeper than kMaxDepth (rules.h), counting every level
/// of the resulting tree: table header parts, dotted key parts, inline tables and arrays.
/// nullopt when it does not. Text that is not valid TOML is scanned as well as it can be;
/// toml++ reports the syntax error later.
[[nodiscard]] std::optional<DepthError> too_deep(std::string_view text);

}  // namespace labctl::topo
