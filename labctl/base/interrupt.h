// Ctrl-C (SIGINT), SIGTERM and SIGHUP as a flag for as long as the guard lives, for work that
// stops cleanly on its own terms: `up` rolls back instead of dying half-way, capture flushes
// its pcap file, trace reports. The handler only sets the flag; the worker looks at it.
#pragma once

#include <signal.h>

#include <atomic>

namespace labctl {

class InterruptGuard {
 public:
  /// Clears the flag and installs the handler; the destructor puts the old handlers back.
  InterruptGuard();
  ~InterruptGuard();
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

  /// True once one of the signals arrived while the guard lived.
  [[nodiscard]] const std::atomic<bool>* flag() const;

 private:
  static constexpr int kSignals[3] = {SIGINT, SIGTERM, SIGHUP};
  struct sigaction old_[3]{};
};

}  // namespace labctl
