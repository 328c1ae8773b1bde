// labctl measure's pure half: the options' bounds, targets and rounds, labagent load's JSON, the side-by-side table, JSON and gnuplot script;
// and the built CLI refusing bad values before anything runs (no root needed).
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "labctl/base/file.h"
#include "labctl/base/histogram.h"
#include "labctl/kernel/process.h"
#include "labctl/measure/measure.h"
#include "labctl/measure/report.h"
#include "labctl/model/load.h"

namespace labctl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(MeasureOptions, EveryBoundIsCheckedWithItsRange) {
  MeasureOptions ok;
  EXPECT_TRUE(check_measure_options(ok));
  auto refused = [](MeasureOptions o) {
    Status st = check_measure_options(o);
    return st ? std::string("accepted") : st.error().message;
  };
  MeasureOptions o;
  o.concurrency = 0;
  EXPECT_EQ(refused(o), "--concurrency 0 is out of range 1..256");
  o.concurrency = 257;
  EXPECT_EQ(refused(o), "--concurrency 257 is out of range 1..256");
  o = {};
  o.requests = 0;
  EXPECT_EQ(refused(o), "--requests 0 is out of range 1..100000000");
  o.requests = 100000000;
  EXPECT_TRUE(check_measure_options(o));
  o = {};
  o.seconds = 0.05;
  EXPECT_EQ(refused(o), "--seconds 0.05 is out of range 0.1..3600");
  o.seconds = std::nan("");
  EXPECT_THAT(refused(o), HasSubstr("out of range 0.1..3600"));
  o = {};
  o.rate = 0;
  EXPECT_EQ(refused(o), "--rate 0 is out of range 1..1000000");
  o = {};
  o.rounds = 101;
  EXPECT_EQ(refused(o), "--rounds 101 is out of range 1..100");
  o = {};
  o.requests = 10;
  o.seconds = 1;
  EXPECT_EQ(refused(o), "give --requests or --seconds, not both");
  o = {};
  o.seconds = 1;
  o.rounds = 20;
  EXPECT_THAT(refused(o), HasSubstr("leave 0.05 s a round"));
}

TEST(MeasureRounds, TheLoadIsSharedEvenlyOverTheRounds) {
  MeasureOptions o;
  o.requests = 10;
  o.rounds = 3;
  EXPECT_EQ(rounds_of(o), 3);
  EXPECT_EQ(round_load(o, 0).requests, 4);
  EXPECT_EQ(round_load(o, 1).requests, 3);
  EXPECT_EQ(round_load(o, 2).requests, 3);
  o.requests = 2;
  EXPECT_EQ(rounds_of(o), 2) << "at most one round per request";
  o = {};
  o.seconds = 9;
  EXPECT_DOUBLE_EQ(round_load(o, 1).seconds, 3);
  EXPECT_FALSE(round_load(o, 1).requests);
  o = {};
  EXPECT_DOUBLE_EQ(round_load(o, 0).seconds, MeasureBounds::kDefaultSeconds / 3);
}

TEST(MeasureRounds, LabagentLoadIsAskedForExactlyTheRound) {
  MeasureOptions o;
  o.concurrency = 4;
  MeasureTarget t{"web", "http://10.0.0.1:80/", "dir"};
  EXPECT_THAT(load_argv("/x/labagent", o, t, RoundLoad{5, 3600}),
              ElementsAre("/x/labagent", "load", "--json", "--target", "http://10.0.0.1:80/", "--count", "5", "--concurrency",
                          "4", "--seconds", "3600", "--keep-alive"));
  o.new_connections = true;
  o.rate = 250;
  EXPECT_THAT(load_argv("labagent", o, t, RoundLoad{std::nullopt, 2.5}),
              ElementsAre("labagent", "load", "--json", "--target", "http://10.0.0.1:80/", "--count", "100000000",
                          "--concurrency", "4", "--seconds", "2.5", "--rate", "250"));
}

Topology nat_demo() {
  auto r = load_topology("nat-demo");
  EXPECT_TRUE(r.ok());
  return *r.topology;
}

