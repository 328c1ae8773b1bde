// labctl_bench: how fast labctl builds and removes labs, as ratios against a baseline
// measured in the same run (never as absolute pass/fail times). Needs root; touches only
// namespaces it creates ("bench*" labs) and removes them. See docs/bench.md.
//
//   1. dr-demo without IPVS and agents (5 namespaces, 4 veth pairs, a bridge, 7 addresses,
//      13 sysctls): labctl's up+down against the equivalent ip/sysctl script (labctl's own
//      --dry-run output and its teardown), alternating, each run on a quiet kernel,
//      medians and their ratio.
//   2. Generated labs of N nodes, star (every node on one switch) and chain (node i joins
//      switch i and i+1): up+down time per node and per namespace, growth between sizes,
//      peak memory, and that down leaves nothing.
#include <malloc.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "labctl/base/file.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/kernel/netns.h"
#include "labctl/plan/render.h"
#include "labctl/plan/planner.h"
#include "labctl/model/load.h"
#include "bench/median.h"

namespace labctl {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

template <class T>
void die_on(const Result<T>& st, const char* what) {
  if (st) return;
  std::fprintf(stderr, "labctl_bench: %s: %s\n", what, st.error().str().c_str());
  std::exit(1);
}

bool leftovers(const std::string& lab) {
  for (const auto& ns : list_netns())
    if (ns.rfind(lab + "-", 0) == 0) return true;
  return false;
}

int run_script(const std::string& path) {
  std::string cmd = "bash " + path + " >/dev/null 2>&1";
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 1;
}

// The kernel frees a removed namespace asynchronously, holding locks a new one needs:
// right after a big down, creating namespaces is several times slower. Wait until a
// probe namespace costs what it costs on a quiet kernel, so one run does not bill the
// next (at most 60 s).
// The probe: creating one namespace, unnamed. A named one would also create and delete a
// file under /run/netns, which on an ext4 /run makes later creations there slower.
double probe_netns_ms() {
  double ms = 1e9;
  // On a thread of its own: unshare there, and the namespace goes when the thread does.
  std::thread([&] {
    auto t0 = Clock::now();
    if (::unshare(CLONE_NEWNET) == 0) ms = ms_since(t0);
  }).join();
  return ms;
}

// What a namespace costs on a quiet kernel: measured once, before anything is torn down.
double quiet_netns_ms() {
  static const double quiet = [] {
    double q = 1e9;
    for (int i = 0; i < 5; ++i) q = std::min(q, probe_netns_ms());
    return q;
  }();
  return quiet;
}

// Quiet means five probes in a row, 100 ms apart, each as cheap as on a quiet kernel: the
// kernel's cleanup of removed namespaces comes in bursts, and one cheap probe can fall
// between two of them.
void settle() {
  const double quiet = quiet_netns_ms();
  int in_a_row = 0;
  for (auto end = Clock::now() + std::chrono::seconds(60); Clock::now() < end && in_a_row < 5;) {
    in_a_row = probe_netns_ms() < 2 * quiet + 0.2 ? in_a_row + 1 : 0;
    usleep(100000);
  }
}

// dr-demo as the host can build it: no IPVS steps, no agents (the script baseline in
// ENVIRONMENT.md was measured the same way).
Plan host_plan(const Topology& t) {
  Plan p = make_plan(t);
  std::erase_if(p.steps, [](const PlannedStep& s) {
    return std::holds_alternative<step::AddIpvsService>(s.step) ||
           std::holds_alternative<step::AddIpvsDest>(s.step) ||
           std::holds_alternative<step::StartAgent>(s.step);
  });
  return p;
}

// Where up's time goes, by step type (plus what happens outside the steps).
void profile(const Topology& t, const Plan& plan) {
  std::map<std::string, std::pair<double, int>> by_type;
  auto last = Clock::now();
  UpOptions o;
  o.on_step = [&](size_t, const PlannedStep& ps) {
    auto& e = by_type[step_type(ps.step)];
    e.first += ms_since(last);
    ++e.second;
    last = Clock::now();
  };
  auto t0 = Clock::now();
  last = t0;
  die_on(lab_up(t, plan, o), "up");
  double up_ms = ms_since(t0);
  t0 = Clock::now();
  die_on(lab_down(t.name), "down");
  double down_ms = ms_since(t0);
  std::printf("profile of one up (%.1f ms) and down (%.1f ms) of %s:\n", up_ms, down_ms, t.name.c_str());
  for (const auto& [type, e] : by_type)
    std::printf("  %-16s %4d steps %8.2f ms %8.3f ms each\n", type.c_str(), e.second, e.first,
                e.first / e.second);
  std::printf("\n");
}

void bench_vs_script(int rounds, bool show_profile) {
  auto loaded = load_topology("dr-demo");
  if (!loaded.ok()) std::exit(1);
  Topology t = *loaded.topology;
  t.name = "benchdr";
  Plan plan = host_plan(t);
  // A private folder (mkdtemp, 0700) of its own: the bench runs as root, and a fixed name in
  // /tmp could be a link another user planted.
  char folder[] = "/tmp/labctl-bench-XXXXXX";
  if (!::mkdtemp(folder)) {
    std::perror("labctl_bench: mkdtemp");
    std::exit(1);
  }
  const std::string up = std::string(folder) + "/up.sh", down = std::string(folder) + "/down.sh";
  die_on(write_text(up, render_script(plan)), "write the up script");
  die_on(write_text(down, render_down_script(plan)), "write the down script");

  if (show_profile) {
    settle();
    profile(t, plan);
  }
  std::vector<double> ours, script;
  for (int i = 0; i < rounds; ++i) {
    // Each run starts on a quiet kernel: the namespaces the previous run removed are freed
    // asynchronously, with RTNL held for a while, and would bill whichever run came next.
    settle();
    auto t0 = Clock::now();
    die_on(lab_up(t, plan, {}), "up");
    die_on(lab_down(t.name), "down");
    ours.push_back(ms_since(t0));

    settle();
    t0 = Clock::now();
    if (run_script(up) != 0 || run_script(down) != 0) {
      std::fprintf(stderr, "labctl_bench: the shell script failed (run %s by hand)\n", up.c_str());
      std::exit(1);
    }
    script.push_back(ms_since(t0));
    if (leftovers(t.name)) {
      std::fprintf(stderr, "labctl_bench: namespaces of %s left behind\n", t.name.c_str());
      std::exit(1);
    }
  }
  std::remove(up.c_str());
  std::remove(down.c_str());
  ::rmdir(folder);
  const double a = median(ours), b = median(script);
  std::printf("dr-demo without IPVS, up+down, median of %d (alternating):\n", rounds);
  std::printf("  labctl            %8.1f ms\n", a);
  std::printf("  ip/sysctl script  %8.1f ms\n", b);
  std::printf("  ratio             %8.1fx faster (target >= 15x)\n\n", b / a);
}

Interface port(const std::string& name, const std::string& sw, const std::string& cidr) {
  Interface i;
  i.name = name;
  i.sw = sw;
  i.port = "";
  i.addresses = {*IpPrefix::parse(cidr)};
  return i;
}

std::string addr(size_t i, int third_octet_base) {
  return "10." + std::to_string(third_octet_base + i / 250) + "." + std::to_string(1 + i % 250) +
         ".1/16";
}

// With --impair, every generated interface gets impair = { rate = "10mbit" }.
bool g_impair = false;

Topology generated_plain(const std::string& shape, size_t n);

// Star: n nodes on one switch. Chain: node i joins switch i and switch i+1.
Topology generated(const std::string& shape, size_t n) {
  Topology t = generated_plain(shape, n);
  if (g_impair)  // a rate (tbf, which every kernel here has) on every node's end
    for (auto& nd : t.nodes)
      for (auto& i : nd.interfaces) i.impair.rate = 1250000;
  return t;
}

Topology generated_plain(const std::string& shape, size_t n) {
  Topology t;
  t.name = "bench" + shape;
  auto node_name = [](size_t i) { return "n" + std::to_string(i); };
  if (shape == "star") {
    t.switches.push_back(Switch{.name = "s0"});
    for (size_t i = 0; i < n; ++i) {
      Node nd;
      nd.name = node_name(i);
      Interface e = port("eth0", "s0", "10." + std::to_string(i / 250) + "." +
                                           std::to_string(1 + i % 250) + ".1/8");
      e.port = nd.name + "-eth0";
      nd.interfaces.push_back(e);
      t.nodes.push_back(nd);
    }
  } else {
    for (size_t i = 0; i <= n; ++i) t.switches.push_back(Switch{.name = "s" + std::to_string(i)});
    for (size_t i = 0; i < n; ++i) {
      Node nd;
      nd.name = node_name(i);
      Interface a = port("eth0", "s" + std::to_string(i), addr(i, 0));
      Interface b = port("eth1", "s" + std::to_string(i + 1), addr(i, 100));
      a.port = nd.name + "-eth0";
      b.port = nd.name + "-eth1";
      nd.interfaces = {a, b};
      nd.sysctls.push_back({"net.ipv4.ip_forward", "1", {}});
      t.nodes.push_back(nd);
    }
  }
  return t;
}

long peak_rss_kib() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

void bench_scale(const std::vector<size_t>& sizes, bool show_profile) {
  std::printf("a namespace on a quiet kernel: %.2f ms (runs wait for the kernel to settle)\n",
              quiet_netns_ms());
  std::printf("generated labs, up+down (one run each):\n");
  std::printf("  %-6s %6s %6s %10s %10s %10s %9s %12s %10s\n", "shape", "nodes", "netns", "up ms",
              "down ms", "ms/node", "ms/netns", "growth", "peak RSS");
  for (const char* shape : {"star", "chain"}) {
    double prev_per_node = 0;
    for (size_t n : sizes) {
      Topology t = generated(shape, n);
      Plan plan = make_plan(t);
      settle();
      auto t0 = Clock::now();
      die_on(lab_up(t, plan, {}), "up");
      double up_ms = ms_since(t0);
      t0 = Clock::now();
      die_on(lab_down(t.name), "down");
      double down_ms = ms_since(t0);
      if (leftovers(t.name)) {
        std::fprintf(stderr, "labctl_bench: %s left namespaces behind\n", t.name.c_str());
        std::exit(1);
      }
      double per_node = (up_ms + down_ms) / static_cast<double>(n);
      char growth[32] = "-";
      if (prev_per_node > 0) std::snprintf(growth, sizeof growth, "%.2fx/node", per_node / prev_per_node);
      const size_t netns = t.nodes.size() + t.switches.size();
      std::printf("  %-6s %6zu %6zu %10.1f %10.1f %10.3f %9.3f %12s %7ld KiB\n", shape, n, netns,
                  up_ms, down_ms, per_node, (up_ms + down_ms) / static_cast<double>(netns),
                  growth, peak_rss_kib());
      std::fflush(stdout);
      prev_per_node = per_node;
    }
  }
  std::printf("  (target: <= 1.5 ms per node at 1000 nodes; growth per node ~1.0x means linear)\n");
  if (show_profile && !sizes.empty()) {
    std::printf("\n");
    for (const char* shape : {"star", "chain"}) {
      Topology t = generated(shape, sizes.back());
      settle();
      profile(t, make_plan(t));
    }
  }
}

}  // namespace
}  // namespace labctl

