#include "labctl/kernel/sysctl.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>

#include "labctl/base/fd.h"

namespace labctl {
namespace {

// Collapses whitespace so "1024 65000" matches the kernel's "1024\t65000".
std::string trim(const std::string& s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (c == ' ' || c == '\t' || c == '\n') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

std::string missing_key_hint(const std::string& key) {
  if (key.rfind("net.ipv4.vs.", 0) == 0)
    return "net.ipv4.vs.* exists only where IPVS is available (CONFIG_IP_VS); run the lab in "
           "the micro-VM: labctl vm exec -- labctl up LAB";
  if (key.find(".conf.") != std::string::npos)
    return "per-interface keys need the interface to exist in that node; check the interface "
           "name in the key";
  return "check the spelling; `sysctl -a | grep " + key.substr(key.rfind('.') + 1) +
         "` lists similar keys";
}

// A new procfs instance, as a mount fd attached nowhere; -1 (errno set) where refused.
int private_procfs() {
  Fd fs(::fsopen("proc", FSOPEN_CLOEXEC));
  if (!fs) return -1;
  if (::fsconfig(fs.get(), FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) return -1;
  return ::fsmount(fs.get(), FSMOUNT_CLOEXEC, 0);
}

}  // namespace

Result<std::string> sysctl_path(const std::string& key) {
  if (key.rfind("net.", 0) != 0)
    return fail("sysctl key '" + key + "' is not a net.* key",
                "labs may only set network sysctls, which are per namespace");
  std::string path = "/proc/sys/";
  size_t start = 0;
  while (start <= key.size()) {
    size_t dot = key.find('.', start);
    std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (part.empty() || part == ".." || part.find('/') != std::string::npos)
      return fail("sysctl key '" + key + "' is malformed");
    path += part;
    if (dot == std::string::npos) break;
    path += '/';
    start = dot + 1;
  }
  return path;
}

int SysctlFs::open(const std::string& path, int flags) {
  constexpr std::string_view proc = "/proc/";
  if (proc_opens_ < kProcOpensFirst || path.rfind(proc, 0) != 0) {
    ++proc_opens_;
    return ::open(path.c_str(), flags);
  }
  if (!use_proc_ && (!mnt_ || opens_ >= kOpensPerInstance)) {
    mnt_.reset();  // drops the old instance and its dentries
    mnt_ = Fd(private_procfs());
    opens_ = 0;
    use_proc_ = !mnt_;
  }
  if (use_proc_) return ::open(path.c_str(), flags);
  ++opens_;
  int fd = ::openat(mnt_.get(), path.c_str() + proc.size(), flags);
  if (fd >= 0 || errno == ENOENT) return fd;
  // Refused through our instance (a security module, say) but perhaps not through /proc.
  use_proc_ = true;
  mnt_.reset();
  return ::open(path.c_str(), flags);
}

Result<std::string> read_sysctl(const std::string& key) {
  TRY_ASSIGN(std::string path, sysctl_path(key));
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    int err = errno;
    return fail_errno("read sysctl " + key, err, err == ENOENT ? missing_key_hint(key) : "");
  }
  char buf[256];
  ssize_t n = ::read(fd.get(), buf, sizeof buf - 1);
  if (n < 0) return fail_errno("read sysctl " + key, errno);
  return trim(std::string(buf, static_cast<size_t>(n)));
}

Status write_sysctl(const std::string& key, const std::string& value, SysctlFs* fs) {
  TRY_ASSIGN(std::string path, sysctl_path(key));
  // One open for the write and the read-back (see SysctlFs for what an open costs).
  Fd fd(fs ? fs->open(path, O_RDWR | O_CLOEXEC) : ::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) {
    int err = errno;
    if (err == ENOENT)
      return fail_errno("sysctl " + key + " does not exist in this kernel", err,
                        missing_key_hint(key));
    return fail_errno("open sysctl " + key, err);
  }
  const std::string text = value + "\n";
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    int err = errno;
    return fail_errno("set sysctl " + key + "=" + value, err,
                      err == EINVAL ? "the kernel rejected the value; check its range" : "");
  }
  char buf[256];
  ssize_t n = ::pread(fd.get(), buf, sizeof buf - 1, 0);
  if (n < 0) return fail_errno("read back sysctl " + key, errno);
  const std::string now = trim(std::string(buf, static_cast<size_t>(n)));
  if (now != trim(value))
    return fail("set sysctl " + key + "=" + value + ": the kernel kept '" + now + "'");
  return {};
}

}  // namespace labctl
