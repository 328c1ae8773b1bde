// The latency histogram (base/histogram.h): buckets that tile every value, and percentiles
// within the stated relative error of the exact ones on known samples, however many.
#include "labctl/base/histogram.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace labctl {
namespace {

// The nearest-rank percentile of a sorted sample, as Histogram::percentile promises.
uint64_t exact(const std::vector<uint64_t>& sorted, double p) {
  const auto rank = std::max<size_t>(1, static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size()))));
  return sorted[rank - 1];
}

void expect_within_bound(std::vector<uint64_t> values) {
  Histogram h;
  for (auto v : values) h.record(v);
  std::sort(values.begin(), values.end());
  for (double p : {0.1, 1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
    const double want = static_cast<double>(exact(values, p));
    const double got = static_cast<double>(h.percentile(p));
    EXPECT_LE(std::abs(got - want), want * Histogram::kRelativeError) << "p" << p << ": " << got << " vs exact " << want;
  }
  EXPECT_EQ(h.min(), values.front());
  EXPECT_EQ(h.max(), values.back());
  EXPECT_EQ(h.count(), values.size());
}

TEST(Histogram, BucketsTileTheValuesWithoutGapsOrOverlap) {
  for (uint32_t i = 0; i + 1 < Histogram::kBuckets; ++i) {
    ASSERT_EQ(Histogram::lowest_of(i) + Histogram::width_of(i), Histogram::lowest_of(i + 1)) << i;
    ASSERT_EQ(Histogram::index_of(Histogram::lowest_of(i)), i);
    ASSERT_EQ(Histogram::index_of(Histogram::lowest_of(i + 1) - 1), i);
    // Every bucket at most 1/128 of its values wide.
    ASSERT_LE(static_cast<double>(Histogram::width_of(i)), std::max(1.0, static_cast<double>(Histogram::lowest_of(i)) / 128));
  }
  EXPECT_EQ(Histogram::index_of(UINT64_MAX), Histogram::kBuckets - 1);
}

TEST(Histogram, SmallValuesAreExact) {
  Histogram h;
  for (uint64_t v = 1; v <= 100; ++v) h.record(v);
  EXPECT_EQ(h.percentile(50), 50u);
  EXPECT_EQ(h.percentile(99), 99u);
  EXPECT_EQ(h.percentile(100), 100u);
  EXPECT_EQ(h.percentile(1), 1u);
}

TEST(Histogram, PercentilesOfAUniformSampleAreWithinTheBound) {
  std::vector<uint64_t> v;
  for (uint64_t i = 1; i <= 200000; ++i) v.push_back(i * 997);
  expect_within_bound(v);
}

TEST(Histogram, PercentilesOfLongTailedSamplesAreWithinTheBound) {
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> lognormal(13.0, 1.5);  // ~0.4 ms median in ns, long tail
  std::vector<uint64_t> v;
  for (int i = 0; i < 100000; ++i) v.push_back(static_cast<uint64_t>(lognormal(rng)) + 1);
  expect_within_bound(v);
  std::exponential_distribution<double> expo(1e-6);
  std::vector<uint64_t> w;
  for (int i = 0; i < 50000; ++i) w.push_back(static_cast<uint64_t>(expo(rng)));
  w.push_back(uint64_t{1} << 50);  // one outlier far out
  expect_within_bound(w);
}

TEST(Histogram, AnEmptyOneSaysZero) {
  Histogram h;
  EXPECT_EQ(h.percentile(99), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.max(), 0u);
}

TEST(Histogram, MergingAndBucketsGiveBackTheSameHistogram) {
  Histogram a, b, all;
  for (uint64_t v = 1; v < 100000; v += 7) (v % 2 ? a : b).record(v * 31), all.record(v * 31);
  Histogram merged = a;
  merged.merge(b);
  Histogram copied;
  ASSERT_TRUE(copied.add_buckets(all.buckets(), all.min(), all.max()));
  for (double p : {1.0, 50.0, 99.0, 100.0}) {
    EXPECT_EQ(merged.percentile(p), all.percentile(p));
    EXPECT_EQ(copied.percentile(p), all.percentile(p));
  }
  EXPECT_EQ(copied.count(), all.count());
  EXPECT_FALSE(copied.add_buckets({{Histogram::kBuckets, 1}}, 0, 0));
}

}  // namespace
}  // namespace labctl
