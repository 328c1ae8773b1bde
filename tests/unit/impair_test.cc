// Impairments (model/impair.h, impair_toml.h): tc's units and spellings read and written,
// the rules between keys, and the loader's reader with every error at its position.
#include "labctl/model/impair.h"

#include <gtest/gtest.h>

#include <limits>

#include "labctl/model/impair_toml.h"
#include "tests/support/impair_print.h"

namespace labctl {
namespace {

using namespace std::chrono_literals;
using std::chrono::nanoseconds;

constexpr uint32_t kAlways = std::numeric_limits<uint32_t>::max();

// ---- values ----------------------------------------------------------------------------

struct RateCase {
  const char* text;
  uint64_t bytes;
};

TEST(ImpairRate, EveryUnitOfTc) {
  const RateCase cases[] = {
      {"8", 1},  // a bare number is bit/s, as tc(8) says
      {"64000", 8000},
      {"8bit", 1},
      {"1kbit", 125},
      {"10mbit", 1250000},
      {"1gbit", 125000000},
      {"1tbit", 125000000000},
      {"1kibit", 128},
      {"1mibit", 131072},
      {"1gibit", 134217728},
      {"1tibit", 137438953472},
      {"1bps", 1},
      {"1kbps", 1000},
      {"1mbps", 1000000},  // megaBYTES, as tc reads it
      {"1gbps", 1000000000},
      {"1tbps", 1000000000000},
      {"1kibps", 1024},
      {"1mibps", 1048576},
      {"1gibps", 1073741824},
      {"1tibps", 1099511627776},
      {"10Mbit", 1250000},  // tc compares suffixes without regard to case
      {"1KiBps", 1024},
      {"1.5mbit", 187500},
      {"0.5kbit", 62},   // 500 bit: tc truncates to whole bytes
      {"1001bit", 125},  // likewise
      {"100gbit", 12500000000},
  };
  for (const auto& c : cases) {
    auto r = parse_rate(c.text);
    ASSERT_TRUE(r) << c.text << ": " << r.error().str();
    EXPECT_EQ(*r, c.bytes) << c.text;
  }
}

struct ErrorCase {
  const char* text;
  const char* message;
  const char* hint;  ///< a part of the hint
};

TEST(ImpairRate, Errors) {
  const ErrorCase cases[] = {
      {"", "is not a rate: ''", "kibit"},
      {"fast", "is not a rate: 'fast'", "e.g. \"10mbit\""},
      {"10mbits", "has an unknown unit 'mbits': '10mbits'", "did you mean 'mbit'?"},
      {"10mb", "has an unknown unit 'mb': '10mb'", "e.g. \"10mbit\""},
      {"-1mbit", "is negative: '-1mbit'", "gbit"},
      {"7bit", "is under 8bit: '7bit'", "\"8bit\""},
      {"0", "is under 8bit: '0'", "\"8bit\""},
      {"99999999999999999999tbit", "has too many digits: '99999999999999999999tbit'", "mbit"},
      {"1844674407370955161tbps", "is too large: '1844674407370955161tbps'", "mbit"},
  };
  for (const auto& c : cases) {
    auto r = parse_rate(c.text);
    ASSERT_FALSE(r) << c.text;
    EXPECT_EQ(r.error().message, c.message);
    EXPECT_NE(r.error().hint.find(c.hint), std::string::npos) << r.error().hint;
  }
}

TEST(ImpairTime, EveryUnitOfTc) {
  const std::pair<const char*, nanoseconds> cases[] = {
      {"1s", 1s},          {"1sec", 1s},      {"2secs", 2s},     {"20ms", 20ms},
      {"20msec", 20ms},    {"20msecs", 20ms}, {"250us", 250us},  {"250usec", 250us},
      {"250usecs", 250us}, {"2000ns", 2us},   {"2000nsec", 2us}, {"2000nsecs", 2us},
      {"1.5ms", 1500us},   {"20MS", 20ms},    {"0.001ms", 1us},  {"0ms", 0ns},
      {"60s", 60s},        {"+5ms", 5ms},
  };
  for (const auto& [text, want] : cases) {
    auto r = parse_time(text);
    ASSERT_TRUE(r) << text << ": " << r.error().str();
    EXPECT_EQ(*r, want) << text;
  }
}

TEST(ImpairTime, Errors) {
  const ErrorCase cases[] = {
      {"20", "has no unit: '20'", "\"20ms\""},
      {"20m", "has an unknown unit 'm': '20m'", "usecs"},
      {"20mss", "has an unknown unit 'mss': '20mss'", "did you mean 'ms'?"},
      {"20 ms", "has an unknown unit ' ms': '20 ms'", "usecs"},
      {"-5ms", "is negative: '-5ms'", "\"20ms\""},
      {"0.5us", "is finer than a microsecond: '0.5us'", "usec"},
      {"100ns", "is finer than a microsecond: '100ns'", "usec"},
      {"0.0001ms", "is finer than a microsecond: '0.0001ms'", "usec"},
      {"soon", "is not a time: 'soon'", "\"20ms\""},
  };
  for (const auto& c : cases) {
    auto r = parse_time(c.text);
    ASSERT_FALSE(r) << c.text;
    EXPECT_EQ(r.error().message, c.message);
    EXPECT_NE(r.error().hint.find(c.hint), std::string::npos) << r.error().hint;
  }
}

TEST(ImpairPercent, AsTcScalesIt) {
  // tc's get_percent: rint(percent / 100 * UINT32_MAX).
  const std::pair<const char*, uint32_t> cases[] = {
      {"1%", 42949673}, {"0.1%", 4294967},    {"25%", 1073741824}, {"100%", kAlways},
      {"0%", 0},        {"50%", 2147483648u}, {"0.0001%", 4295},
  };
  for (const auto& [text, want] : cases) {
    auto r = parse_percent(text);
    ASSERT_TRUE(r) << text << ": " << r.error().str();
    EXPECT_EQ(r->scaled, want) << text;
  }
}

TEST(ImpairPercent, Errors) {
  const ErrorCase cases[] = {
      {"1", "has no '%': '1'", "\"1%\""},
      {"101%", "is over 100%: '101%'", "0% to 100%"},
      {"100.5%", "is over 100%: '100.5%'", "0% to 100%"},
      {"-1%", "is negative: '-1%'", "0% to 100%"},
      {"1 %", "is not a percentage: '1 %'", "0% to 100%"},
      {"1pct", "is not a percentage: '1pct'", "0% to 100%"},
      {"%", "is not a percentage: '%'", "0% to 100%"},
  };
  for (const auto& c : cases) {
    auto r = parse_percent(c.text);
    ASSERT_FALSE(r) << c.text;
    EXPECT_EQ(r.error().message, c.message);
    EXPECT_NE(r.error().hint.find(c.hint), std::string::npos) << r.error().hint;
  }
}

TEST(ImpairLimit, Range) {
  EXPECT_EQ(parse_limit("1000").value(), 1000u);
  EXPECT_EQ(parse_limit("2147483647").value(), 2147483647u);
  EXPECT_EQ(parse_limit("0").error().message, "is out of range 1..2147483647: '0'");
  EXPECT_EQ(parse_limit("2147483648").error().message,
            "is out of range 1..2147483647: '2147483648'");
  EXPECT_EQ(parse_limit("99999999999999999999").error().message,
            "is out of range 1..2147483647: '99999999999999999999'");
  EXPECT_EQ(parse_limit("10k").error().message, "is not a number of packets: '10k'");
}

TEST(ImpairFormat, ExactAndReadBackToTheSameValue) {
  EXPECT_EQ(format_rate(1250000), "10mbit");
  EXPECT_EQ(format_rate(125), "1kbit");
  EXPECT_EQ(format_rate(131072), "1mibit");
  EXPECT_EQ(format_rate(187500), "1500kbit");
  EXPECT_EQ(format_rate(1), "8bit");
  EXPECT_EQ(format_rate(12500000000), "100gbit");
  EXPECT_EQ(format_time(20ms), "20ms");
  EXPECT_EQ(format_time(1500us), "1500us");
  EXPECT_EQ(format_time(60s), "60s");
  EXPECT_EQ(format_time(1us), "1us");
  EXPECT_EQ(format_time(0ns), "0ms");
  EXPECT_EQ(format_percent(Probability{42949673}), "1%");
  EXPECT_EQ(format_percent(Probability{4294967}), "0.1%");
  EXPECT_EQ(format_percent(Probability{kAlways}), "100%");
  EXPECT_EQ(format_percent(Probability{0}), "0%");
  for (uint64_t r :
       {1ull, 7ull, 125ull, 131072ull, 187500ull, 1250000ull, 999999999ull, 12500000000ull})
    EXPECT_EQ(parse_rate(format_rate(r)).value(), r) << r;
  for (nanoseconds t : std::initializer_list<nanoseconds>{1us, 999us, 1500us, 20ms, 59999999us})
    EXPECT_EQ(parse_time(format_time(t)).value(), t) << t.count();
  for (const char* p : {"1%", "0.1%", "25%", "0.0001%", "99.9%"})
    EXPECT_EQ(parse_percent(format_percent(*parse_percent(p))).value(), *parse_percent(p)) << p;
}

// ---- rules and renderings ----------------------------------------------------------------

Impairment full() { return every_key_set(1000); }

TEST(Impairment, SetKeyFromText) {
  Impairment i;
  ASSERT_TRUE(set_impair_key(i, "delay", "50ms"));
  ASSERT_TRUE(set_impair_key(i, "loss", "5%"));
  ASSERT_TRUE(set_impair_key(i, "rate", "10mbit"));
  ASSERT_TRUE(set_impair_key(i, "limit", "500"));
  EXPECT_EQ(i.delay, 50ms);
  EXPECT_EQ(i.loss->scaled, 214748365u);
  EXPECT_EQ(i.rate, 1250000u);
  EXPECT_EQ(i.limit, 500u);
  auto bad = set_impair_key(i, "dealy", "5ms");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().message, "unknown impairment 'dealy'");
  EXPECT_EQ(bad.error().hint, "did you mean 'delay'?");
  auto unit = set_impair_key(i, "jitter", "5");
  ASSERT_FALSE(unit);
  EXPECT_EQ(unit.error().message, "'jitter' has no unit: '5'");
}

TEST(Impairment, RulesBetweenKeys) {
  Impairment i;
  i.jitter = 5ms;
  i.reorder = Probability{1};
  auto p = impairment_problems(i);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].key, "jitter");
  EXPECT_EQ(p[0].message, "needs a 'delay' (above 0)");
  EXPECT_EQ(p[1].key, "reorder");
  i.delay = 0ms;
  EXPECT_EQ(impairment_problems(i).size(), 2u) << "a delay of 0 is no delay";
  i.delay = 61s;
  p = impairment_problems(i);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].key, "delay");
  EXPECT_EQ(p[0].message, "is over 60s: 61s");
  i.delay = 60s;
  i.jitter = 60001ms;
  p = impairment_problems(i);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].key, "jitter");
  EXPECT_TRUE(impairment_problems(full()).empty());
}

