// Bounds of the measuring checks (model/bounds.h): parsing in tc's units, judging, the
// figures' spelling and nearest-rank percentiles.
#include "labctl/model/bounds.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace labctl {
namespace {

using ::testing::HasSubstr;

TEST(Bounds, OneOrTwoSidesInTcUnits) {
  auto b = parse_bounds(">= 40ms", Measure::Time);
  ASSERT_TRUE(b) << b.error().str();
  EXPECT_DOUBLE_EQ(*b->at_least, 0.040);
  EXPECT_FALSE(b->at_most);
  b = parse_bounds(" >= 40ms ,<=60ms ", Measure::Time);
  ASSERT_TRUE(b) << b.error().str();
  EXPECT_DOUBLE_EQ(*b->at_least, 0.040);
  EXPECT_DOUBLE_EQ(*b->at_most, 0.060);
  b = parse_bounds("<= 1.5s", Measure::Time);
  ASSERT_TRUE(b);
  EXPECT_DOUBLE_EQ(*b->at_most, 1.5);
  b = parse_bounds(">= 8.5mbit, <= 1.5mbps", Measure::Rate);  // mbps is megabytes, as in tc
  ASSERT_TRUE(b) << b.error().str();
  EXPECT_DOUBLE_EQ(*b->at_least, 8.5e6);
  EXPECT_DOUBLE_EQ(*b->at_most, 12e6);
  b = parse_bounds("<= 5%", Measure::Share);
  ASSERT_TRUE(b);
  EXPECT_NEAR(*b->at_most, 0.05, 1e-9);
}

TEST(Bounds, EveryWrongFormSaysWhatAndGivesTheForms) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "is empty"},
      {"40ms", "does not start with >= or <="},
      {"> 40ms", "does not start with >= or <="},
      {">= 40", "has no unit"},
      {">= 4min", "unknown unit"},
      {">= 40ms, >= 50ms", "two >= bounds"},
      {">= 60ms, <= 40ms", "nothing can pass"},
      {">= 1ms, <= 2ms, <= 3ms", "more than two bounds"},
      {">= 1ms,", "does not start with >= or <="},
  };
  for (const auto& [text, why] : bad) {
    auto b = parse_bounds(text, Measure::Time);
    ASSERT_FALSE(b) << text;
    EXPECT_THAT(b.error().message, HasSubstr(why)) << text;
    EXPECT_THAT(b.error().hint, HasSubstr(">= 40ms, <= 60ms")) << text;
  }
  EXPECT_THAT(parse_bounds("<= 5", Measure::Share).error().message, HasSubstr("no '%'"));
  EXPECT_THAT(parse_bounds("<= 101%", Measure::Share).error().message, HasSubstr("over 100%"));
  EXPECT_THAT(parse_bounds(">= 10mbits", Measure::Rate).error().hint, HasSubstr("mbit"));
}

TEST(Bounds, AMissSaysWhichFigureAndWhichBound) {
  auto b = parse_bounds(">= 40ms, <= 60ms", Measure::Time);
  ASSERT_TRUE(b);
  EXPECT_EQ(bounds_miss("p50", 0.050, *b, Measure::Time), "");
  EXPECT_EQ(bounds_miss("p50", 0.040, *b, Measure::Time), "") << "bounds are inclusive";
  EXPECT_EQ(bounds_miss("p50", 0.0716, *b, Measure::Time), "p50 71.6ms is not <= 60ms");
  EXPECT_EQ(bounds_miss("min", 0.000812, *b, Measure::Time), "min 812us is not >= 40ms");
  auto r = parse_bounds(">= 8mbit", Measure::Rate);
  ASSERT_TRUE(r);
  EXPECT_EQ(bounds_miss("rate", 7.61e6, *r, Measure::Rate), "rate 7.61mbit is not >= 8mbit");
  auto s = parse_bounds("<= 5%", Measure::Share);
  ASSERT_TRUE(s);
  EXPECT_EQ(bounds_miss("loss", 0.125, *s, Measure::Share), "loss 12.5% is not <= 5%");
}

TEST(Bounds, FiguresInTheirUnits) {
  EXPECT_EQ(format_measure(1.25, Measure::Time), "1.25s");
  EXPECT_EQ(format_measure(0.0509, Measure::Time), "50.9ms");
  EXPECT_EQ(format_measure(0.000045, Measure::Time), "45us");
  EXPECT_EQ(format_measure(9.52e6, Measure::Rate), "9.52mbit");
  EXPECT_EQ(format_measure(1.2e9, Measure::Rate), "1.2gbit");
  EXPECT_EQ(format_measure(950e3, Measure::Rate), "950kbit");
  EXPECT_EQ(format_measure(0, Measure::Share), "0%");
}

TEST(Percentile, NearestRank) {
  const std::vector<double> v = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
  EXPECT_EQ(percentile(v, 50), 5);
  EXPECT_EQ(percentile(v, 90), 9);
  EXPECT_EQ(percentile(v, 99), 10);
  EXPECT_EQ(percentile(v, 100), 10);
  EXPECT_EQ(percentile(v, 1), 1);
  EXPECT_EQ(percentile({7}, 50), 7);
  const std::vector<double> odd = {1, 2, 3};
  EXPECT_EQ(percentile(odd, 50), 2);  // rank ceil(1.5) = 2
}

}  // namespace
}  // namespace labctl
