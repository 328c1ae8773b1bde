// director-bytes' pure half: what a run of GETs through a service saw (the body bytes the
// client received, how far the director's IPVS totals moved meanwhile), judged against the
// check's share bounds and told as the lesson. The run half (director_bytes.cc) gathers it.
#pragma once

#include <cstdint>
#include <string>

#include "labctl/checks/checks.h"
#include "labctl/kernel/ipvs.h"
#include "labctl/model/topology.h"

namespace labctl::check_kind {

/// What a director-bytes check saw.
struct DirectorBytesSeen {
  int planned = 0;    ///< GETs it meant to send (`requests`).
  int answered = 0;   ///< GETs read to their end.
  uint64_t body = 0;  ///< Body bytes the client received, those of a failed GET included.
  std::string error;  ///< Why GET answered+1 failed; "" when none did.
  IpvsStats moved;    ///< The director's totals after minus before: connections, packets, bytes.
};

/// The verdict: every GET answered, and the director's bytes out and in, as shares of the
/// body bytes, within the check's `out` and `in` bounds (those it has).
[[nodiscard]] CheckResult judge_director_bytes(const Check& c, const DirectorBytesSeen& s);

}  // namespace labctl::check_kind