TEST(Impairment, RateAloneIsTbfAnythingElseNetem) {
  Impairment i;
  EXPECT_FALSE(needs_netem(i));
  i.rate = 1250000;
  EXPECT_FALSE(needs_netem(i));
  for (const auto& k : impair_keys()) {
    if (k.name == "rate") continue;
    Impairment j = i;
    ASSERT_TRUE(set_impair_key(j, k.name, k.example)) << k.name;
    EXPECT_TRUE(needs_netem(j)) << k.name;
  }
}

TEST(Impairment, CanonicalIsWhatTheKernelReadsBack) {
  Impairment i;
  i.limit = kNetemDefaultLimit;
  i.loss = Probability{0};
  i.delay = 0ms;
  EXPECT_TRUE(canonical(i).empty());
  EXPECT_EQ(canonical(full()).limit, std::nullopt);
  EXPECT_EQ(canonical(full()).loss, full().loss);
}

TEST(Impairment, TbfShape) {
  // 10 ms of the rate, at least one frame of the MTU; plus 100 ms of queue.
  TbfShape s = tbf_shape(1250000);
  EXPECT_EQ(s.burst, 12500u);
  EXPECT_EQ(s.limit, 137500u);
  s = tbf_shape(125000);
  EXPECT_EQ(s.burst, 1514u);
  EXPECT_EQ(s.limit, 14014u);
  EXPECT_EQ(tbf_shape(125000, 9000).burst, 9014u);
  s = tbf_shape(uint64_t{1} << 50);  // beyond u32: saturated, never wrapped
  EXPECT_EQ(s.burst, kAlways);
  EXPECT_EQ(s.limit, kAlways);
}