TEST(MeasurePlan, TargetsAreServicesUrlsOrAddresses) {
  const Topology t = nat_demo();
  auto p = plan_measure(t, {});
  ASSERT_TRUE(p) << p.error().str();
  EXPECT_EQ(p->from, "client") << "the node the lab's checks of the service send from";
  ASSERT_EQ(p->targets.size(), 1u);
  EXPECT_EQ(p->targets[0].label, "web");
  EXPECT_EQ(p->targets[0].url, "http://192.168.10.100/");
  EXPECT_EQ(p->targets[0].director, "director");

  MeasureOptions o;
  o.targets = {"web", "10.20.0.11:80", "http://192.168.10.100/index"};
  o.from = "director";
  p = plan_measure(t, o);
  ASSERT_TRUE(p) << p.error().str();
  EXPECT_EQ(p->from, "director");
  ASSERT_EQ(p->targets.size(), 3u);
  EXPECT_EQ(p->targets[1].url, "http://10.20.0.11/");
  EXPECT_EQ(p->targets[1].director, "");
  EXPECT_EQ(p->targets[2].url, "http://192.168.10.100/index");
  EXPECT_EQ(p->targets[2].director, "director") << "an address that is a service's VIP and port";
}

TEST(MeasurePlan, AnUnknownTargetOrNodeSaysWhatThereIs) {
  const Topology t = nat_demo();
  MeasureOptions o;
  o.targets = {"wbe"};
  auto p = plan_measure(t, o);
  ASSERT_FALSE(p);
  EXPECT_THAT(p.error().message, HasSubstr("target wbe is no service of lab nat-demo"));
  EXPECT_THAT(p.error().hint, HasSubstr("its services: web"));
  o.targets = {};
  o.from = "nobody";
  p = plan_measure(t, o);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error().message, "lab nat-demo has no node nobody");
  EXPECT_THAT(p.error().hint, HasSubstr("client"));
}

constexpr const char* kAgentJson =
    R"({"answered":90,"body_bytes":9000,"connections":8,"cpu_seconds":0.25,"errors":{"refused":4,"http 503":6},)"
    R"("interrupted":0,"latency_ns":{"buckets":[[100,40],[1000,50]],"count":90,"max":3000000,"min":100},)"
    R"("requests":100,"seconds":2.0,"served":{"rs1":60,"rs2":30},"stopped":false})";

TEST(MeasureLoadJson, TheAgentsLineIsRead) {
  auto f = parse_load_json(std::string("a warning first\n") + kAgentJson + "\n");
  ASSERT_TRUE(f) << f.error().str();
  EXPECT_EQ(f->answered, 90u);
  EXPECT_EQ(f->failed(), 10u);
  EXPECT_EQ(f->errors.at("http 503"), 6u);
  EXPECT_EQ(f->served.at("rs1"), 60u);
  EXPECT_EQ(f->latency.count(), 90u);
  EXPECT_EQ(f->latency.max(), 3000000u);
  auto bad = parse_load_json(R"({"answered":1})");
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().message, HasSubstr("lacks a field"));
  EXPECT_FALSE(parse_load_json("labagent: bad target"));
}

MeasureReport two_targets() {
  MeasureReport r;
  r.lab = "nat-vs-dr";
  r.from = "client";
  r.options.seconds = 4;
  r.options.rounds = 2;
  r.rounds_done = r.rounds_planned = 4;
  for (int k = 0; k < 2; ++k) {
    TargetResult x;
    x.target = {k == 0 ? "nat" : "dr", k == 0 ? "http://10.0.0.100:80/" : "http://10.0.0.101:80/", "director"};
    x.rounds = 2;
    x.load.answered = k == 0 ? 1000 : 2000;
    x.load.requests = x.load.answered;
    x.load.seconds = 4;
    x.load.body_bytes = x.load.answered * 1000;
    x.load.connections = 8;
    for (uint64_t i = 1; i <= 100; ++i) x.load.latency.record(i * 1000000 * (k + 1));
    if (k == 1) x.load.errors["refused"] = 3;
    x.directors["director"] = {16, 3000, k == 0 ? 2900u : 0u, 200000, k == 0 ? 2100000u : 0u};
    x.nodes["client"] = {0, 8, 8, 0, 0.5};
    x.nodes["rs1"] = {8, 0, 8, 0, 0.25};
    r.results.push_back(std::move(x));
  }
  return r;
}

