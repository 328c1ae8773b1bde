// `labctl vm exec`: runs a command as root in a throwaway QEMU guest that boots a kernel
// with IPVS and IPIP over the host's own root file system (read-only 9p + tmpfs overlay).
// Output streams back live through files in a writable 9p share that labctl tails; the
// exit status comes back in a file of that share. See docs/vm.md.
#pragma once

#include <fcntl.h>

#include <string>
#include <vector>

#include "labctl/base/error.h"
#include "labctl/base/fd.h"
#include "labctl/vm/guest_kernel.h"

namespace labctl {

struct VmOptions {
  std::vector<std::string> argv;  ///< the command; argv[0] is looked up in the guest's PATH
  std::string cwd;                ///< runs there (the same path exists in the guest)
  std::vector<std::string> env;   ///< "NAME=value" entries exported to the command
  KernelQuery kernel;
  int timeout_s = 0;              ///< 0: no limit
  int memory_mib = 1024;
  bool kvm = false;               ///< -enable-kvm (hangs on some hosts, so opt-in)
  bool verbose = false;           ///< copy the guest console (kernel log) to stderr
  /// modprobe'd before the command runs. lblc and lblcr register per-namespace state on
  /// load, and loading them on demand can deadlock against a dying namespace (see
  /// probe_ipvs in kernel/features.h); loaded up front they cannot.
  std::vector<std::string> preload = {"ip_vs", "ip_vs_lblc", "ip_vs_lblcr"};
  std::string qemu;               ///< empty: qemu-system-x86_64 from PATH
};

/// What qemu needs to boot one guest; the pure input of qemu_argv().
struct QemuConfig {
  std::string qemu;
  std::string kernel_image;
  std::string initramfs;
  std::string io_dir;      ///< host side of the writable share
  std::string console_log; ///< the guest's serial console goes here
  int memory_mib = 1024;
  bool kvm = false;
  bool verbose = false;
};

/// The qemu command line for `c` (no shell involved; commas in paths are escaped).
[[nodiscard]] std::vector<std::string> qemu_argv(const QemuConfig& c);

/// The script the guest's /bin/sh runs: exports `env`, enters `cwd`, execs `argv`. Every
/// value (the cwd in its error message too) is single-quoted, so spaces, quotes and
/// newlines survive and nothing in them runs.
[[nodiscard]] std::string command_script(const std::vector<std::string>& argv,
                                         const std::string& cwd,
                                         const std::vector<std::string>& env);

/// Paths the guest replaces with fresh file systems: a cwd under them does not exist there.
[[nodiscard]] bool hidden_in_guest(const std::string& path);

/// Finds `name` in $PATH (or returns it when it contains a slash and is executable).
[[nodiscard]] std::string find_program(const std::string& name);

/// `s` as a qemu option value: its syntax splits on commas, so a literal comma is doubled.
[[nodiscard]] std::string qemu_escape(const std::string& s);
/// The last `n` lines of `text`, each on a line of its own as "\n  PREFIXline" (for errors).
[[nodiscard]] std::string last_lines(const std::string& text, size_t n, const std::string& prefix);

/// The folder of one `labctl vm exec` run, the host side of the guest's writable share:
/// made private (0700) by mkdtemp in $TMPDIR, with cmd.sh and the files the guest writes to
/// (kWorkFiles) each created new in it (O_EXCL|O_NOFOLLOW, 0600). No other user can read
/// cmd.sh (it carries the caller's environment), replace it, plant a symlink labctl would
/// write through, or forge the exit status. Removed with everything in it on destruction.
class VmWorkDir {
 public:
  /// cmd.sh, the command's output, the guest console and qemu's own output.
  static constexpr const char* kWorkFiles[] = {"cmd.sh", "stdout", "stderr", "console.log",
                                               "qemu.log"};
  /// Makes the folder in $TMPDIR (default /tmp) with `script` as cmd.sh.
  [[nodiscard]] static Result<VmWorkDir> create(const std::string& script);
  VmWorkDir(VmWorkDir&& o) noexcept;
  VmWorkDir(const VmWorkDir&) = delete;
  VmWorkDir& operator=(const VmWorkDir&) = delete;
  VmWorkDir& operator=(VmWorkDir&&) = delete;
  ~VmWorkDir();
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] std::string operator/(const std::string& name) const { return path_ + "/" + name; }
  /// NAME in the folder opened for reading (never through a symlink); invalid when absent.
  [[nodiscard]] Fd open(const std::string& name, int flags = O_RDONLY) const;
  /// NAME's bytes when it is a regular file of at most `max` bytes, else "".
  [[nodiscard]] std::string read(const std::string& name, size_t max) const;

 private:
  VmWorkDir(std::string path, Fd fd) : path_(std::move(path)), fd_(std::move(fd)) {}
  std::string path_;
  Fd fd_;
};

/// Boots the guest, runs the command with its output passed through, powers off. Returns
/// the command's exit status. ETIMEDOUT when the timeout hit, EINTR when labctl got
/// SIGINT/SIGTERM/SIGHUP (the guest is killed in both cases).
[[nodiscard]] Result<int> vm_exec(const VmOptions& options);

}  // namespace labctl
