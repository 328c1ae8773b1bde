#include "labctl/cli/load.h"

#include <cstdio>
#include <filesystem>

#include "labctl/base/file.h"
#include "labctl/cli/command.h"
#include "labctl/lab/ipvs_edit.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/lab/multihost.h"
#include "labctl/lab/state.h"

namespace labctl::cli {

void print_diagnostics_or_die(const LoadResult& r) {
  // An exercise's warnings name what is broken on purpose: they would give the answer away.
  const bool exercise = r.ok() && r.topology->exercise;
  size_t held = 0;
  for (const auto& d : r.diagnostics) {
    if (exercise && d.severity == Diagnostic::Severity::Warning) {
      ++held;
      continue;
    }
    std::fprintf(stderr, "%s\n", format_diagnostic(d).c_str());
  }
  if (held) {
    std::string src = r.topology->source;
    if (src.rfind("builtin:", 0) == 0) src = src.substr(8);
    // A running lab's kept copy: the built-in or file it came from goes by the lab's name.
    if (src == state_dir(r.topology->name) + "/topology.toml") src = r.topology->name;
    std::fprintf(stderr, "note: %s is an exercise: %zu warning%s about it held back, since they would give "
                         "the answer away (`labctl validate %s` shows them)\n",
                 r.topology->name.c_str(), held, held == 1 ? "" : "s", src.c_str());
  }
  if (!r.ok()) throw ExitError{kExitInvalid, {}};
}

Topology load_or_die(const std::string& name_or_path, std::string* text) {
  LoadResult r = load_topology(name_or_path);
  print_diagnostics_or_die(r);
  if (text) *text = std::move(r.text);
  return std::move(*r.topology);
}

Topology running_or_load_or_die(const std::string& arg) {
  std::string kept = check_lab_name(arg) ? state_dir(arg) + "/topology.toml" : "";
  // A lab across hosts brought up from here without a part here: the controller's copy.
  if (!kept.empty() && !std::filesystem::exists(kept) && std::filesystem::exists(controller_topology_path(arg)))
    kept = controller_topology_path(arg);
  if (!kept.empty() && std::filesystem::exists(kept)) {
    LoadResult r = parse_topology(read_text(kept), kept);
    print_diagnostics_or_die(r);
    // Live edits (labctl ipvs LAB set-weight ...) changed the lab after it was built.
    for (const auto& why : apply_recorded_ipvs_edits(*r.topology))
      std::fprintf(stderr, "labctl: warning: a recorded IPVS edit no longer applies: %s\n", why.c_str());
    return std::move(*r.topology);
  }
  return load_or_die(arg);
}

Topology running_lab_or_die(const std::string& lab) {
  if (Status st = check_lab_name(lab); !st) die(st.error(), kExitInvalid);
  if (Status st = check_privileges(); !st) die(st.error());
  if (lab_namespaces(lab).empty())
    die(Error{"lab " + lab + " is not up", 0, {}, "`labctl ls` lists running labs"});
  return running_or_load_or_die(lab);
}

}  // namespace labctl::cli
