#include "labctl/base/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace labctl {

namespace {
constexpr uint64_t kSub = uint64_t{1} << Histogram::kSubBits;
}

// Values below kSub have a bucket each. Above, a value whose top bit is bit m (m >= kSubBits)
// is shifted right by s = m - kSubBits, leaving kSubBits + 1 significant bits: a number in
// [kSub, 2 kSub). Bucket (s + 1) kSub + (that - kSub) holds it, 2^s wide.
uint32_t Histogram::index_of(uint64_t value) {
  if (value < kSub) return static_cast<uint32_t>(value);
  const int s = std::bit_width(value) - 1 - kSubBits;
  return static_cast<uint32_t>((static_cast<uint64_t>(s) + 1) * kSub + ((value >> s) - kSub));
}

uint64_t Histogram::lowest_of(uint32_t index) {
  if (index < kSub) return index;
  const uint64_t s = index / kSub - 1;
  return (kSub + index % kSub) << s;
}

uint64_t Histogram::width_of(uint32_t index) {
  return index < kSub ? 1 : uint64_t{1} << (index / kSub - 1);
}

void Histogram::record(uint64_t value, uint64_t times) {
  if (times == 0) return;
  const uint32_t i = index_of(value);
  if (i >= counts_.size()) counts_.resize(i + 1);
  counts_[i] += times;
  count_ += times;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
}

void Histogram::merge(const Histogram& other) {
  if (other.counts_.size() > counts_.size()) counts_.resize(other.counts_.size());
  for (size_t i = 0; i < other.counts_.size(); ++i) counts_[i] += other.counts_[i];
  count_ += other.count_;
  if (other.count_) {
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
  }
}

uint64_t Histogram::percentile(double p) const {
  if (count_ == 0) return 0;
  p = std::clamp(p, 0.0, 100.0);
  const auto rank = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_))));
  uint64_t seen = 0;
  for (uint32_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen < rank) continue;
    // The middle of the bucket: at most half its width from any value in it.
    const uint64_t mid = lowest_of(i) + (width_of(i) - 1) / 2;
    return std::clamp(mid, min_, max_);
  }
  return max_;
}

std::vector<std::pair<uint32_t, uint64_t>> Histogram::buckets() const {
  std::vector<std::pair<uint32_t, uint64_t>> out;
  for (uint32_t i = 0; i < counts_.size(); ++i)
    if (counts_[i]) out.emplace_back(i, counts_[i]);
  return out;
}

bool Histogram::add_buckets(const std::vector<std::pair<uint32_t, uint64_t>>& b, uint64_t min, uint64_t max) {
  uint64_t added = 0;
  for (const auto& [i, n] : b) {
    if (i >= kBuckets) return false;
    if (i >= counts_.size()) counts_.resize(i + 1);
    counts_[i] += n;
    added += n;
  }
  if (added) {
    count_ += added;
    min_ = std::min(min_, min);
    max_ = std::max(max_, max);
  }
  return true;
}

}  // namespace labctl
