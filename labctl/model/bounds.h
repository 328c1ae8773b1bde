// Bounds on a measured value, as the latency and throughput checks take them: one or two
// comparisons with a value in tc's spelling, ">= 40ms", "<= 200ms", ">= 40ms, <= 60ms" (a
// time), ">= 8mbit" (a rate), "<= 5%" (a share). Pure: parsing, judging, percentiles.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "labctl/base/error.h"

namespace labctl {

/// What a bound measures: a time (seconds), a rate (bits per second) or a share (0..1).
enum class Measure { Time, Rate, Share };

struct Bounds {
  std::optional<double> at_least;  ///< In seconds, bits per second or a share.
  std::optional<double> at_most;
};

/// ">= 40ms", "<= 200ms" or both, comma separated. The error's message says what is wrong
/// (to follow "'p50' of check x"); its hint gives the accepted forms.
[[nodiscard]] Result<Bounds> parse_bounds(std::string_view text, Measure m);
/// "" when `value` is within `b`, else why not: "p50 71.6ms is not <= 60ms".
[[nodiscard]] std::string bounds_miss(std::string_view name, double value, const Bounds& b, Measure m);
/// A measured value for a detail: "50.9ms", "812us", "1.2s"; "9.52mbit"; "1.5%".
[[nodiscard]] std::string format_measure(double value, Measure m);
/// The nearest-rank percentile `p` (0 < p <= 100) of `sorted` (ascending, not empty): the
/// smallest value that at least p % of the values do not exceed.
[[nodiscard]] double percentile(const std::vector<double>& sorted, double p);

}  // namespace labctl
