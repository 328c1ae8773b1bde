// labctl up LAB|FILE [--dry-run] [--replace] [--verbose] [--vm=auto|always|never]
//                    [--check [--json] [--junit FILE]]
#include <chrono>
#include <cstdio>

#include "labctl/base/file.h"
#include "labctl/base/version.h"
#include "labctl/cli/check_run.h"
#include "labctl/cli/command.h"
#include "labctl/cli/load.h"
#include "labctl/cli/vm_lab.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/lab/multihost.h"
#include "labctl/lab/preflight.h"
#include "labctl/lab/state.h"
#include "labctl/model/hosts.h"
#include "labctl/plan/part.h"
#include "labctl/model/builtins.h"
#include "labctl/plan/exercise.h"
#include "labctl/plan/planner.h"
#include "labctl/plan/render.h"

namespace labctl::cli {
namespace {

// What a user needs right after up: every node's interfaces and addresses, and how to go on.
void print_summary(const Topology& t, double ms) {
  std::printf("lab %s is up (%zu node%s, %zu switch%s) in %.0f ms\n\n", t.name.c_str(),
              t.nodes.size(), t.nodes.size() == 1 ? "" : "s", t.switches.size(),
              t.switches.size() == 1 ? "" : "es", ms);
  std::printf("  %-12s %-10s %s\n", "NODE", "INTERFACE", "ADDRESSES");
  for (const auto& n : t.nodes) {
    auto row = [&](const std::string& dev, const std::vector<IpPrefix>& addrs) {
      std::string a;
      for (const auto& p : addrs) a += (a.empty() ? "" : " ") + p.str();
      std::printf("  %-12s %-10s %s\n", n.name.c_str(), dev.c_str(), a.c_str());
    };
    for (const auto& i : n.interfaces) row(i.name, i.addresses);
    if (!n.lo_addresses.empty()) row("lo", n.lo_addresses);
    if (n.accept_ipip) row("tunl0", n.tunl0_addresses);
    if (n.accept_ip6ip6) row("ip6tnl0", n.ip6tnl0_addresses);
    for (const auto& tu : n.tunnels) row(tu.name, tu.addresses);
  }
  const std::string first = t.nodes.empty() ? "NODE" : t.nodes.front().name;
  std::printf("\n  enter a node:  labctl exec %s %s\n", t.name.c_str(), first.c_str());
  std::printf("  see it:        labctl status %s\n", t.name.c_str());
  std::printf("  tear it down:  labctl down %s\n", t.name.c_str());
}

// `up --part HOST -`: this host's part of a lab spread over several, the topology on stdin
// (sent by the controller over ssh: lab/multihost.h). No summary: the controller prints one.
void up_part(const std::string& host, bool replace, bool verbose, bool preflight_only) {
  auto text = read_all_stdin(16 << 20);
  if (!text) die(text.error(), kExitInvalid);
  LoadResult r = parse_topology(*text, "(the topology from the controller)");
  print_diagnostics_or_die(r);
  const Topology& t = *r.topology;
  const auto used = lab_hosts(t);
  if (!multi_host(t) || std::find(used.begin(), used.end(), host) == used.end())
    die(Error{"lab " + t.name + " has no part on a host named " + host, 0, {},
              "--part is how the controller runs a host's part: `labctl up FILE` on the controller"},
        kExitInvalid);
  Plan plan = plan_part(t, make_plan(t), host);
  if (Status st = check_privileges(); !st) die(st.error());
  if (preflight_only) {
    if (Status st = check_kernel_can_build(plan); !st) die(st.error());
    return;
  }
  UpOptions o;
  o.replace = replace;
  o.source_text = *text;
  o.state_files.emplace_back("part.json", to_json(hosts_record(t, host)));
  if (verbose)
    o.on_step = [&](size_t i, const PlannedStep& ps) {
      std::printf("[%zu/%zu] %s\n", i + 1, plan.steps.size(), describe(ps.step).c_str());
      std::fflush(stdout);
    };
  auto start = std::chrono::steady_clock::now();
  if (Status st = lab_up(t, plan, o); !st) die(st.error());
  std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
  std::printf("up: %zu steps in %.0f ms\n", plan.steps.size(), took.count());
}

// `up` of a lab with [hosts]: every host's part at once, progress per host.
void up_hosts(const Topology& t, const std::string& text, bool replace, bool verbose, bool summary) {
  if (Status st = check_lab_name(t.name); !st) die(st.error(), kExitInvalid);
  MultiHostUpOptions o;
  o.version = std::string("labctl ") + labctl_version();
  o.replace = replace;
  o.verbose = verbose;
  o.on_line = [](const std::string& host, bool err, std::string_view line) {
    std::fprintf(err ? stderr : stdout, "[%s] %.*s\n", host.c_str(), static_cast<int>(line.size()), line.data());
    std::fflush(err ? stderr : stdout);
  };
  auto start = std::chrono::steady_clock::now();
  if (Status st = multihost_up(t, text, o); !st) die(st.error());
  std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
  if (!summary) return;
  print_summary(t, took.count());
  std::printf("\n  hosts:");
  for (const auto& h : lab_hosts(t)) {
    size_t nodes = 0;
    for (const auto& n : t.nodes) nodes += host_of(t, n) == h;
    std::printf(" %s (%zu node%s)", h.c_str(), nodes, nodes == 1 ? "" : "s");
  }
  std::printf("\n");
}

void setup(CLI::App& app) {
  auto* cmd = app.add_subcommand("up", "Build a lab from a built-in name or a TOML file");
  cmd->footer(
      "Examples:\n"
      "  labctl up dr-demo                 # the built-in LVS-DR lab\n"
      "  labctl up ./mylab.toml\n"
      "  labctl up --check dr-demo         # build it, then run its checks\n"
      "  labctl up --dry-run dr-demo > dr.sh   # the same lab as ip/sysctl/ipvsadm commands\n"
      "All or nothing: if any step fails (or on Ctrl-C) everything made so far is removed and\n"
      "the failing step, the kernel's message and errno are shown. Needs root.\n"
      "On a kernel without what the lab needs (IPVS, IPIP, netem) the lab runs in a\n"
      "micro-VM of its own (--vm=auto, docs/vm.md): every labctl command about it is\n"
      "relayed there, and `labctl down` stops the guest.\n"
      "With --check, exit status 1 when a check failed (or the lab has none) and 2 for a\n"
      "configuration error; --json, --junit and --timeout shape the check run as for\n"
      "`labctl check` (see its --help).");
  static std::string what;
  static bool dry_run = false, replace = false, verbose = false, check = false;
  static CheckRunFlags check_flags;
  static std::string vm_mode = "auto";
  static std::string part, place;
  static bool preflight_only = false;
  cmd->add_option("lab", what, "Built-in lab name (see `labctl list`) or path to a .toml file")
      ->required();
  cmd->add_flag("-n,--dry-run", dry_run,
                "Print the plan as a runnable shell script instead of building the lab");
  cmd->add_flag("--replace", replace, "Tear down a running lab of the same name first");
  cmd->add_flag("-v,--verbose", verbose, "Print each step as it is done");
  auto* check_opt = cmd->add_flag(
      "--check", check, "Run the lab's checks right after (exit 1 if any fails; the lab stays up)");
  cmd->add_option("--vm", vm_mode,
                  "auto: run the lab in a micro-VM when this kernel lacks what it needs;\n"
                  "always: in a micro-VM anyway; never: fail naming the missing feature")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->capture_default_str();
  cmd->add_option("--place", place,
                  "A lab across hosts (docs/multihost.md): `auto` spreads the nodes without `host`\n"
                  "over the hosts, fewest stretched switches first (as place = \"auto\" in the file)")
      ->check(CLI::IsMember({"auto"}));
  // The controller's words to another host (lab/multihost.h), not a user's.
  cmd->add_option("--part", part, "This host's part of a lab across hosts, the topology on stdin (`-`)")
      ->group("");
  cmd->add_flag("--preflight-only", preflight_only, "With --part: only check that this host can build it")
      ->group("");
  add_check_flags(cmd, check_flags);
  for (const char* name : {"--json", "--junit", "--timeout"}) cmd->get_option(name)->needs(check_opt);
  cmd->callback([] {
    if (!part.empty()) {
      if (what != "-") die(Error{"up --part reads the topology from stdin: give `-` as the lab", 0, {}, {}}, kExitInvalid);
      up_part(part, replace, verbose, preflight_only);
      return;
    }
    std::string text;
    Topology t = load_or_die(what, &text);
    if (place == "auto" && !t.place_auto) {
      if (!multi_host(t))
        die(Error{"--place auto spreads nodes over the hosts, but lab " + t.name + " has no [hosts]", 0, {},
                  "add [hosts.NAME] tables (docs/multihost.md)"},
            kExitInvalid);
      // The file's own key, so that every host (and every later command) places alike.
      text = "place = \"auto\"\n" + text;
      LoadResult placed = parse_topology(text, t.source);
      print_diagnostics_or_die(placed);
      t = std::move(*placed.topology);
    }
    Plan plan = make_plan(t);
    if (dry_run) {
      if (!multi_host(t)) {
        std::fputs(render_script(plan).c_str(), stdout);
        return;
      }
      // Each host's part, one after the other: what `up` runs on each of them.
      for (const auto& h : lab_hosts(t)) {
        const Host* host = t.find_host(h);
        std::printf("# ---- host %s%s ----\n", h.c_str(),
                    host && !host->ssh.empty() ? (" (ssh " + host->ssh + ")").c_str() : " (this machine)");
        std::fputs(render_script(plan_part(t, plan, h)).c_str(), stdout);
      }
      return;
    }
    if (multi_host(t)) {
      up_hosts(t, text, replace, verbose, !(check && check_flags.json));
      if (check) {
        if (!check_flags.json) std::printf("\nchecks:\n");
        std::fflush(stdout);
        if (int rc = run_and_print_checks(t, {}, check_flags); rc) throw ExitError{rc, {}};
      }
      return;
    }
    // Inside a lab's guest the kernel is the one that has it all: never a VM in a VM.
    if (!inside_vm() && vm_mode != "never") {
      std::string why;
      if (vm_mode == "auto") {
        if (Status st = check_kernel_can_build(plan); !st) {
          why = st.error().message;
          if (auto no = vm_unavailable()) {
            Error e = st.error();
            e.hint = "and the micro-VM cannot stand in: " + *no + " (docs/vm.md)";
            die(e);
          }
          // "this kernel cannot build lab X: it has no IPVS (...)" without the probe detail.
          if (auto p = why.find(" (probe:"); p != std::string::npos) why.erase(p);
        }
      }
      if (vm_mode == "always" || !why.empty()) {
        int rc = up_in_vm(t, command_line_args(), replace, why);
        if (rc) throw ExitError{rc, {}};
        return;
      }
    }
    if (vm_hosted(t.name)) {
      if (!replace)
        die(Error{"lab " + t.name + " is already up (in its micro-VM)", 0, {},
                  "`labctl down " + t.name + "` first, or up --replace"});
      bool failed = false;
      down_vm(t.name, failed);
      if (failed) throw ExitError{kExitFailure, {}};
    }
    UpOptions o;
    o.replace = replace;
    o.source_text = std::move(text);
    if (verbose)
      o.on_step = [&](size_t i, const PlannedStep& ps) {
        std::printf("[%zu/%zu] %s\n", i + 1, plan.steps.size(), describe(ps.step).c_str());
      };
    auto start = std::chrono::steady_clock::now();
    if (Status st = lab_up(t, plan, o); !st) die(st.error());
    std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
    // With --json, stdout holds only the checks' JSON document.
    if (!(check && check_flags.json)) {
      print_summary(t, took.count());
      if (t.exercise) std::printf("\n%s\n", exercise_banner(t).c_str());
    }
    if (check) {
      if (!check_flags.json) std::printf("\nchecks:\n");
      std::fflush(stdout);
      if (int rc = run_and_print_checks(t, {}, check_flags); rc) throw ExitError{rc, {}};
    }
  });
}

LABCTL_COMMAND(20, setup);

}  // namespace
}  // namespace labctl::cli
