// Helpers shared by host-tier tests.
#pragma once

#include <unistd.h>

#include <random>
#include <string>

#include <gtest/gtest.h>

/// Skips the test, with a reason, when not running as root.
#define LABCTL_REQUIRE_ROOT()                                                  \
  do {                                                                        \
    if (::geteuid() != 0) GTEST_SKIP() << "host tier needs root (CAP_NET_ADMIN, mounts)"; \
  } while (0)

namespace labctl::test {

/// A name unlikely to collide with anything else on the machine: "<prefix>-<pid>-<rand>".
inline std::string unique_name(const std::string& prefix) {
  static std::mt19937 rng{std::random_device{}()};
  return prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(rng() % 100000);
}

}  // namespace labctl::test
