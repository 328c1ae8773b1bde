// Latencies counted in log-linear buckets (as HdrHistogram does): the exact value below
// 2^kSubBits, above it 2^kSubBits buckets per power of two. Every bucket is at most 1/128
// of its values wide, so a percentile read from it (the middle of its bucket) is within
// kRelativeError of the exact one, whatever the number of samples: a load of millions of
// requests needs kilobytes, not a sorted copy of every latency.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace labctl {

class Histogram {
 public:
  static constexpr int kSubBits = 7;
  /// The most a percentile read here can differ from the exact one, relative to it.
  static constexpr double kRelativeError = 1.0 / (2 << kSubBits);

  void record(uint64_t value, uint64_t times = 1);
  void merge(const Histogram& other);

  [[nodiscard]] uint64_t count() const { return count_; }
  [[nodiscard]] uint64_t min() const { return count_ ? min_ : 0; }
  [[nodiscard]] uint64_t max() const { return max_; }
  /// The value at percentile p (0 < p <= 100; nearest rank: the smallest value that at
  /// least p % of the samples are not above), within kRelativeError; 0 when empty. The
  /// exact min and max bound it.
  [[nodiscard]] uint64_t percentile(double p) const;

  /// The buckets that hold samples, as (index, count), for another process to merge
  /// (labagent load's --json); `from_buckets` is the inverse, with the exact min and max.
  [[nodiscard]] std::vector<std::pair<uint32_t, uint64_t>> buckets() const;
  /// False when an index is beyond the largest a uint64_t value can have.
  [[nodiscard]] bool add_buckets(const std::vector<std::pair<uint32_t, uint64_t>>& b, uint64_t min,
                                 uint64_t max);

  /// The bucket of a value, and the smallest value and width of a bucket (pure; tested).
  [[nodiscard]] static uint32_t index_of(uint64_t value);
  [[nodiscard]] static uint64_t lowest_of(uint32_t index);
  [[nodiscard]] static uint64_t width_of(uint32_t index);
  static constexpr uint32_t kBuckets = (64 - kSubBits + 1) << kSubBits;

 private:
  std::vector<uint64_t> counts_;  ///< Grown to the largest index seen.
  uint64_t count_ = 0, min_ = UINT64_MAX, max_ = 0;
};

}  // namespace labctl