TEST(Impairment, TcCommandForDryRun) {
  EXPECT_EQ(tc_command("lab-a", "eth0", full()),
            "ip netns exec lab-a tc qdisc replace dev eth0 root netem limit 1000 delay 20ms 5ms "
            "loss 1% duplicate 0.1% corrupt 0.1% reorder 25% rate 10mbit");
  Impairment rate;
  rate.rate = 1250000;
  EXPECT_EQ(tc_command("lab-a", "eth0", rate),
            "ip netns exec lab-a tc qdisc replace dev eth0 root tbf rate 10mbit burst 12500 limit "
            "137500");
  EXPECT_EQ(tc_command("lab-a", "eth0", rate, 9000),
            "ip netns exec lab-a tc qdisc replace dev eth0 root tbf rate 10mbit burst 12500 limit "
            "137500");
  rate.rate = 125000;
  EXPECT_EQ(
      tc_command("lab-a", "eth0", rate, 9000),
      "ip netns exec lab-a tc qdisc replace dev eth0 root tbf rate 1mbit burst 9014 limit 21514");
  Impairment loss;
  loss.loss = Probability{42949673};
  EXPECT_EQ(tc_command("lab-a", "eth0", loss),
            "ip netns exec lab-a tc qdisc replace dev eth0 root netem loss 1%");
  EXPECT_EQ(tc_command("lab-a", "eth0", Impairment{}),
            "ip netns exec lab-a tc qdisc del dev eth0 root");
}

