#include "labctl/vm/kmod.h"

#include <algorithm>
#include <fstream>
#include <functional>
#include <sstream>

namespace labctl {
namespace {

Result<std::string> slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail_errno("read " + path, errno);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

std::string module_name(const std::string& path) {
  std::string base = path.substr(path.find_last_of('/') + 1);
  base = base.substr(0, base.find(".ko"));
  std::replace(base.begin(), base.end(), '-', '_');
  return base;
}

ModuleIndex parse_module_index(const std::string& modules_dep, const std::string& modules_builtin) {
  ModuleIndex index;
  std::istringstream dep(modules_dep);
  for (std::string line; std::getline(dep, line);) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string file = line.substr(0, colon);
    std::string name = module_name(file);
    index.path[name] = file;
    std::istringstream rest(line.substr(colon + 1));
    auto& d = index.deps[name];
    for (std::string f; rest >> f;) d.push_back(module_name(f));
  }
  std::istringstream builtin(modules_builtin);
  for (std::string line; std::getline(builtin, line);)
    if (!line.empty()) index.builtin.insert(module_name(line));
  return index;
}

Result<ModuleIndex> read_module_index(const std::string& dir) {
  auto dep = slurp(dir + "/modules.dep");
  if (!dep) {
    Error e = dep.error();
    e.context("modules directory " + dir);
    e.hint = "run `depmod -b ROOT VERSION` on the unpacked kernel (scripts/fetch-vm-kernel.sh does)";
    return tl::unexpected(e);
  }
  // Kernels built without modules.builtin support simply have nothing built in listed.
  std::string builtin = slurp(dir + "/modules.builtin").value_or("");
  return parse_module_index(*dep, builtin);
}

Result<std::vector<std::string>> load_order(const ModuleIndex& index,
                                            const std::vector<std::string>& wanted) {
  std::vector<std::string> order;
  std::set<std::string> seen;
  std::string missing;
  // Depth-first, dependencies before dependents: the order insmod needs.
  std::function<void(const std::string&)> visit = [&](const std::string& name) {
    if (!seen.insert(name).second) return;
    if (index.builtin.count(name)) return;
    auto deps = index.deps.find(name);
    if (deps == index.deps.end()) {
      missing += (missing.empty() ? "" : ", ") + name;
      return;
    }
    for (const auto& d : deps->second) visit(d);
    order.push_back(name);
  };
  for (const auto& w : wanted) visit(w);
  if (!missing.empty())
    return fail("kernel has neither a module nor built-in support for: " + missing,
                "use a kernel with virtio-pci, 9p over virtio and overlayfs (Debian's "
                "linux-image-amd64 has them: scripts/fetch-vm-kernel.sh)");
  return order;
}

}  // namespace labctl
