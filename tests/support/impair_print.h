// gtest prints an Impairment as its summary ("10mbit, delay 20ms ±5ms") instead of its bytes;
// and the impairment the unit tests share: every key set.
#pragma once

#include <chrono>
#include <cstdint>
#include <ostream>

#include "labctl/model/impair.h"

namespace labctl {

inline void PrintTo(const Impairment& i, std::ostream* os) {
  *os << "{" << impairment_summary(i) << "}";
}

/// 10mbit, delay 20ms ±5ms, loss 1%, duplicate 0.1%, corrupt 0.1%, reorder 25%, `limit` packets.
inline Impairment every_key_set(uint32_t limit) {
  using namespace std::chrono_literals;
  Impairment i;
  i.rate = 1250000;
  i.delay = 20ms;
  i.jitter = 5ms;
  i.loss = Probability{42949673};
  i.duplicate = Probability{4294967};
  i.corrupt = Probability{4294967};
  i.reorder = Probability{1073741824};
  i.limit = limit;
  return i;
}

}  // namespace labctl