TEST(MeasureReport, TheTableShowsTargetsSideBySideWithRatiosToTheFirst) {
  const std::string t = measure_table(two_targets());
  EXPECT_THAT(t, HasSubstr("labctl measure nat-vs-dr from client: keep-alive, concurrency 8, 4 s per target, 2 rounds each"));
  EXPECT_THAT(t, testing::ContainsRegex("\nrequests/s +250 +500 \\(x2\\.00\\)\n"));
  EXPECT_THAT(t, testing::ContainsRegex("\nbody bits/s +2mbit +4mbit \\(x2\\.00\\)\n"));
  EXPECT_THAT(t, testing::ContainsRegex("\nerrors +0 +refused 3\n"));
  // 50 ms and 100 ms as the histogram reads them (the middle of their buckets, within 0.39 %).
  EXPECT_THAT(t, testing::ContainsRegex("\nlatency p50 +49\\.9ms +99\\.9ms \\(x2\\.00\\)\n"));
  EXPECT_THAT(t, testing::ContainsRegex("\nlatency max +100ms +200ms \\(x2\\.00\\)\n")) << "the exact max";
  EXPECT_THAT(t, testing::ContainsRegex("\ndirector IPVS out +2 MiB +0 B \\(x0\\.00\\)\n"));
  EXPECT_THAT(t, testing::ContainsRegex("\nrs1 TCP opens +0 active, 8 passive +0 active, 8 passive\n"));
  EXPECT_THAT(t, Not(HasSubstr("interrupted")));
  MeasureReport cut = two_targets();
  cut.interrupted = true;
  cut.rounds_done = 3;
  EXPECT_THAT(measure_table(cut), HasSubstr("interrupted in round 4 of 4"));
}

TEST(MeasureReport, TheJsonHasEveryFigure) {
  const auto j = measure_json(two_targets());
  EXPECT_EQ(j["lab"], "nat-vs-dr");
  EXPECT_EQ(j["options"]["seconds"], 4);
  EXPECT_TRUE(j["options"]["rate"].is_null());
  ASSERT_EQ(j["targets"].size(), 2u);
  const auto& dr = j["targets"][1];
  EXPECT_EQ(dr["name"], "dr");
  EXPECT_DOUBLE_EQ(dr["requests_per_second"].get<double>(), 500);
  EXPECT_DOUBLE_EQ(dr["body_bits_per_second"].get<double>(), 4e6);
  EXPECT_DOUBLE_EQ(dr["ratio_to_first"]["requests_per_second"].get<double>(), 2);
  EXPECT_EQ(dr["errors"]["refused"], 3);
  EXPECT_EQ(dr["directors"]["director"]["outbytes"], 0);
  EXPECT_EQ(j["targets"][0]["directors"]["director"]["outbytes"], 2100000);
  EXPECT_EQ(dr["nodes"]["rs1"]["passive_opens"], 8);
  EXPECT_NEAR(dr["latency_seconds"]["p99"].get<double>(), 0.198, 0.198 * Histogram::kRelativeError);
  EXPECT_DOUBLE_EQ(dr["latency_seconds"]["max"].get<double>(), 0.2);
}

TEST(MeasureReport, TheProgressLineNamesEachMeasuredTarget) {
  MeasureReport r = two_targets();
  r.rounds_done = 3;
  EXPECT_EQ(progress_line(r),
            "round 3/4: nat: 250 req/s, 2mbit, p99 98.8ms, 0 errors; dr: 500 req/s, 4mbit, p99 198ms, 3 errors");
}

TEST(MeasureReport, TheGnuplotScriptQuotesWhatUsersNamed) {
  MeasureReport r = two_targets();
  r.results[0].target.label = "a \"b\"\nc";
  const PlotFiles f = gnuplot_files(r, "/tmp/it's/data", "out's.svg");
  EXPECT_THAT(f.data, HasSubstr("\"a _b__c\" 250.000 2.000"));
  EXPECT_THAT(f.data, HasSubstr("\"dr\" 500.000 4.000 0.191 0.000"));
  EXPECT_THAT(f.script, HasSubstr("set output 'out''s.svg'\n"));
  EXPECT_THAT(f.script, HasSubstr("plot '/tmp/it''s/data' using 2:xtic(1)"));
  EXPECT_THAT(f.script, HasSubstr("set terminal svg"));
}

