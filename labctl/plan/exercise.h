// Exercises: labs broken on purpose (Topology::exercise, topologies/exercises/). What a
// student is shown instead of the plan, since the plan would give the answer away.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "labctl/model/topology.h"

namespace labctl {

/// `labctl explain` of an exercise: the task, where to look, the nodes and their roles, and
/// how to work on it. Says nothing of what is broken.
[[nodiscard]] std::string render_exercise(const Topology& t);
/// The same as data: {"name", "description", "task", "look_at", "members"}.
[[nodiscard]] nlohmann::json exercise_json(const Topology& t);
/// The line `up` and `check` print for an exercise (empty for other labs).
[[nodiscard]] std::string exercise_banner(const Topology& t);
/// What `check` says when every check of an exercise passed: it is repaired, and how to
/// leave exercise mode (empty for other labs, and while a check fails).
[[nodiscard]] std::string exercise_repaired(const Topology& t, bool all_passed);

}  // namespace labctl
