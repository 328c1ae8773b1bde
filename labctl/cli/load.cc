#include "labctl/cli/load.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "labctl/cli/command.h"
#include "labctl/lab/state.h"

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

Topology running_or_load_or_die(const std::string& arg) {
  const std::string kept = check_lab_name(arg) ? state_dir(arg) + "/topology.toml" : "";
  if (!kept.empty() && std::filesystem::exists(kept)) {
    std::ifstream in(kept);
    std::stringstream ss;
    ss << in.rdbuf();
    LoadResult r = parse_topology(ss.str(), kept);
    print_diagnostics_or_die(r);
    return std::move(*r.topology);
  }
  return load_or_die(arg);
}

}  // namespace labctl::cli
