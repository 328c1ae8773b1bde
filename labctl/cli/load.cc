#include "labctl/cli/load.h"

#include <cstdio>

#include "labctl/cli/command.h"

namespace labctl::cli {

void print_diagnostics_or_die(const LoadResult& r) {
  for (const auto& d : r.diagnostics) std::fprintf(stderr, "%s\n", format_diagnostic(d).c_str());
  if (!r.ok()) throw ExitError{kExitInvalid, {}};
}

Topology load_or_die(const std::string& name_or_path) {
  LoadResult r = load_topology(name_or_path);
  print_diagnostics_or_die(r);
  return std::move(*r.topology);
}

}  // namespace labctl::cli
