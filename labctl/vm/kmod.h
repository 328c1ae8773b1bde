// Reading a kernel's modules directory (the files depmod writes), enough to decide which
// modules an initramfs must insmod, and in which order, before the root is reachable.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "labctl/base/error.h"

namespace labctl {

/// A parsed modules.dep plus modules.builtin, keyed by module name ("9pnet_virtio").
struct ModuleIndex {
  std::map<std::string, std::string> path;               ///< name -> path relative to the dir
  std::map<std::string, std::vector<std::string>> deps;  ///< name -> names it needs
  std::set<std::string> builtin;                         ///< compiled into the kernel
};

/// Module name of a path such as "kernel/net/9p/9pnet_virtio.ko.xz" ("-" becomes "_").
[[nodiscard]] std::string module_name(const std::string& path);

/// Parses the text of modules.dep and modules.builtin.
[[nodiscard]] ModuleIndex parse_module_index(const std::string& modules_dep,
                                             const std::string& modules_builtin);

/// Reads DIR/modules.dep and DIR/modules.builtin (DIR = /lib/modules/VERSION).
[[nodiscard]] Result<ModuleIndex> read_module_index(const std::string& dir);

/// The modules to insmod, dependencies first, so that every one of `wanted` is available.
/// Built-in modules are left out; a module the kernel has neither way is an error.
[[nodiscard]] Result<std::vector<std::string>> load_order(const ModuleIndex& index,
                                                          const std::vector<std::string>& wanted);

}  // namespace labctl
