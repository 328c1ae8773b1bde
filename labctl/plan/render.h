// A plan shown as text and data: the runnable bash script of `up --dry-run`, its teardown,
// and --json. Pure: values in, text out. (explain.h renders the per-node walk-through.)
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "labctl/plan/plan.h"
#include "labctl/model/topology.h"

namespace labctl {

/// A bash script that builds the lab when run as root (one command per step, whys as
/// comments); it stops at the first failing command.
[[nodiscard]] std::string render_script(const Plan& p);
/// The matching teardown: stops the agents, then deletes the namespaces (everything else
/// lives in them). Runs every command even when one fails; exits 1 if any did.
[[nodiscard]] std::string render_down_script(const Plan& p);
/// Every step as data: type, ns, node, fields, shell, undo, why.
[[nodiscard]] nlohmann::json plan_json(const Plan& p);
/// The same document written step by step, one step per line, never the whole tree in
/// memory at once (a 1000-node chain has 16,000 steps).
void write_plan_json(std::ostream& out, const Plan& p);

/// Splits `text` into lines of at most `width` characters at spaces (longer words stay whole).
[[nodiscard]] std::vector<std::string> wrap_words(const std::string& text, std::size_t width);

}  // namespace labctl
