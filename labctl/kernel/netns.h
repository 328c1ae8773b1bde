// Named network namespaces compatible with iproute2: a bind mount of the namespace under
// /run/netns/<name>, so `ip netns exec <name> ...` and every other tool can enter it.
// setns(2) moves only the calling thread. Two ways to act inside a namespace:
//   with_netns    switches the calling thread in and back (NetnsGuard): cheap, for the
//                 executor, which runs on a thread of its own;
//   run_in_netns  runs on a fresh thread: the caller's thread never changes at all.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "labctl/base/error.h"
#include "labctl/base/fd.h"

namespace labctl {

inline constexpr const char* kNetnsRunDir = "/run/netns";

/// Path of a named namespace: "/run/netns/<name>".
[[nodiscard]] std::string netns_path(const std::string& name);

/// Enters a namespace for a scope and returns the thread to where it was when destroyed.
/// If the way back fails the process aborts: going on in the wrong namespace could touch
/// what is not ours. The outermost guard of a thread returns to the namespace the thread
/// was in when it first used a guard, kept open per thread (opening it for every guard
/// cost ~40 us, thousands of times per big lab); so a thread must not change namespace
/// by itself once it has used one.
class NetnsGuard {
 public:
  [[nodiscard]] static Result<NetnsGuard> enter(int ns_fd);
  /// Enters a brand-new anonymous namespace (unshare).
  [[nodiscard]] static Result<NetnsGuard> enter_new();
  NetnsGuard(NetnsGuard&& o) noexcept
      : nested_home_(std::move(o.nested_home_)), home_(o.home_), active_(o.active_) {
    o.active_ = false;
  }
  NetnsGuard& operator=(NetnsGuard&&) = delete;
  ~NetnsGuard();

 private:
  NetnsGuard(Fd nested_home, int home)
      : nested_home_(std::move(nested_home)), home_(home), active_(true) {}
  static Result<NetnsGuard> leave_home(bool fresh, int ns_fd);
  Fd nested_home_;  ///< Where a nested guard returns to (owned); unset for the outermost.
  int home_ = -1;   ///< The namespace to return to.
  bool active_ = false;
};

/// Runs fn inside the namespace on the calling thread, then switches back.
[[nodiscard]] Status with_netns(int ns_fd, const std::function<Status()>& fn);

/// Creates the named namespace (on the calling thread, which it returns to its namespace).
/// `inside`, if given, runs in the new namespace *before* it is published under /run/netns
/// (so a crash never leaves an unmarked namespace behind). EEXIST when the name is taken.
[[nodiscard]] Status create_netns(const std::string& name,
                                  const std::function<Status()>& inside = {});

/// Unmounts and removes /run/netns/<name>. A name that does not exist is not an error.
[[nodiscard]] Status delete_netns(const std::string& name);

/// Opens /run/netns/<name> (O_RDONLY|O_CLOEXEC).
[[nodiscard]] Result<Fd> open_netns(const std::string& name);

/// Names under /run/netns, sorted.
[[nodiscard]] std::vector<std::string> list_netns();

/// Runs `fn` on a fresh thread that has entered the namespace `ns_fd`; the caller's thread
/// is untouched. Returns fn's status (or why entering failed).
[[nodiscard]] Status run_in_netns(int ns_fd, const std::function<Status()>& fn);

/// Runs `fn` on a fresh thread inside a brand-new anonymous namespace (gone when the last
/// socket or fd into it closes). Handy for tests.
[[nodiscard]] Status run_in_new_netns(const std::function<Status()>& fn);

}  // namespace labctl
