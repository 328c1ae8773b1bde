// Ctrl-C (SIGINT), SIGTERM and SIGHUP as a flag for as long as the guard lives, for commands
// that stop cleanly on their own terms (capture flushes its pcap file, trace reports).
#pragma once

#include <signal.h>

#include <atomic>

namespace labctl::cli {

inline std::atomic<bool> g_interrupt_flag{false};

class InterruptFlag {
 public:
  InterruptFlag() {
    g_interrupt_flag = false;
    struct sigaction sa{};
    sa.sa_handler = [](int) { g_interrupt_flag = true; };
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 3; ++i) ::sigaction(kSignals[i], &sa, &old_[i]);
  }
  ~InterruptFlag() {
    for (int i = 0; i < 3; ++i) ::sigaction(kSignals[i], &old_[i], nullptr);
  }
  InterruptFlag(const InterruptFlag&) = delete;
  InterruptFlag& operator=(const InterruptFlag&) = delete;
  [[nodiscard]] const std::atomic<bool>* flag() const { return &g_interrupt_flag; }

 private:
  static constexpr int kSignals[3] = {SIGINT, SIGTERM, SIGHUP};
  struct sigaction old_[3]{};
};

}  // namespace labctl::cli
