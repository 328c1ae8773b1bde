// A topology as a picture: Graphviz DOT and Mermaid. Nodes show their role and addresses,
// switches are ellipses, links are edges labelled with interface names, and every IPVS
// service is drawn from its director to each real server, labelled with mode and scheduler.
#pragma once

#include <string>

#include "labctl/model/topology.h"

namespace labctl {

/// Graphviz source (`dot -Tsvg`); deterministic for a given topology.
[[nodiscard]] std::string render_dot(const Topology& t);
/// A Mermaid flowchart (renders on GitHub and in most Markdown viewers).
[[nodiscard]] std::string render_mermaid(const Topology& t);

}  // namespace labctl
