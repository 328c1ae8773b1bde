// The one statistic every benchmark here reports: the median of its runs (the upper middle
// one of an even count), 0 for none.
#pragma once

#include <algorithm>
#include <vector>

namespace labctl {

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace labctl
