// gtest prints an Impairment as its summary ("10mbit, delay 20ms ±5ms") instead of its bytes.
#pragma once

#include <ostream>

#include "labctl/model/impair.h"

namespace labctl {

inline void PrintTo(const Impairment& i, std::ostream* os) {
  *os << "{" << impairment_summary(i) << "}";
}

}  // namespace labctl
