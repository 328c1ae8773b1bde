// Which kernel the micro-VM boots: an explicit --kernel/--modules, the LABCTL_VM_KERNEL /
// LABCTL_VM_MODULES environment, or the newest kernel scripts/fetch-vm-kernel.sh cached.
#pragma once

#include <optional>
#include <string>

#include "labctl/base/error.h"

namespace labctl {

inline constexpr const char* kKernelCacheDir = "/var/cache/labctl/kernel";

struct VmKernel {
  std::string image;    ///< bzImage (vmlinuz) path
  std::string modules;  ///< the /lib/modules/VERSION tree of that kernel
  std::string version;  ///< e.g. "6.1.0-56-amd64"
};

/// Where to look; every field empty/unset means "not given".
struct KernelQuery {
  std::string image;             ///< --kernel
  std::string modules;           ///< --modules
  std::string env_image;         ///< $LABCTL_VM_KERNEL
  std::string env_modules;       ///< $LABCTL_VM_MODULES
  std::string cache_dir = kKernelCacheDir;
};

/// The query filled from the environment (LABCTL_VM_KERNEL, LABCTL_VM_MODULES).
[[nodiscard]] KernelQuery kernel_query_from_env();

/// The version string a bzImage carries in its setup header ("6.1.0-56-amd64 (...) #1 ...")
/// up to the first space; an error when the file is not a bzImage.
[[nodiscard]] Result<std::string> kernel_image_version(const std::string& image);

/// Resolves the kernel: explicit options, then environment, then the cache. The modules
/// directory, when not given, is inferred from the version: IMAGE_DIR/../lib/modules/V,
/// then /lib/modules/V. Errors say how to get a kernel.
[[nodiscard]] Result<VmKernel> resolve_vm_kernel(const KernelQuery& query);

}  // namespace labctl
