// `labctl measure`: a running lab put under HTTP load by labagent load from one of its
// nodes, target after target in alternating rounds, with what the lab did meanwhile (the
// directors' exact IPVS totals, every node's TCP opens and sockets, the CPU time of its
// processes). Deciding (options, targets, sums) is pure and tested; running is run_measure.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "labctl/base/error.h"
#include "labctl/base/histogram.h"
#include "labctl/model/topology.h"

namespace labctl {

/// The bounds of every option, documented in docs/measure.md and `--help`.
struct MeasureBounds {
  static constexpr long long kRequestsMin = 1, kRequestsMax = 100000000;
  static constexpr double kSecondsMin = 0.1, kSecondsMax = 3600;
  static constexpr int kConcurrencyMin = 1, kConcurrencyMax = 256;
  static constexpr double kRateMin = 1, kRateMax = 1000000;
  static constexpr int kRoundsMin = 1, kRoundsMax = 100;
  static constexpr double kDefaultSeconds = 6;
  /// A round in --requests mode stops after this long whatever is left (loads are bounded).
  static constexpr double kRoundCapSeconds = 3600;
};

struct MeasureOptions {
  std::vector<std::string> targets;  ///< As given: service names, URLs, ADDRESS:PORT.
  std::string from;                  ///< "": the lab's client (default_client).
  std::optional<long long> requests;  ///< Per target, over all its rounds.
  std::optional<double> seconds;      ///< Per target, over all its rounds.
  int concurrency = 8;
  std::optional<double> rate;  ///< Requests per second (open loop).
  bool new_connections = false;
  int rounds = 3;
};

/// Every bound of `o` (no lab needed): the first value out of range, with its range.
[[nodiscard]] Status check_measure_options(const MeasureOptions& o);

/// What one target is.
struct MeasureTarget {
  std::string label;     ///< The service's name, else the target as given.
  std::string url;       ///< What labagent load gets: "http://10.0.0.100:80/".
  std::string director;  ///< The node holding the service, "" for an address.
};

/// The targets of `o` in the lab (a service name, a URL or ADDRESS:PORT; none given: every
/// TCP service of the lab), and the node the load runs from.
struct MeasurePlan {
  std::string from;
  std::vector<MeasureTarget> targets;
};
[[nodiscard]] Result<MeasurePlan> plan_measure(const Topology& t, const MeasureOptions& o);

/// What labagent load --json reported for one run (or the sum of several).
struct LoadFigures {
  uint64_t requests = 0, answered = 0, interrupted = 0, body_bytes = 0, connections = 0;
  double seconds = 0, cpu_seconds = 0;
  std::map<std::string, uint64_t> served, errors;
  Histogram latency;  ///< Nanoseconds.
  void add(const LoadFigures& o);
  [[nodiscard]] uint64_t failed() const;
};
/// labagent load --json's line; an error names what is missing.
[[nodiscard]] Result<LoadFigures> parse_load_json(const std::string& text);

struct DirectorFigures {
  uint64_t conns = 0, inpkts = 0, outpkts = 0, inbytes = 0, outbytes = 0;
};
struct NodeFigures {
  uint64_t passive_opens = 0, active_opens = 0;
  int sockets = 0, time_wait = 0;  ///< After its rounds (the most seen).
  double cpu_seconds = 0;          ///< Of the node's processes (agents), the load client not included.
};

struct TargetResult {
  MeasureTarget target;
  int rounds = 0;
  LoadFigures load;
  std::map<std::string, DirectorFigures> directors;
  std::map<std::string, NodeFigures> nodes;
  std::vector<std::string> notes;  ///< What could not be read ("IPVS totals on dir: ...").
  void add_round(const TargetResult& round);
};

struct MeasureReport {
  std::string lab, from;
  MeasureOptions options;
  std::vector<TargetResult> results;
  int rounds_done = 0, rounds_planned = 0;  ///< Rounds over all targets.
  bool interrupted = false;
};

/// The load of one round of one target: what labagent load is given after `--target`.
struct RoundLoad {
  std::optional<long long> requests;
  double seconds = 0;
};
/// Round r (0-based) of `o`'s rounds: an even share of the requests (the first rounds take
/// the remainder) or of the seconds.
[[nodiscard]] RoundLoad round_load(const MeasureOptions& o, int r);
/// The rounds to run: `o.rounds`, at most one per request.
[[nodiscard]] int rounds_of(const MeasureOptions& o);

/// labagent load's argv for one round of a target.
[[nodiscard]] std::vector<std::string> load_argv(const std::string& labagent, const MeasureOptions& o,
                                                 const MeasureTarget& target, const RoundLoad& load);

/// Runs every round (target after target in each), from plan.from. `progress` hears about
/// each finished round; `stop` (Ctrl-C) ends the load under way at once and returns what
/// was measured so far, interrupted. Errors when the lab's namespaces are gone or the
/// load client cannot run.
[[nodiscard]] Result<MeasureReport> run_measure(const Topology& t, const MeasurePlan& plan, const MeasureOptions& o,
                                                const std::string& labagent,
                                                const std::function<void(const MeasureReport&)>& progress,
                                                const std::atomic<bool>* stop);

}  // namespace labctl
