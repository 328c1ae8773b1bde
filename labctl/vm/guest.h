// A persistent micro-VM that hosts one lab: qemu detached from labctl (its own session, no
// parent-death signal), booted over the host root like `labctl vm exec`, whose init runs
// `labctl vm serve` on kRelayPorts virtio-serial ports; each port is a unix socket in the
// guest's host folder. Everything of the guest lives in that folder (DIR):
//   DIR/vm.json        pid, kernel, ports (written right after qemu starts)
//   DIR/portN.sock     qemu's end of port labctl.N; DIR/portN.lock claimed by a client
//   DIR/io/            the 9p share: cmd.sh, serve's stdout/stderr, ready
//   DIR/console.log    the guest console; DIR/qemu.log qemu's own output
// A qemu is recognized as DIR's only by the pid vm.json records (running_guest checks it
// still is that qemu). See docs/vm.md.
#pragma once

#include <sys/types.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "labctl/base/error.h"
#include "labctl/base/fd.h"
#include "labctl/vm/guest_kernel.h"
#include "labctl/vm/relay.h"

namespace labctl {

inline constexpr int kRelayPorts = 4;

struct GuestOptions {
  std::string dir;                ///< the guest's host folder (created here; must not exist)
  std::string name;               ///< qemu -name, e.g. "labctl-lab-dr-demo"
  std::string self_exe;           ///< the labctl the guest runs (same path in the guest)
  std::vector<std::string> env;   ///< environment of `labctl vm serve` (PATH ...)
  KernelQuery kernel;
  int memory_mib = 1024;
  bool kvm = false;
  int boot_timeout_s = 120;
  std::string qemu;               ///< empty: qemu-system-x86_64 from PATH
  /// Called about every second while the guest boots, with the seconds elapsed.
  std::function<void(double)> progress;
};

struct GuestInfo {
  pid_t pid = 0;
  std::string qemu;  ///< the qemu binary, resolved (what /proc/PID/exe shows)
  std::string kernel_version;
  std::string dir;
  double boot_s = 0;
};

/// Boots the guest and returns once its relay answers. On failure, timeout (ETIMEDOUT) or
/// SIGINT/SIGTERM/SIGHUP (EINTR) qemu is killed; the caller removes `dir`.
[[nodiscard]] Result<GuestInfo> boot_guest(const GuestOptions& o);

/// The guest recorded in `dir` (vm.json).
[[nodiscard]] Result<GuestInfo> read_guest_info(const std::string& dir);

/// The guest's qemu while it runs, held by a pidfd.
struct GuestProcess {
  pid_t pid = 0;
  Fd pidfd;
};

/// The qemu recorded in DIR/vm.json, if that process still runs and still is it: owned by
/// us (every uid is our euid), running the qemu binary recorded there, naming DIR's relay
/// socket on its command line. Nothing else counts, so no other user's process can pass
/// for a lab's guest (a look-alike command line is not enough).
[[nodiscard]] std::optional<GuestProcess> running_guest(const std::string& dir);

/// Stops the guest of `dir` (running_guest): SIGTERM, then SIGKILL after `grace_ms`.
/// Returns whether there was one; afterwards running_guest(dir) is empty unless it could
/// not be killed.
bool stop_guest(const std::string& dir, int grace_ms = 3000);

/// The relay ports of the guest in `dir`.
[[nodiscard]] std::vector<RelayPort> guest_ports(const std::string& dir);

/// The last `n` lines of the guest's console and serve's stderr (for error messages).
[[nodiscard]] std::string guest_log_tail(const std::string& dir, size_t n = 15);

}  // namespace labctl