// write_svg with PATH pointing where no gnuplot is, then (when the machine has one) with
// gnuplot itself.
class MeasureSvg : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/measure-svg-test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    if (const char* p = std::getenv("PATH")) path_ = p;
  }
  void TearDown() override {
    ::setenv("PATH", path_.c_str(), 1);
    std::filesystem::remove_all(dir_);
  }
  std::string dir_, path_;
};

TEST_F(MeasureSvg, WithoutGnuplotTheDataAndScriptAreWrittenWithHowToRenderThem) {
  ::setenv("PATH", dir_.c_str(), 1);
  std::string note;
  const std::string svg = dir_ + "/out.svg";
  ASSERT_TRUE(write_svg(two_targets(), svg, note));
  EXPECT_FALSE(std::filesystem::exists(svg));
  EXPECT_THAT(note, HasSubstr("gnuplot is not installed (Debian: apt-get install gnuplot-nox)"));
  EXPECT_THAT(note, HasSubstr("cd " + dir_ + " && gnuplot out.svg.gp"));
  EXPECT_THAT(read_text(svg + ".gp"), HasSubstr("set output 'out.svg'"));
  EXPECT_THAT(read_text(svg + ".gp"), HasSubstr("plot 'out.svg.dat' using 2:xtic(1)"));
  EXPECT_THAT(read_text(svg + ".dat"), HasSubstr("\"dr\" 500.000"));
}

TEST_F(MeasureSvg, GnuplotDrawsThePicture) {
  if (!resolve_program("gnuplot")) GTEST_SKIP() << "no gnuplot here (Debian: gnuplot-nox)";
  std::string note;
  const std::string svg = dir_ + "/out.svg";
  auto st = write_svg(two_targets(), svg, note);
  ASSERT_TRUE(st) << st.error().str();
  EXPECT_EQ(note, "");
  const std::string text = read_text(svg);
  EXPECT_THAT(text, HasSubstr("<svg"));
  EXPECT_THAT(text, HasSubstr("throughput (requests/s)"));
  EXPECT_THAT(text, HasSubstr("bytes through the directors (MiB)"));
  EXPECT_FALSE(std::filesystem::exists(svg + ".gp")) << "its script stays in a private folder, removed";
}

// The built CLI: bad values are refused (exit 2) before root, the lab or any load matters.
struct CliRun {
  int status = -1;
  std::string out;
};

CliRun labctl(const std::string& args) {
  const std::string bin = std::string(LABCTL_BINARY_DIR) + "/labctl/labctl";
  CliRun r;
  FILE* p = ::popen((bin + " " + args + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  while (std::fgets(buf.data(), buf.size(), p)) r.out += buf.data();
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

TEST(MeasureCli, BadValuesAreRefusedBeforeAnythingRuns) {
  ASSERT_TRUE(std::filesystem::exists(std::string(LABCTL_BINARY_DIR) + "/labctl/labctl"));
  for (const auto& [args, says] : std::vector<std::pair<std::string, std::string>>{
           {"--concurrency 0", "--concurrency 0 is out of range 1..256"},
           {"--rate 2000000", "--rate 2000000 is out of range 1..1000000"},
           {"--seconds 0", "--seconds 0 is out of range 0.1..3600"},
           {"--requests 5 --seconds 2", "give --requests or --seconds, not both"},
           {"--rounds 0", "--rounds 0 is out of range 1..100"}}) {
    const CliRun r = labctl("measure no-such-lab-xyz " + args);
    EXPECT_EQ(r.status, 2) << args << "\n" << r.out;
    EXPECT_THAT(r.out, HasSubstr(says)) << args;
  }
  const CliRun r = labctl("measure no-such-lab-xyz --concurrency many");
  EXPECT_EQ(r.status, 2) << r.out;
}

TEST(MeasureCli, HelpStatesEveryBoundAndGivesExamples) {
  const CliRun r = labctl("measure --help");
  EXPECT_EQ(r.status, 0);
  for (const char* s : {"--requests 1..100000000", "--seconds 0.1..3600", "--concurrency 1..256", "--rate 1..1000000",
                        "--rounds 1..100", "labctl measure nat-vs-dr nat dr", "--new-connections", "--svg"})
    EXPECT_THAT(r.out, HasSubstr(s));
}

}  // namespace
}  // namespace labctl
