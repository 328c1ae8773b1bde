// Impairments of an interface's egress (issue 23): what an interface's
// `impair = { rate = "10mbit", delay = "20ms", ... }` declares, as values in the kernel's
// own units, read and written in tc's spellings. Pure: no kernel, no TOML (the loader's
// reader of an `impair` table is impair_toml.h; the kernel side is kernel/qdisc.h).
//
// The keys (all optional; at least one makes an impairment):
//   rate       "10mbit"  egress rate. tc's units, case-insensitive: bit kbit mbit gbit tbit
//                        (x1000), kibit mibit gibit tibit (x1024), bps kbps mbps gbps tbps and
//                        kibps mibps gibps tibps (BYTES per second, as tc reads them); a bare
//                        number (or a TOML integer) is bit/s. At least 8bit.
//   delay      "20ms"    added to every packet: s, ms, us or ns (sec secs msec msecs usec
//                        usecs nsec nsecs); a unit is required; whole microseconds, at
//                        most 60 s.
//   jitter     "5ms"     delay varies by +-jitter (needs delay). At most 60 s.
//   loss, duplicate, corrupt, reorder
//              "1%"      percentages 0%..100%, with the precision netem carries (1/2^32);
//                        reorder sends that share at once while the rest wait (needs delay).
//   limit      1000      netem's queue in packets (1..2^31-1; netem's default is 1000).
// A rate alone is shaped by tbf (the host kernel has it); anything else needs netem, which
// then carries the rate too (needs_netem).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "labctl/base/error.h"

namespace labctl {

/// A probability in netem's scale: 0 never, UINT32_MAX always. tc turns "1%" into
/// rint(0.01 * UINT32_MAX) = 42949673; so does from_percent.
struct Probability {
  uint32_t scaled = 0;

  [[nodiscard]] static Probability from_percent(double percent);
  [[nodiscard]] double percent() const;
  auto operator<=>(const Probability&) const = default;
};

struct Impairment {
  /// Bytes per second, the kernel's unit: "10mbit" is 1250000. tc truncates a rate that is
  /// no whole number of bytes ("1001bit" is 125), and so does parse_rate.
  std::optional<uint64_t> rate;
  std::optional<std::chrono::nanoseconds> delay;
  std::optional<std::chrono::nanoseconds> jitter;
  std::optional<Probability> loss;
  std::optional<Probability> duplicate;
  std::optional<Probability> corrupt;
  std::optional<Probability> reorder;
  std::optional<uint32_t> limit;  ///< netem's queue, in packets.