TEST(Impairment, Summary) {
  EXPECT_EQ(
      impairment_summary(full()),
      "10mbit, delay 20ms ±5ms, loss 1%, duplicate 0.1%, corrupt 0.1%, reorder 25%, limit 1000");
  Impairment i;
  EXPECT_EQ(impairment_summary(i), "");
  i.delay = 20ms;
  i.loss = Probability{42949673};
  EXPECT_EQ(impairment_summary(i), "delay 20ms, loss 1%");
}

// ---- the loader's reader ---------------------------------------------------------------

struct Parsed {
  std::optional<Impairment> imp;
  std::vector<Diagnostic> diags;
};

Parsed read(const std::string& text) {
  toml::table root = toml::parse(std::string_view(text), std::string_view("t.toml"));
  topo::Reporter r("t.toml");
  const toml::node* n = root.get("impair");
  EXPECT_NE(n, nullptr);
  Parsed p;
  p.imp = topo::parse_impairment(*n, "interface a:eth0", r, Pos{1, 1});
  p.diags = r.take();
  return p;
}

TEST(ImpairToml, EveryKey) {
  Parsed p = read(
      R"(impair = { rate = "10mbit", delay = "20ms", jitter = "5ms", loss = "1%", duplicate = "0.1%", corrupt = "0.1%", reorder = "25%", limit = 1000 })");
  ASSERT_TRUE(p.diags.empty()) << p.diags[0].message;
  ASSERT_TRUE(p.imp);
  EXPECT_EQ(*p.imp, full());
}

TEST(ImpairToml, RateAsAnIntegerIsBitsPerSecond) {
  Parsed p = read("impair = { rate = 64000 }");
  ASSERT_TRUE(p.imp);
  EXPECT_EQ(p.imp->rate, 8000u);
}

TEST(ImpairToml, TableForm) {
  Parsed p = read("[impair]\ndelay = \"20ms\"\nloss = \"2%\"\n");
  ASSERT_TRUE(p.imp);
  EXPECT_EQ(p.imp->delay, 20ms);
  p = read("[impair]\ndelay = \"20\"\n");
  ASSERT_EQ(p.diags.size(), 1u);
  EXPECT_EQ(p.diags[0].line, 2);
  EXPECT_EQ(p.diags[0].col, 9);
}

struct TomlErrorCase {
  const char* text;  ///< one line
  const char* at;    ///< where in it the error points (its first occurrence)
  const char* message;
  const char* hint;  ///< a part of the hint
};

