#include "labctl/model/load.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "labctl/model/builtins.h"
#include "labctl/model/diag.h"

namespace labctl {

LoadResult parse_topology(std::string_view text, const std::string& file) {
  topo::Reporter r(file);
  LoadResult out;
  toml::table root;
  try {
    root = toml::parse(text, file);
  } catch (const toml::parse_error& e) {
    r.error(topo::pos_of(e.source()), std::string(e.description()));
    out.diagnostics = r.take();
    return out;
  }
  Topology t = topo::parse_tables(root, r);
  t.source = file;
  topo::validate_topology(t, root, r);
  if (!r.has_errors()) out.topology = std::move(t);
  out.diagnostics = r.take();
  return out;
}

static bool looks_like_path(const std::string& s) {
  struct stat st {};
  return s.find('/') != std::string::npos ||
         (s.size() > 5 && s.compare(s.size() - 5, 5, ".toml") == 0) ||
         ::stat(s.c_str(), &st) == 0;
}

static LoadResult single_error(const std::string& file, std::string message, std::string hint) {
  LoadResult out;
  out.diagnostics.push_back(
      {Diagnostic::Severity::Error, file, 0, 0, std::move(message), std::move(hint)});
  return out;
}

LoadResult load_topology(const std::string& name_or_path) {
  if (!looks_like_path(name_or_path)) {
    const BuiltinTopology* b = find_builtin(name_or_path);
    if (!b) {
      std::vector<std::string> names;
      for (const auto& x : builtin_topologies()) names.emplace_back(x.name);
      return single_error(name_or_path, "no built-in topology and no file named '" + name_or_path + "'",
                          topo::did_you_mean(name_or_path, names,
                                             "`labctl list` shows the built-in topologies"));
    }
    LoadResult res = parse_topology(b->text, std::string(b->name) + ".toml");
    if (res.topology) res.topology->source = "builtin:" + std::string(b->name);
    return res;
  }
  std::ifstream in(name_or_path, std::ios::binary);
  if (!in)
    return single_error(name_or_path, "cannot open topology file: " + std::string(std::strerror(errno)),
                        "check the path, or give a built-in name (see `labctl list`)");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_topology(text.str(), name_or_path);
}

}  // namespace labctl
