// labctl_multihost_bench: what spreading a lab over hosts costs at `up` (issue 28), as ratios
// against the same lab brought up on this one machine, in the same run. The hosts are the
// host tier's simulated hosts (tests/support/simhosts.h: namespaces running Debian's sshd,
// reached with the real ssh), so the figure is labctl's own cost (ssh connections, version
// and preflight round trips, each host's part) on one kernel, not a network's.
//
// Variants, each --rounds times (median): the lab with no [hosts] (the baseline); every node
// placed on h1 (one host over ssh); the nodes spread over h1, h2 (two hosts, the switch
// stretched); over h1, h2, h3. Each round is `labctl up FILE`, timed from outside, then
// `labctl down`. Needs root and openssh-server. See docs/bench.md.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "labctl/kernel/process.h"
#include "tests/support/simhosts.h"
#include "bench/median.h"

namespace labctl {
namespace {

using Clock = std::chrono::steady_clock;

std::string self_dir() {
  std::error_code ec;
  return std::filesystem::read_symlink("/proc/self/exe", ec).parent_path().string();
}

// `nodes` servers with an http agent and one client on switch lan; hosts: none (""), or the
// nodes dealt round-robin over h1..hN.
std::string lab_text(const std::string& name, int nodes, int hosts, const test::SimHosts& sim,
                     const std::string& labctl) {
  std::string t = fmt::format("version = 1\nname = \"{}\"\n", name);
  for (int h = 1; h <= hosts; ++h)
    t += fmt::format("[hosts.h{}]\nssh = \"h{}\"\nunderlay = \"{}\"\nlabctl = \"{}\"\n", h, h, sim.underlay(h), labctl);
  t += "[switches.lan]\nmtu = 1450\n";
  for (int i = 0; i <= nodes; ++i) {
    const std::string node = i == 0 ? "client" : fmt::format("s{}", i);
    t += fmt::format("[nodes.{}]\n", node);
    if (hosts) t += fmt::format("host = \"h{}\"\n", i % hosts + 1);
    t += fmt::format("interfaces.eth0 = {{ switch = \"lan\", addresses = [\"10.0.0.{}/24\"] }}\n", i + 1);
    if (i) t += "agents.web = { kind = \"http\", port = 80 }\n";
  }
  return t;
}

}  // namespace
}  // namespace labctl

int main(int argc, char** argv) {
  using namespace labctl;
  CLI::App app{"labctl_multihost_bench: `up` of a lab across 1, 2 and 3 simulated hosts against one machine"};
  int rounds = 5, nodes = 6;
  app.add_option("--rounds", rounds, "Rounds per variant (median)")->check(CLI::Range(1, 100));
  app.add_option("--nodes", nodes, "Servers in the lab (plus one client)")->check(CLI::Range(1, 60));
  CLI11_PARSE(app, argc, argv);
  if (::geteuid() != 0) {
    std::fprintf(stderr, "labctl_multihost_bench: needs root\n");
    return 1;
  }
  const std::string dir = self_dir();
  const std::string labctl = std::filesystem::canonical(dir + "/../labctl/labctl").string();
  const std::string simhost = std::filesystem::canonical(dir + "/../tests/simhost").string();
  auto sim = test::SimHosts::start(3, simhost);
  if (!sim) {
    std::fprintf(stderr, "labctl_multihost_bench: simulated hosts: %s\n", sim.error().str().c_str());
    return 1;
  }
  ::setenv("LABCTL_SSH_CONFIG", sim->ssh_config().c_str(), 1);
  std::printf("labctl_multihost_bench: %d servers + 1 client on one switch, %d rounds; simulated hosts started in %lld ms\n",
              nodes, rounds, static_cast<long long>(sim->start_time().count()));
  struct Variant {
    const char* what;
    int hosts;
  };
  const Variant variants[] = {{"one machine, no [hosts] (baseline)", 0},
                              {"1 host over ssh", 1},
                              {"2 hosts, switch stretched", 2},
                              {"3 hosts, switch stretched", 3}};
  double base = 0;
  int failures = 0;
  std::printf("\n  %-36s %10s %8s\n", "variant", "up (ms)", "ratio");
  for (const auto& v : variants) {
    const std::string name = fmt::format("mhb{}-{}", v.hosts, ::getpid());
    const std::string file = sim->dir() + "/" + name + ".toml";
    std::ofstream(file) << lab_text(name, nodes, v.hosts, *sim, labctl);
    std::vector<double> ms;
    for (int r = 0; r < rounds; ++r) {
      const auto start = Clock::now();
      auto up = run_captured({labctl, "up", file}, Clock::now() + std::chrono::minutes(2));
      const double took = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
      if (!up || up->exit_code != 0) {
        std::fprintf(stderr, "  %s: up failed: %s\n", v.what, up ? up->err.c_str() : up.error().str().c_str());
        ++failures;
      } else {
        ms.push_back(took);
      }
      auto down = run_captured({labctl, "down", name}, Clock::now() + std::chrono::minutes(2));
      if (!down || down->exit_code != 0) ++failures;
    }
    const double m = median(ms);
    if (v.hosts == 0) base = m;
    std::printf("  %-36s %10.0f %7.2fx\n", v.what, m, base > 0 ? m / base : 0);
    std::fflush(stdout);
  }
  for (int i = 1; i <= 3; ++i)
    for (const auto& l : sim->leftovers(i)) {
      std::fprintf(stderr, "  leftover: %s\n", l.c_str());
      ++failures;
    }
  return failures ? 1 : 0;
}