TEST(ImpairToml, EveryErrorAtItsPosition) {
  const TomlErrorCase cases[] = {
      {R"(impair = { dealy = "20ms" })", "dealy",
       "unknown key 'dealy' in impair of interface a:eth0", "did you mean 'delay'?"},
      {R"(impair = { bandwidth = "1mbit" })", "bandwidth",
       "unknown key 'bandwidth' in impair of interface a:eth0",
       "known keys: rate, delay, jitter, loss, duplicate, corrupt, reorder, limit"},
      {R"(impair = { delay = "20mss" })", "\"20mss\"",
       "'delay' in impair of interface a:eth0 has an unknown unit 'mss': '20mss'",
       "did you mean 'ms'?"},
      {R"(impair = { rate = "10mbits" })", "\"10mbits\"",
       "'rate' in impair of interface a:eth0 has an unknown unit 'mbits': '10mbits'",
       "did you mean 'mbit'?"},
      {R"(impair = { delay = "20" })", "\"20\"",
       "'delay' in impair of interface a:eth0 has no unit: '20'", "\"20ms\""},
      {R"(impair = { loss = "-1%" })", "\"-1%\"",
       "'loss' in impair of interface a:eth0 is negative: '-1%'", "0% to 100%"},
      {R"(impair = { duplicate = "101%" })", "\"101%\"",
       "'duplicate' in impair of interface a:eth0 is over 100%: '101%'", "0% to 100%"},
      {R"(impair = { corrupt = "1" })", "\"1\"",
       "'corrupt' in impair of interface a:eth0 has no '%': '1'", "\"1%\""},
      {R"(impair = { jitter = "5ms" })", "\"5ms\"",
       "'jitter' in impair of interface a:eth0 needs a 'delay' (above 0)", "delay = \"20ms\""},
      {R"(impair = { delay = "0ms", jitter = "5ms" })", "\"5ms\"",
       "'jitter' in impair of interface a:eth0 needs a 'delay' (above 0)", "delay = \"20ms\""},
      {R"(impair = { reorder = "25%" })", "\"25%\"",
       "'reorder' in impair of interface a:eth0 needs a 'delay' (above 0)", "wait out the delay"},
      {R"(impair = { delay = "61s" })", "\"61s\"",
       "'delay' in impair of interface a:eth0 is over 60s: 61s", "at most \"60s\""},
      {R"(impair = { delay = "1s", jitter = "2min" })", "\"2min\"",
       "'jitter' in impair of interface a:eth0 has an unknown unit 'min': '2min'", "e.g. \"20ms\""},
      {R"(impair = { rate = "7bit" })", "\"7bit\"",
       "'rate' in impair of interface a:eth0 is under 8bit: '7bit'", "\"8bit\""},
      {R"(impair = { rate = 7 })", "7", "'rate' in impair of interface a:eth0 is under 8bit: '7'",
       "\"8bit\""},
      {R"(impair = { rate = -5 })", "-5", "'rate' in impair of interface a:eth0 is negative: -5",
       "kbit"},
      {R"(impair = { rate = 1.5 })", "1.5",
       "'rate' in impair of interface a:eth0 must be a string or an integer (bit/s), not a float",
       "rate = \"10mbit\""},
      {R"(impair = { limit = 0 })", "0",
       "'limit' in impair of interface a:eth0 is out of range 1..2147483647: 0", "default is 1000"},
      {R"(impair = { limit = 3000000000 })", "3000000000",
       "'limit' in impair of interface a:eth0 is out of range 1..2147483647: 3000000000",
       "default is 1000"},
      {R"(impair = { limit = "1000" })", "\"1000\"",
       "'limit' in impair of interface a:eth0 must be an integer, not a string", "without quotes"},
      {R"(impair = { delay = 20 })", "20",
       "'delay' in impair of interface a:eth0 must be a string with a unit, not an integer",
       "delay = \"20ms\""},
      {R"(impair = { loss = 0.01 })", "0.01",
       "'loss' in impair of interface a:eth0 must be a string with '%', not a float",
       "loss = \"1%\""},
      {R"(impair = "20ms")", "\"20ms\"",
       "'impair' of interface a:eth0 must be a table, not a string", "impair = { delay = \"20ms\""},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    Parsed p = read(c.text);
    EXPECT_FALSE(p.imp);
    ASSERT_EQ(p.diags.size(), 1u) << (p.diags.empty()
                                          ? "none"
                                          : p.diags[0].message + " / " + p.diags.back().message);
    const Diagnostic& d = p.diags[0];
    EXPECT_EQ(d.severity, Diagnostic::Severity::Error);
    EXPECT_EQ(d.file, "t.toml");
    EXPECT_EQ(d.line, 1);
    EXPECT_EQ(d.col, static_cast<int>(std::string_view(c.text).find(c.at)) + 1);
    EXPECT_EQ(d.message, c.message);
    EXPECT_NE(d.hint.find(c.hint), std::string::npos) << d.hint;
  }
}

TEST(ImpairToml, AllErrorsAtOnce) {
  Parsed p = read(R"(impair = { delay = "20", loss = "200%", bogus = 1, jitter = "1ms" })");
  EXPECT_FALSE(p.imp);
  // delay unreadable, so jitter has no delay either: four errors, in the order written.
  ASSERT_EQ(p.diags.size(), 4u);
  EXPECT_NE(p.diags[0].message.find("'delay'"), std::string::npos);
  EXPECT_NE(p.diags[1].message.find("'loss'"), std::string::npos);
  EXPECT_NE(p.diags[2].message.find("'bogus'"), std::string::npos);
  EXPECT_NE(p.diags[3].message.find("'jitter'"), std::string::npos);
}

TEST(ImpairToml, AnEmptyTableIsAWarning) {
  Parsed p = read("impair = {}");
  EXPECT_FALSE(p.imp);
  ASSERT_EQ(p.diags.size(), 1u);
  EXPECT_EQ(p.diags[0].severity, Diagnostic::Severity::Warning);
  EXPECT_EQ(p.diags[0].message, "impair of interface a:eth0 is empty: nothing is impaired");
}

}  // namespace
}  // namespace labctl
