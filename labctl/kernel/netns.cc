#include "labctl/kernel/netns.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cerrno>
#include <filesystem>
#include <thread>

namespace labctl {
namespace {

// /run/netns must be a shared mount point so that bind mounts made under it propagate to
// other mount namespaces (iproute2 does the same in netns_add).
Status prepare_run_dir() {
  if (::mkdir(kNetnsRunDir, 0755) != 0 && errno != EEXIST)
    return fail_errno(std::string("create ") + kNetnsRunDir, errno);
  if (::mount("", kNetnsRunDir, "none", MS_SHARED | MS_REC, nullptr) == 0) return {};
  if (errno != EINVAL) return fail_errno(std::string("make ") + kNetnsRunDir + " shared", errno);
  // Not a mount point yet: bind it onto itself, then make it shared.
  if (::mount(kNetnsRunDir, kNetnsRunDir, "none", MS_BIND | MS_REC, nullptr) != 0)
    return fail_errno(std::string("bind-mount ") + kNetnsRunDir, errno);
  if (::mount("", kNetnsRunDir, "none", MS_SHARED | MS_REC, nullptr) != 0)
    return fail_errno(std::string("make ") + kNetnsRunDir + " shared", errno);
  return {};
}

// Runs fn on a new thread after `enter` (setns or unshare) succeeded on that thread.
Status on_thread(const std::function<Status()>& enter, const std::function<Status()>& fn) {
  Status result;
  std::thread t([&] {
    result = enter();
    if (result && fn) result = fn();
  });
  t.join();
  return result;
}

}  // namespace

std::string netns_path(const std::string& name) { return std::string(kNetnsRunDir) + "/" + name; }

namespace {
// The thread's own namespace, opened by its first guard, and how many guards are active.
struct ThreadHome {
  Fd fd;
  int depth = 0;
};
thread_local ThreadHome t_home;
}  // namespace

// Enters ns_fd, or (fresh) a new namespace made by unshare.
Result<NetnsGuard> NetnsGuard::leave_home(bool fresh, int ns_fd) {
  Fd nested;
  int home = -1;
  if (t_home.depth == 0) {
    if (!t_home.fd) t_home.fd = Fd(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!t_home.fd) return fail_errno("open this thread's network namespace", errno);
    home = t_home.fd.get();
  } else {
    nested = Fd(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!nested) return fail_errno("open this thread's network namespace", errno);
    home = nested.get();
  }
  if (fresh) {
    if (::unshare(CLONE_NEWNET) != 0) return fail_errno("unshare(CLONE_NEWNET)", errno);
  } else if (::setns(ns_fd, CLONE_NEWNET) != 0) {
    return fail_errno("setns", errno);
  }
  ++t_home.depth;
  return NetnsGuard(std::move(nested), home);
}

Result<NetnsGuard> NetnsGuard::enter(int ns_fd) { return leave_home(false, ns_fd); }

Result<NetnsGuard> NetnsGuard::enter_new() { return leave_home(true, -1); }

NetnsGuard::~NetnsGuard() {
  if (!active_) return;
  if (::setns(home_, CLONE_NEWNET) != 0) {
    std::perror("labctl: fatal: cannot return to the original network namespace");
    std::abort();
  }
  --t_home.depth;
}

Status with_netns(int ns_fd, const std::function<Status()>& fn) {
  TRY_ASSIGN(NetnsGuard guard, NetnsGuard::enter(ns_fd));
  return fn();
}

Status create_netns(const std::string& name, const std::function<Status()>& inside) {
  // Once per process (thread-safe static init): a mount(2) per namespace is measurable
  // when a lab has hundreds, and two threads must not both bind /run/netns onto itself.
  static const Status prepared = prepare_run_dir();
  TRY(prepared);
  const std::string path = netns_path(name);
  Fd placeholder(::open(path.c_str(), O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0));
  if (!placeholder) {
    int err = errno;
    return fail_errno("create " + path, err,
                      err == EEXIST ? "a namespace of that name exists already" : "");
  }
  placeholder.reset();
  Status st = [&]() -> Status {
    TRY_ASSIGN(NetnsGuard guard, NetnsGuard::enter_new());
    if (inside) TRY(inside());
    if (::mount("/proc/thread-self/ns/net", path.c_str(), "none", MS_BIND, nullptr) != 0)
      return fail_errno("bind-mount the new namespace on " + path, errno);
    return {};
  }();
  if (!st) {
    ::unlink(path.c_str());
    return tl::unexpected(std::move(st.error()).context("create namespace " + name));
  }
  return {};
}

Status delete_netns(const std::string& name) {
  const std::string path = netns_path(name);
  if (::umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT)
    return fail_errno("unmount " + path, errno);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return fail_errno("remove " + path, errno);
  return {};
}

Result<Fd> open_netns(const std::string& name) {
  const std::string path = netns_path(name);
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    int err = errno;
    return fail_errno("open namespace " + path, err,
                      err == ENOENT ? "no namespace of that name; is the lab up?" : "");
  }
  return fd;
}

std::vector<std::string> list_netns() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(kNetnsRunDir, ec))
    out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

Status run_in_netns(int ns_fd, const std::function<Status()>& fn) {
  return on_thread(
      [ns_fd] { return ::setns(ns_fd, CLONE_NEWNET) == 0 ? Status{} : fail_errno("setns", errno); },
      fn);
}

Status run_in_new_netns(const std::function<Status()>& fn) {
  return on_thread(
      [] { return ::unshare(CLONE_NEWNET) == 0 ? Status{} : fail_errno("unshare(CLONE_NEWNET)", errno); },
      fn);
}

}  // namespace labctl
