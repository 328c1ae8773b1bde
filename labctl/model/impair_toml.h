// The loader's reader of an interface's `impair` table (model/impair.h has the keys): each
// value checked on its own and the rules between keys, every problem reported at the
// position of the value (or key) at fault, with the accepted forms in the hint.
#pragma once

#include <toml++/toml.h>

#include <optional>
#include <string>

#include "labctl/model/diag.h"
#include "labctl/model/impair.h"

namespace labctl::topo {

/// Reads `n`, the value of an `impair` key, for the object `where` names ("interface
/// rs1:eth0"); `fallback` is the position to blame when a value has none. nullopt when
/// anything is wrong (all of it reported to `r`) or the table is empty (a warning).
[[nodiscard]] std::optional<Impairment> parse_impairment(const toml::node& n,
                                                         const std::string& where, Reporter& r,
                                                         Pos fallback);

}  // namespace labctl::topo