int main(int argc, char** argv) {
  // One malloc arena: with one per thread, glibc grows and trims the executor thread's heap
  // with an mprotect per step (10,000 of them for a 1000-node lab, ~10% of its up).
  ::mallopt(M_ARENA_MAX, 1);
  CLI::App app{"labctl_bench: labctl's bring-up speed against baselines measured in the same run"};
  int rounds = 7;
  std::vector<size_t> sizes{10, 100, 1000};
  bool skip_script = false, skip_scale = false, show_profile = false;
  app.add_option("--rounds", rounds, "Alternating rounds for the script comparison")->default_val(7);
  app.add_option("--sizes", sizes, "Node counts for the generated labs")->delimiter(',');
  app.add_flag("--no-script", skip_script, "Skip the comparison with the shell script");
  app.add_flag("--no-scale", skip_scale, "Skip the generated labs");
  app.add_flag("--impair", labctl::g_impair,
               "Give every generated interface impair = { rate = \"10mbit\" } (a set-impairment step each)");
  app.add_flag("--profile", show_profile, "Show where up spends its time, by step type (dr-demo and the largest generated labs)");
  CLI11_PARSE(app, argc, argv);
  if (auto st = labctl::check_privileges(); !st) {
    std::fprintf(stderr, "labctl_bench: %s\n", st.error().str().c_str());
    return 1;
  }
  if (!skip_script) {
    labctl::settle();
    labctl::bench_vs_script(rounds, show_profile);
  }
  if (!skip_scale) labctl::bench_scale(sizes, show_profile);
  return 0;
}
