// Unit-test helper: a load's diagnostics as labctl prints them, one line each, for
// EXPECT_THAT(..., HasSubstr(...)) and failure messages.
#pragma once

#include <string>

#include "labctl/model/load.h"

namespace labctl::test {

inline std::string diagnostics_text(const LoadResult& r) {
  std::string s;
  for (const auto& d : r.diagnostics) s += format_diagnostic(d) + "\n";
  return s;
}

}  // namespace labctl::test
