// Helpers shared by host-tier tests.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
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

/// True while pid runs (a zombie waiting for init to reap it does not count).
inline bool alive(pid_t pid) {
  FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
  if (!f) return false;
  char buf[512] = {};
  size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  std::string s(buf, n);
  auto paren = s.rfind(')');
  return paren != std::string::npos && paren + 2 < s.size() && s[paren + 2] != 'Z';
}

/// A check for the routed fixture that needs no IPVS: the client reaches the server's port 80.
inline constexpr const char* kRoutedReachCheck =
    "\n[checks.server-reachable]\nkind = \"reach\"\nfrom = \"client\"\nto = \"10.72.2.10\"\nport = 80\n";

/// The routed host fixture (tests/data/host/routed.toml: client -- router -- server, an
/// http agent on the server, no IPVS) under the name `lab`.
inline std::string routed_lab(const std::string& lab) {
  std::ifstream in(LABCTL_TEST_DATA "/host/routed.toml");
  std::stringstream ss;
  ss << in.rdbuf();
  return std::regex_replace(ss.str(), std::regex("name = \"routed\""), "name = \"" + lab + "\"");
}

}  // namespace labctl::test
