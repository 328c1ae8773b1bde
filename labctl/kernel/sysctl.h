// Network sysctls, applied from inside a namespace: writes under /proc/sys/net act on the
// network namespace of the thread that opens the file, so call these from a thread that
// has entered the node's namespace (see run_in_netns).
#pragma once

#include <string>

#include "labctl/base/error.h"
#include "labctl/base/fd.h"

namespace labctl {

/// "net.ipv4.conf.all.arp_ignore" -> "/proc/sys/net/ipv4/conf/all/arp_ignore".
/// Only net.* keys are accepted; "..", "/" and empty parts are rejected.
[[nodiscard]] Result<std::string> sysctl_path(const std::string& key);

/// Where sysctl files are opened: a procfs instance of labctl's own, mounted nowhere
/// (fsopen/fsmount), or /proc where the kernel refuses one (no fsopen, a seccomp filter).
///
/// Why: the kernel keeps a dentry per namespace for each /proc/sys/net name looked up, all
/// in one hash chain under /proc/sys/net, and every open compares against each of them
/// under a global lock: 0.3-0.5 ms per open once 2000 namespaces have used /proc/sys. A
/// private instance holds only the dentries of lookups made through it, and is replaced
/// every kOpensPerInstance opens, so an open stays cheap however many namespaces exist;
/// closing it drops its dentries. Making and dropping one costs ~0.1 ms, so the first
/// kProcOpensFirst opens go through /proc: a small lab never pays for an instance.
/// One per thread (not thread-safe).
class SysctlFs {
 public:
  static constexpr int kOpensPerInstance = 32;
  static constexpr int kProcOpensFirst = 64;
  /// Opens the file behind an absolute sysctl path ("/proc/sys/net/...").
  [[nodiscard]] int open(const std::string& path, int flags);

 private:
  Fd mnt_;
  int opens_ = 0;
  int proc_opens_ = 0;
  bool use_proc_ = false;  // the kernel refused a private instance once: stop asking
};

/// Writes value, reads it back and fails if the kernel kept something else.
/// A key this kernel does not have is an error naming the key. Opens through fs when given.
[[nodiscard]] Status write_sysctl(const std::string& key, const std::string& value,
                                  SysctlFs* fs = nullptr);

[[nodiscard]] Result<std::string> read_sysctl(const std::string& key);

}  // namespace labctl