  [[nodiscard]] bool empty() const;
  bool operator==(const Impairment&) const = default;
};

/// What kind of value a key takes.
enum class ImpairValue { Rate, Time, Percent, Packets };

/// The member a key sets; its type says how its value is read.
using ImpairField =
    std::variant<std::optional<uint64_t> Impairment::*,
                 std::optional<std::chrono::nanoseconds> Impairment::*,
                 std::optional<Probability> Impairment::*, std::optional<uint32_t> Impairment::*>;

/// One key of an impair table, as the docs, the loader and `labctl link ... impair` know it.
struct ImpairKey {
  std::string_view name;
  ImpairValue value;
  std::string_view example;  ///< "10mbit", for hints.
  ImpairField field;
};
/// Every key, in the order a summary and tc name them.
[[nodiscard]] const std::vector<ImpairKey>& impair_keys();
[[nodiscard]] const ImpairKey* find_impair_key(std::string_view name);
[[nodiscard]] std::vector<std::string> impair_key_names();
/// The accepted forms of a kind of value, for hints ("a time: a number with s, ms, ...").
[[nodiscard]] std::string_view impair_forms(ImpairValue v);

inline constexpr std::chrono::nanoseconds kMaxImpairDelay = std::chrono::seconds(60);
inline constexpr uint32_t kNetemDefaultLimit = 1000;
inline constexpr uint32_t kMaxImpairLimit = 2147483647;  ///< libnl takes an int.

// Values from tc's text. Each error's message says what is wrong with the text (to follow
// "'delay' in impair of ..."), its hint the accepted forms.

/// "10mbit", "1.5gbit", "100kbps", "64000" (bit/s) to bytes per second.
[[nodiscard]] Result<uint64_t> parse_rate(std::string_view text);
/// "20ms", "1.5s", "250us", "2000ns" to nanoseconds, whole microseconds; a bare number is
/// refused (see impair.cc).
[[nodiscard]] Result<std::chrono::nanoseconds> parse_time(std::string_view text);
/// "1%", "0.1%", "100%".
[[nodiscard]] Result<Probability> parse_percent(std::string_view text);
/// "1000".
[[nodiscard]] Result<uint32_t> parse_limit(std::string_view text);

/// Sets `key` from its text, as `labctl link LAB NODE:IF impair delay=20ms` gives it.
/// Unknown keys are an error naming the known ones.
[[nodiscard]] Status set_impair_key(Impairment& imp, std::string_view key, std::string_view text);

/// A rule between keys or on a value's range that an impairment breaks, blamed on `key`.
struct ImpairProblem {
  std::string_view key;
  std::string message;  ///< To follow "'jitter' in impair of ...": "needs 'delay'".
  std::string hint;
};
/// jitter and reorder need a delay; delay and jitter at most 60 s. (Ranges of one value
/// are the parse functions' errors.)
[[nodiscard]] std::vector<ImpairProblem> impairment_problems(const Impairment& imp);

/// A rate alone is tbf's; everything else is netem's (with netem's own rate beside it).
[[nodiscard]] bool needs_netem(const Impairment& imp);

/// The impairment as the kernel reads it back: limits of netem's default (1000) and zero
/// percentages, delays and jitters dropped, since a netem qdisc always carries them.
[[nodiscard]] Impairment canonical(Impairment imp);

/// What labctl gives tbf beside the rate: the bucket (burst, bytes) and the queue (limit,
/// bytes). The bucket holds 10 ms at the rate and at least one frame of the interface's
/// MTU (a larger frame is dropped); the queue holds kTbfLatency at the rate on top.
struct TbfShape {
  uint64_t rate = 0;   ///< Bytes per second.
  uint32_t burst = 0;  ///< Bytes.
  uint32_t limit = 0;  ///< Bytes.
};
inline constexpr std::chrono::milliseconds kTbfLatency{100};
/// `mtu` 0 means the kernel's default, 1500.
[[nodiscard]] TbfShape tbf_shape(uint64_t rate, int mtu = 0);

// tc's spellings of values: exact, and read back by the parse functions to the same value.
/// 1250000 -> "10mbit", 131072 -> "1mibit", 125 -> "1kbit".
[[nodiscard]] std::string format_rate(uint64_t bytes_per_second);
/// 20000000 -> "20ms", 1500000 -> "1500us" (s, ms or us: what every tc reads).
[[nodiscard]] std::string format_time(std::chrono::nanoseconds t);
/// 42949673 -> "1%", 4294967 -> "0.1%" (six significant digits, as tc prints them).
[[nodiscard]] std::string format_percent(Probability p);

/// The `tc` line that applies `imp` as the root qdisc of `dev` in namespace `ns`, for
/// --dry-run: "ip netns exec NS tc qdisc replace dev DEV root netem delay 20ms ..." or
/// "... root tbf rate 10mbit burst 12500 limit 137500"; for an empty impairment the line
/// that clears it (tc_clear_command). `mtu` as for tbf_shape.
[[nodiscard]] std::string tc_command(const std::string& ns, const std::string& dev,
                                     const Impairment& imp, int mtu = 0);
/// "ip netns exec NS tc qdisc del dev DEV root".
[[nodiscard]] std::string tc_clear_command(const std::string& ns, const std::string& dev);

/// One line for status: "10mbit, delay 20ms ±5ms, loss 1%, limit 500" ("" when empty).
[[nodiscard]] std::string impairment_summary(const Impairment& imp);

}  // namespace labctl
