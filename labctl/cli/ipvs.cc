// labctl ipvs LAB [NODE] [--stats|--rate|--connections|--timeouts] [--watch] [--json]
// labctl ipvs LAB EDIT ARGS...   (set-weight, drain, add-server, remove-server,
//                                 set-scheduler, set-persistence, set-timeouts)
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <thread>

#include "labctl/cli/command.h"
#include "labctl/cli/load.h"
#include "labctl/lab/ipvs_edit.h"
#include "labctl/lab/ipvs_table.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/lab/state.h"

namespace labctl::cli {
namespace {

struct Flags {
  std::vector<std::string> args;
  bool stats = false, rate = false, conns = false, timeouts = false, watch = false, json = false;
  int count = 0;
  int weight = 1;
  std::string method;
  std::vector<uint32_t> set;
};

[[noreturn]] void usage(const std::string& what) {
  die(Error{what, 0, {}, "see `labctl ipvs --help`"}, kExitInvalid);
}

uint32_t number(const std::string& text, const std::string& what) {
  if (text.empty() || text.size() > 9 || text.find_first_not_of("0123456789") != std::string::npos)
    usage(what + " must be a whole number >= 0, not '" + text + "'");
  return static_cast<uint32_t>(std::stoul(text));
}

// The arguments after LAB: an edit and its operands, as the user wrote them.
IpvsEdit parse_edit(IpvsEditKind kind, const Flags& f) {
  const auto& a = f.args;
  IpvsEdit e;
  e.kind = kind;
  auto want = [&](size_t n, const char* shape) {
    if (a.size() != n + 2)
      usage(std::string("ipvs ") + to_string(kind) + ": expected " + shape);
  };
  switch (kind) {
    case IpvsEditKind::SetWeight:
      want(3, "SERVICE SERVER WEIGHT");
      e.weight = static_cast<int>(number(a[4], "WEIGHT"));
      break;
    case IpvsEditKind::Drain:
    case IpvsEditKind::RemoveServer:
      want(2, "SERVICE SERVER");
      break;
    case IpvsEditKind::AddServer:
      want(2, "SERVICE SERVER [--weight W] [--method nat|dr|tun|local]");
      e.weight = f.weight;
      if (f.method == "nat") e.method = FwdMethod::Nat;
      else if (f.method == "dr") e.method = FwdMethod::Dr;
      else if (f.method == "tun") e.method = FwdMethod::Tun;
      else if (f.method == "local") e.method = FwdMethod::Local;
      else if (!f.method.empty()) usage("--method is nat, dr, tun or local, not '" + f.method + "'");
      break;
    case IpvsEditKind::SetScheduler:
      want(2, "SERVICE SCHEDULER");
      e.scheduler = a[3];
      break;
    case IpvsEditKind::SetPersistence:
      want(2, "SERVICE SECONDS (0: not persistent)");
      e.persistence = number(a[3], "SECONDS");
      break;
    case IpvsEditKind::SetTimeouts:
      if (a.size() != 5 && a.size() != 6) usage("ipvs set-timeouts: expected [NODE] TCP TCPFIN UDP");
      if (a.size() == 6) e.node = a[2];
      e.timeouts = {number(a[a.size() - 3], "TCP"), number(a[a.size() - 2], "TCPFIN"),
                    number(a[a.size() - 1], "UDP")};
      return e;
  }
  e.service = a[2];
  if (a.size() > 3 && kind != IpvsEditKind::SetScheduler && kind != IpvsEditKind::SetPersistence)
    e.server = a[3];
  return e;
}

IpvsTable read_or_die(const Topology& t, const std::string& node, bool conns) {
  auto table = read_ipvs_table(t, node, conns);
  if (!table) die(table.error());
  return std::move(*table);
}

void run_edit(IpvsEdit e, const Flags& f) {
  Topology t = running_lab_or_die(f.args[0]);
  auto resolved = resolve_ipvs_edit(t, e);
  if (!resolved) die(resolved.error(), kExitInvalid);
  auto done = apply_ipvs_edit(t.name, *resolved);
  if (!done) die(done.error());
  edit_topology(t, *resolved);
  IpvsTable table = read_or_die(t, resolved->director, false);
  if (f.json) {
    nlohmann::json j = {{"edit", ipvs_edit_json(e)}, {"done", *done},
                        {"notes", resolved->notes}, {"table", ipvs_json(table)}};
    std::printf("%s\n", json_text(j).c_str());
    return;
  }
  std::printf("%s\n", done->c_str());
  std::fflush(stdout);  // the notes (stderr) come after what was done, in a pipe too
  for (const auto& n : resolved->notes) std::fprintf(stderr, "labctl: note: %s\n", n.c_str());
  std::printf("\n%s", render_ipvs(table, e.kind == IpvsEditKind::SetTimeouts ? IpvsView::Timeouts
                                                                           : IpvsView::List)
                          .c_str());
}

void run_show(const Flags& f) {
  if (f.args.size() > 2) usage("ipvs: unexpected '" + f.args[2] + "' (an edit comes right after LAB)");
  if (f.stats + f.rate + f.conns + f.timeouts > 1)
    usage("ipvs: --stats, --rate, --connections and --timeouts are different views: pick one");
  Topology t = running_lab_or_die(f.args[0]);
  auto node = pick_director(t, f.args.size() > 1 ? f.args[1] : "");
  if (!node) {
    Error e = node.error();
    // A mistyped edit looks like a node name: say what the edits are called too.
    if (f.args.size() > 1)
      e.hint += "; edits: set-weight, drain, add-server, remove-server, set-scheduler, "
                "set-persistence, set-timeouts";
    die(e, kExitInvalid);
  }
  const IpvsView view = f.stats      ? IpvsView::Stats
                        : f.rate     ? IpvsView::Rate
                        : f.conns    ? IpvsView::Connections
                        : f.timeouts ? IpvsView::Timeouts
                                     : IpvsView::List;
  if (!f.watch && f.count == 0) {
    IpvsTable table = read_or_die(t, *node, f.conns);
    if (f.json) std::printf("%s\n", json_text(ipvs_json(table)).c_str());
    else std::printf("%s", render_ipvs(table, view).c_str());
    return;
  }
  // Every second until Ctrl-C (or --count blocks): on a terminal redrawn in place, in a pipe
  // one block after another, each with its time.
  const bool tty = ::isatty(STDOUT_FILENO) == 1;
  auto next = std::chrono::steady_clock::now();
  for (int i = 0; f.count == 0 || i < f.count; ++i) {
    if (i > 0) std::this_thread::sleep_until(next);
    next += std::chrono::seconds(1);
    IpvsTable table = read_or_die(t, *node, f.conns);
    const std::time_t now = std::time(nullptr);
    char when[32];
    std::strftime(when, sizeof when, "%H:%M:%S", std::localtime(&now));
    if (f.json) {
      nlohmann::json j = ipvs_json(table);
      j["time"] = when;
      std::printf("%s\n", j.dump().c_str());
    } else {
      if (tty) std::printf("\033[H\033[2J");
      else if (i > 0) std::printf("\n");
      std::printf("Every 1.0s: labctl ipvs %s %s    %s\n\n%s", t.name.c_str(), node->c_str(), when,
                  render_ipvs(table, view).c_str());
    }
    std::fflush(stdout);
  }
}

void setup(CLI::App& app) {
  auto* cmd = app.add_subcommand("ipvs", "Show a director's IPVS table, or edit it live");
  cmd->footer(
      "Show (like `ipvsadm -Ln` inside the director, with labctl's names added):\n"
      "  labctl ipvs LAB [NODE]              services, schedulers and flags, persistence,\n"
      "                                      real servers with forward method, weight and\n"
      "                                      active/inactive connections\n"
      "  labctl ipvs LAB --stats | --rate    counters or rates (ipvsadm --stats --exact, --rate)\n"
      "  labctl ipvs LAB --connections       the connection table (ipvsadm -Lnc)\n"
      "  labctl ipvs LAB --timeouts          tcp, tcpfin and udp timeouts\n"
      "  ... --watch [--count N]             again every second (until Ctrl-C, or N times)\n"
      "  ... --json                          every field, machine-readable\n"
      "NODE defaults to the lab's one director (the node with services).\n"
      "Counters per service and server are the kernel estimator's: refreshed about every\n"
      "2 s, so they lag. The namespace's totals under --stats are exact (per-cpu counters);\n"
      "the kernel keeps no exact per-service copy.\n"
      "\n"
      "Edit live (the lab stays up; `status`, `check` and `ipvs` see the change):\n"
      "  labctl ipvs LAB set-weight SERVICE SERVER WEIGHT\n"
      "  labctl ipvs LAB drain SERVICE SERVER            weight 0: no new connections\n"
      "  labctl ipvs LAB add-server SERVICE SERVER [--weight W] [--method nat|dr|tun|local]\n"
      "  labctl ipvs LAB remove-server SERVICE SERVER\n"
      "  labctl ipvs LAB set-scheduler SERVICE SCHEDULER (rr, wrr, sh, ... as the kernel has)\n"
      "  labctl ipvs LAB set-persistence SERVICE SECONDS (0: not persistent)\n"
      "  labctl ipvs LAB set-timeouts [NODE] TCP TCPFIN UDP   (or: labctl ipvs LAB --set T F U)\n"
      "SERVICE is the service's name in the topology; SERVER a node name or ADDRESS[:PORT].\n"
      "Edits are recorded in the lab's state, so `check` judges the lab as it is now.\n"
      "Exit status: 0 done, 1 the kernel refused (its reason and a hint are shown), 2 bad\n"
      "names or usage (what exists is listed; nothing was changed).\n"
      "\n"
      "Examples: labctl ipvs dr-demo\n"
      "          labctl ipvs dr-demo set-weight web rs1 3\n"
      "          labctl ipvs dr-demo set-scheduler web wrr\n"
      "          labctl ipvs dr-demo --stats --watch");
  static Flags f;
  cmd->add_option("args", f.args, "LAB [NODE], or LAB EDIT ARGS...")->required();
  cmd->add_flag("--stats", f.stats, "Counters: connections, packets and bytes in and out");
  cmd->add_flag("--rate", f.rate, "Rates: connections, packets and bytes per second");
  cmd->add_flag("-c,--connections", f.conns,
                "The connection table (read in the director's namespace)");
  cmd->add_flag("--timeouts", f.timeouts, "The tcp, tcpfin and udp timeouts");
  cmd->add_flag("-w,--watch", f.watch, "Show again every second until Ctrl-C");
  cmd->add_option("--count", f.count, "Watch, and stop after N refreshes")
      ->check(CLI::Range(1, 1000000));
  cmd->add_flag("--json", f.json, "Machine-readable output");
  cmd->add_option("--weight", f.weight, "add-server: the new server's weight (default 1)")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--method", f.method,
                  "add-server: nat, dr, tun or local (default: as the service's other servers)");
  cmd->add_option("--set", f.set, "Set the tcp, tcpfin and udp timeouts (seconds; 0: unchanged)")
      ->expected(3)
      ->type_name("TCP TCPFIN UDP");
  cmd->callback([] {
    if (!f.set.empty()) {
      IpvsEdit e;
      e.kind = IpvsEditKind::SetTimeouts;
      if (f.args.size() > 2) usage("ipvs --set: expected LAB [NODE] --set TCP TCPFIN UDP");
      if (f.args.size() == 2) e.node = f.args[1];
      e.timeouts = {f.set[0], f.set[1], f.set[2]};
      run_edit(e, f);
      return;
    }
    if (f.args.size() > 1)
      if (auto kind = parse_ipvs_edit_kind(f.args[1])) {
        run_edit(parse_edit(*kind, f), f);
        return;
      }
    run_show(f);
  });
}

LABCTL_COMMAND(52, setup);

}  // namespace
}  // namespace labctl::cli
