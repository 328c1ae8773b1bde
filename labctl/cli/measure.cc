// labctl measure LAB [TARGET...] [--from NODE] [--requests N | --seconds S] [--concurrency C]
//                [--rate R] [--new-connections] [--rounds K] [--json] [--svg FILE]
#include <unistd.h>

#include <fmt/format.h>

#include <cstdio>

#include "labctl/base/interrupt.h"
#include "labctl/cli/command.h"
#include "labctl/cli/load.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/lab/state.h"
#include "labctl/measure/measure.h"
#include "labctl/measure/report.h"
#include "labctl/plan/agent.h"

namespace labctl::cli {
namespace {

void setup(CLI::App& app) {
  using B = MeasureBounds;
  auto* cmd = app.add_subcommand("measure", "Put a running lab under HTTP load and show what it did, target beside target");
  cmd->footer(fmt::format(
      "Sends HTTP GETs with labagent load from one node of the lab (--from; default: the\n"
      "node the lab's checks send from, else a node named client) to each TARGET: a\n"
      "service's name (its VIP and port), a URL (http://ADDRESS[:PORT][/PATH]) or\n"
      "ADDRESS:PORT; with no TARGET, every TCP service of the lab. Several targets are\n"
      "measured in alternating rounds (the same minute of the same machine for each) and\n"
      "shown side by side, with ratios to the first: requests/s, bits/s of response body,\n"
      "latency min/p50/p90/p99/max (from a log-linear histogram, within {:.2g} %), errors by\n"
      "kind (refused, reset, timeout, closed, http STATUS), and what the lab did meanwhile:\n"
      "each director's exact IPVS bytes and packets in and out, each node's TCP opens\n"
      "(active/passive), sockets and TIME_WAIT, and the CPU time of its processes.\n"
      "Bounds (a value outside is refused before any load starts, exit 2):\n"
      "  --requests {}..{} per target   --seconds {:g}..{:g} per target (default {:g})\n"
      "  --concurrency {}..{}   --rate {:.0f}..{:.0f} req/s   --rounds {}..{} (at most one per request)\n"
      "A --requests round stops after {:g} s whatever is left. Ctrl-C stops the load under way\n"
      "and prints what was measured so far. Progress goes to stderr: a line per round, or one\n"
      "updating line on a terminal.\n"
      "Examples:\n"
      "  labctl measure nat-demo\n"
      "  labctl measure nat-vs-dr nat dr --seconds 20\n"
      "  labctl measure mylab 10.0.0.100:80 http://10.0.0.10/ --new-connections --concurrency 32\n"
      "  labctl measure mylab web --rate 500 --seconds 10 --json\n"
      "  labctl measure nat-vs-dr nat dr --svg nat-vs-dr.svg\n"
      "Exit status: 0 when every target answered, 1 when one never did, the load could not\n"
      "run or it was interrupted, 2 for bad usage (nothing was sent).",
      Histogram::kRelativeError * 100, B::kRequestsMin, B::kRequestsMax, B::kSecondsMin, B::kSecondsMax,
      B::kDefaultSeconds, B::kConcurrencyMin, B::kConcurrencyMax, B::kRateMin, B::kRateMax, B::kRoundsMin,
      B::kRoundsMax, B::kRoundCapSeconds));
  static std::string lab, svg, svg_shown_as;
  static MeasureOptions o;
  static long long requests = 0;
  static double seconds = 0, rate = 0;
  static bool json = false;
  cmd->add_option("lab", lab, "Running lab")->required();
  cmd->add_option("targets", o.targets, "Service names, URLs or ADDRESS:PORT (default: every TCP service)")
      ->type_name("TARGET");
  cmd->add_option("--from", o.from, "Node the load is sent from (default: the lab's client)")->type_name("NODE");
  auto* req = cmd->add_option("--requests", requests, fmt::format("Requests per target, over all its rounds ({}..{})",
                                                                  B::kRequestsMin, B::kRequestsMax))
                  ->type_name("N");
  auto* secs = cmd->add_option("--seconds", seconds,
                               fmt::format("Seconds of load per target, over all its rounds ({:g}..{:g}, default {:g})",
                                           B::kSecondsMin, B::kSecondsMax, B::kDefaultSeconds))
                   ->type_name("S");
  cmd->add_option("--concurrency", o.concurrency,
                  fmt::format("Connections open at once ({}..{}, default 8)", B::kConcurrencyMin, B::kConcurrencyMax))
      ->type_name("C");
  auto* rt = cmd->add_option("--rate", rate,
                             fmt::format("Open loop: R requests per second on a fixed schedule, latency from when each was "
                                         "due ({:.0f}..{:.0f}; default: closed loop)",
                                         B::kRateMin, B::kRateMax))
                 ->type_name("R");
  cmd->add_flag("--new-connections", o.new_connections,
                "One TCP connection per request (handshakes measured) instead of keep-alive");
  cmd->add_option("--rounds", o.rounds,
                  fmt::format("Rounds each target's load is split into, targets alternating ({}..{}, default 3)",
                              B::kRoundsMin, B::kRoundsMax))
      ->type_name("K");
  cmd->add_flag("--json", json, "Machine-readable output");
  cmd->add_option("--svg", svg, "Draw throughput, director bytes and latency percentiles to FILE with gnuplot")
      ->type_name("FILE");
  // Hidden: the name --svg's file has for the user when a lab's micro-VM draws it under
  // another and the host copies it out (cli/vm_lab.cc); only the messages use it.
  cmd->add_option("--svg-shown-as", svg_shown_as)->group("");
  cmd->callback([req, secs, rt] {
    if (Status st = check_lab_name(lab); !st) die(st.error(), kExitInvalid);
    if (req->count()) o.requests = requests;
    if (secs->count()) o.seconds = seconds;
    if (rt->count()) o.rate = rate;
    if (Status st = check_measure_options(o); !st) die(st.error(), kExitInvalid);
    if (Status st = check_privileges(); !st) die(st.error());
    if (lab_namespaces(lab).empty())
      die(Error{"lab " + lab + " is not up", 0, {}, "`labctl up " + lab + "` first; `labctl ls` lists running labs"},
          kExitInvalid);
    Topology t = running_or_load_or_die(lab);
    auto plan = plan_measure(t, o);
    if (!plan) die(plan.error(), kExitInvalid);
    InterruptGuard interrupt;
    const bool tty = ::isatty(STDERR_FILENO) == 1;
    auto progress = [tty](const MeasureReport& r) {
      if (tty) std::fprintf(stderr, "\r\033[K%s", progress_line(r).c_str());
      else std::fprintf(stderr, "%s\n", progress_line(r).c_str());
      std::fflush(stderr);
    };
    auto rep = run_measure(t, *plan, o, find_labagent(), progress, interrupt.flag());
    if (tty) std::fprintf(stderr, "\r\033[K");
    if (!rep) die(rep.error());
    if (json) std::printf("%s\n", json_text(measure_json(*rep)).c_str());
    else std::printf("%s", measure_table(*rep).c_str());
    std::fflush(stdout);
    if (!svg.empty()) {
      std::string note;
      if (Status st = write_svg(*rep, svg, note); !st) die(st.error());
      const std::string shown = svg_shown_as.empty() ? svg : svg_shown_as;
      for (size_t at = note.find(svg); !svg_shown_as.empty() && at != std::string::npos; at = note.find(svg, at + shown.size()))
        note.replace(at, svg.size(), shown);
      std::fprintf(stderr, "%s\n", note.empty() ? ("labctl measure: wrote " + shown).c_str() : ("labctl measure: " + note).c_str());
    }
    bool unanswered = false;
    for (const auto& x : rep->results) unanswered |= x.rounds > 0 && x.load.answered == 0;
    if (rep->interrupted || unanswered) throw ExitError{kExitFailure, {}};
  });
}

LABCTL_COMMAND(48, setup);

}  // namespace
}  // namespace labctl::cli
