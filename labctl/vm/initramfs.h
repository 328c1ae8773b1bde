// The micro-VM's initramfs: busybox-static, the few modules needed to reach the host root
// over virtio-9p and put an overlay on it, and an /init script that runs the command the
// host left in the io share, then powers off. Built at run time and cached by content.
#pragma once

#include <string>
#include <vector>

#include "labctl/base/error.h"
#include "labctl/vm/guest_kernel.h"

namespace labctl {

/// 9p mount tags shared by the host side (qemu -virtfs) and the guest /init.
inline constexpr const char* kRootTag = "labctl_root";
inline constexpr const char* kIoTag = "labctl_io";
/// Where the io share appears inside the guest's root.
inline constexpr const char* kGuestIoDir = "/run/labctl-vm";

/// Modules the initramfs itself needs (their dependencies are added from modules.dep).
inline const std::vector<std::string> kEarlyModules = {"virtio_pci", "9pnet_virtio", "9p",
                                                        "overlay"};

struct InitConfig {
  std::string version;                     ///< kernel version: /lib/modules/VERSION
  std::string modules_dir;                 ///< that tree's path on the (shared) host root
  std::vector<std::string> insmod;         ///< early modules, load order
  std::string modprobe = "/sbin/modprobe"; ///< modprobe inside the shared root
  std::vector<std::string> preload;        ///< modules to modprobe before the command
};

/// The /init script (busybox sh) for `config`.
[[nodiscard]] std::string init_script(const InitConfig& config);

/// The helper the kernel runs for module autoloading: modprobe, but inside the chroot.
[[nodiscard]] std::string modprobe_wrapper(const InitConfig& config);

/// `s` as one single-quoted shell word ('it'\''s').
[[nodiscard]] std::string shell_quote(const std::string& s);

/// Builds (or finds in the cache) the initramfs for `kernel` and returns its path. A cached
/// image is used only when its bytes are the ones just built; a new one is written with
/// mkstemp + rename. `busybox` must be a static binary (package busybox-static);
/// `cache_dir` empty: vm_cache_dir().
[[nodiscard]] Result<std::string> prepare_initramfs(const VmKernel& kernel,
                                                    const std::vector<std::string>& preload,
                                                    const std::string& busybox = "/bin/busybox",
                                                    const std::string& cache_dir = "");

/// Ok when `path` is a statically linked ELF program (busybox-static).
[[nodiscard]] Status check_static_busybox(const std::string& path);

/// Directory for cached initramfs images: /var/cache/labctl/vm, else ~/.cache/labctl/vm.
[[nodiscard]] Result<std::string> vm_cache_dir();

}  // namespace labctl
