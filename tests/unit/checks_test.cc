#include "labctl/checks/checks.h"
#include "labctl/checks/check_kind.h"
#include "labctl/checks/junit.h"
#include "labctl/model/load.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace labctl {
namespace {

VirtualService svc(const std::string& sched, std::vector<int> weights, uint32_t persistence = 0) {
  VirtualService s;
  s.scheduler = sched;
  s.persistence = persistence;
  for (int w : weights) {
    RealServer r;
    r.weight = w;
    s.real_servers.push_back(r);
  }
  return s;
}

TEST(ExpectedShares, RoundRobinIsEqualWhateverTheWeights) {
  EXPECT_EQ(expected_shares(svc("rr", {1, 5})), (std::vector<double>{0.5, 0.5}));
}

TEST(ExpectedShares, WeightedSchedulersFollowWeights) {
  auto s = expected_shares(svc("wrr", {2, 1, 1}));
  ASSERT_EQ(s.size(), 3u);
  EXPECT_DOUBLE_EQ(s[0], 0.5);
  EXPECT_DOUBLE_EQ(s[1], 0.25);
  EXPECT_DOUBLE_EQ(expected_shares(svc("wlc", {3, 1}))[0], 0.75);
}

TEST(ExpectedShares, WeightZeroGetsNothing) {
  EXPECT_EQ(expected_shares(svc("rr", {1, 0})), (std::vector<double>{1.0, 0.0}));
  EXPECT_EQ(expected_shares(svc("wrr", {0, 0})), (std::vector<double>{0.0, 0.0}));
}

TEST(ExpectedShares, HashingAndPersistenceStickToOneServer) {
  for (const char* s : {"sh", "dh", "mh", "lblc", "lblcr"})
    EXPECT_TRUE(expected_shares(svc(s, {1, 1})).empty()) << s;
  EXPECT_TRUE(expected_shares(svc("rr", {1, 1}, 300)).empty());
}

CheckResult result(std::string name, std::string kind, bool passed, std::string detail, double ms) {
  CheckResult r;
  r.name = std::move(name);
  r.kind = std::move(kind);
  r.passed = passed;
  r.detail = std::move(detail);
  r.ms = ms;
  return r;
}

TEST(ExpectedShares, TheKernelsWeightsDecide) {
  // As read back from the director after `ipvsadm -e ... -w 0`.
  EXPECT_EQ(expected_shares("rr", false, {1, 0}), (std::vector<double>{1.0, 0.0}));
  EXPECT_EQ(expected_shares("wrr", false, {3, 1}), (std::vector<double>{0.75, 0.25}));
  EXPECT_TRUE(expected_shares("rr", true, {1, 1}).empty()) << "persistent";
}

TEST(CheckDeadline, KindDefaultsAndTheTimeoutKey) {
  using namespace std::chrono_literals;
  Check c;
  c.kind = "reach";
  EXPECT_EQ(check_deadline(c), 3s);
  c.kind = "balance";
  EXPECT_EQ(check_deadline(c), 10s);
  // The timeout key as written in a lab file, through the parser.
  auto loaded = load_topology("dr-demo");
  ASSERT_TRUE(loaded.ok());
  std::string text = loaded.text;
  const std::string anchor = "kind = \"balance\"";
  ASSERT_NE(text.find(anchor), std::string::npos);
  text.replace(text.find(anchor), anchor.size(), anchor + "\ntimeout = 2.5");
  auto timed = parse_topology(text, "dr-demo.toml");
  ASSERT_TRUE(timed.ok());
  for (const auto& tc : timed.topology->checks)
    EXPECT_EQ(check_deadline(tc), tc.kind == "balance" ? Millis{2500} : default_deadline(tc.kind)) << tc.name;
  for (const char* k : {"reach", "no-reach", "http", "balance", "bypass", "via-director", "tunnel", "arp-owner"}) {
    EXPECT_LE(default_deadline(k), 10s) << k;
    EXPECT_EQ(check_expectation(k).find("kind "), std::string::npos) << k;
  }
}

TEST(CheckDeadline, AProbeGetsWhatIsLeftAndNoMore) {
  using namespace std::chrono_literals;
  check_kind::Deadline d{check_kind::Clock::now() + 300ms, 300ms};
  EXPECT_LE(d.probe(), 300ms);
  EXPECT_GT(d.probe(), 200ms);
  EXPECT_EQ(d.probe(50ms), 50ms);
  check_kind::Deadline gone{check_kind::Clock::now() - 1s, 1s};
  EXPECT_TRUE(gone.over());
  EXPECT_EQ(gone.probe(), 1ms) << "a probe never gets 0 ms: poll(0) would not wait at all";
  EXPECT_NE(gone.ran_out().find("1 s deadline"), std::string::npos) << gone.ran_out();
}

TEST(Requests, TextSaysWhatAnsweredFailedAndWhyItStopped) {
  check_kind::Requests q;
  q.planned = 40;
  q.sent = 2;
  q.failed = 2;
  q.last_error = "connect to 10.0.0.1:80: timed out";
  q.stopped = "the first 2 requests all failed";
  EXPECT_EQ(q.text(),
            "no answers of 2 sent (of 40 planned), 2 failed (last: connect to 10.0.0.1:80: timed "
            "out); stopped early: the first 2 requests all failed");
  q.counts["rs1\x01"] = 1;  // a body is any bytes: shown, never raw
  EXPECT_NE(q.text().find("'rs1\\x01' 1"), std::string::npos) << q.text();
}

// JUnit validated by a real XML tool against tests/data/junit.xsd (the Jenkins/Surefire
// shape), with user strings that break naive writers.
std::string xmllint(const std::string& xml, const std::string& args) {
  char path[] = "/tmp/labctl-junit-XXXXXX";
  int fd = ::mkstemp(path);
  EXPECT_GE(fd, 0);
  ::close(fd);
  std::ofstream(path) << xml;
  std::string cmd = "xmllint " + args + " " + path + " 2>&1";
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[4096];
    while (size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    out += "rc=" + std::to_string(WEXITSTATUS(::pclose(p)));
  }
  std::remove(path);
  return out;
}

TEST(Junit, ValidAgainstTheSchemaWhateverTheStrings) {
  if (std::system("command -v xmllint >/dev/null") != 0) GTEST_SKIP() << "xmllint missing (libxml2-utils, scripts/setup.sh)";
  CheckReport r;
  r.lab = "lab<&>\"'";
  CheckResult pass = result("ok", "reach", true, "TCP connect succeeded", 12.5);
  pass.expected = check_expectation("reach");
  CheckResult bad = result("b]]>\x01\x7f", "balance", false,
                           "rs1 \xff\xfe 3 of 6 <b>&amp;\n\r\t ]]> \xed\xa0\x80 \xef\xbf\xbe end", 1500);
  bad.expected = check_expectation("balance");
  bad.causes.push_back({"rs1", "arp_ignore is 0 on \"eth0\"", "[nodes.rs1.sysctl] net.ipv4.conf.all.arp_ignore = 1"});
  r.results = {pass, bad};
  CheckReport empty;
  empty.lab = "none";
  const std::string xml = checks_junit({r, empty});
  const std::string out = xmllint(xml, "--noout --schema " LABCTL_TEST_DATA "/junit.xsd");
  EXPECT_NE(out.find("validates"), std::string::npos) << out << "\n" << xml;
  EXPECT_NE(out.find("rc=0"), std::string::npos) << out;
  // What a CI server shows: the failure's message holds expected, seen and the cause.
  const std::string msg = xmllint(xml, "--xpath 'string(//testcase[@time=\"1.500\"]/failure/@message)'");
  EXPECT_NE(msg.find("expected every real server answers"), std::string::npos) << msg;
  EXPECT_NE(msg.find("seen rs1 \\xff\\xfe 3 of 6 <b>&amp;"), std::string::npos) << msg;
  EXPECT_NE(msg.find("cause: arp_ignore is 0 on \"eth0\" (fix: [nodes.rs1.sysctl]"), std::string::npos) << msg;
  const std::string cls = xmllint(xml, "--xpath 'string(//testcase[1]/@classname)'");
  EXPECT_EQ(cls, "lab<&>\"'\nrc=0");
  EXPECT_NE(xmllint(xml, "--xpath 'string(//testsuite[1]/@failures)'").find("1"), std::string::npos);
  EXPECT_NE(xmllint(xml, "--xpath 'string(//testcase[2]/system-out)'").find("deadline 0.000 s, took 1.500 s"),
            std::string::npos);
}

TEST(Junit, EscapingKeepsTextAndDropsWhatXmlCannotHold) {
  EXPECT_EQ(xml_escaped("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
  EXPECT_EQ(xml_escaped("x\ny", true), "x&#10;y");
  EXPECT_EQ(xml_escaped("x\ny"), "x\ny");
  EXPECT_EQ(xml_escaped(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(xml_escaped("\xc3\xa9\xe2\x82\xac"), "\xc3\xa9\xe2\x82\xac") << "valid UTF-8 stays";
  EXPECT_EQ(xml_escaped("\xc0\xaf"), "\\xc0\\xaf") << "overlong";
  EXPECT_EQ(xml_escaped("\xe2\x82"), "\\xe2\\x82") << "cut short";
}

TEST(CheckReport, PassesOnlyWhenEveryCheckPassed) {
  CheckReport r;
  r.lab = "l";
  EXPECT_FALSE(r.passed()) << "zero checks run is never a pass";
  EXPECT_NE(render_checks(r).find("no checks ran"), std::string::npos);
  EXPECT_EQ(checks_json(r)["passed"], false);
  r.results.push_back(result("a", "reach", true, "", 0));
  EXPECT_TRUE(r.passed());
  r.results.push_back(result("b", "http", false, "no answer", 0));
  EXPECT_FALSE(r.passed());
  EXPECT_NE(render_checks(r).find("FAIL  b (http): no answer"), std::string::npos);
  EXPECT_NE(render_checks(r).find("1 of 2 checks passed"), std::string::npos);
  EXPECT_EQ(checks_json(r)["passed"], false);
}

TEST(CheckNames, AnUnknownNameIsAnErrorWithTheNearestOne) {
  auto loaded = load_topology("dr-demo");
  ASSERT_TRUE(loaded.ok());
  const Topology& t = *loaded.topology;
  ASSERT_FALSE(t.checks.empty());
  EXPECT_TRUE(check_names_known(t, {}));
  EXPECT_TRUE(check_names_known(t, {t.checks[0].name}));
  std::string typo = t.checks[0].name;
  typo.back() = typo.back() == 'x' ? 'y' : 'x';
  auto st = check_names_known(t, {typo});
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().str().find("has no check '" + typo + "'"), std::string::npos);
  EXPECT_NE(st.error().str().find("did you mean '" + t.checks[0].name + "'"), std::string::npos)
      << st.error().str();
  auto far = check_names_known(t, {"nosuchcheck"});
  ASSERT_FALSE(far);
  EXPECT_NE(far.error().str().find("its checks: " + t.checks[0].name), std::string::npos)
      << far.error().str();
  // run_checks refuses too, before it would touch the lab.
  EXPECT_FALSE(run_checks(t, {"nosuchcheck"}));
}

TEST(RenderChecks, AFailedCheckShowsItsCausesAndFixes) {
  CheckReport rep;
  rep.lab = "dr-demo";
  CheckResult r = result("director-owns-vip", "arp-owner", false, "rs1 answered ARP for the VIP", 3);
  r.causes.push_back({"rs1", "rs1 answers ARP for 10.10.0.100: arp_ignore is 0",
                      "[nodes.rs1.sysctl] net.ipv4.conf.all.arp_ignore = 1"});
  rep.results.push_back(r);
  const std::string text = render_checks(rep);
  EXPECT_NE(text.find("  FAIL  director-owns-vip"), std::string::npos) << text;
  EXPECT_NE(text.find("cause: rs1 answers ARP for 10.10.0.100"), std::string::npos) << text;
  EXPECT_NE(text.find("fix:   [nodes.rs1.sysctl] net.ipv4.conf.all.arp_ignore = 1"), std::string::npos)
      << text;
  auto j = checks_json(rep);
  EXPECT_FALSE(j["passed"].get<bool>());
  ASSERT_EQ(j["checks"][0]["causes"].size(), 1u);
  EXPECT_EQ(j["checks"][0]["causes"][0]["node"], "rs1");
}

// A probe that timed out is sent again with twice the time, never more than the whole
// deadline and never less than the first timeout; only a timeout is resent, and only while
// time is left.
TEST(ProbePatience, FirstAQuarterOfTheDeadlineThenDoublesUpToIt) {
  using check_kind::Deadline;
  using check_kind::kProbeTimeout;
  using std::chrono::milliseconds;
  EXPECT_EQ(Deadline::first_patience(milliseconds{3000}), milliseconds{750});
  EXPECT_EQ(Deadline::first_patience(milliseconds{10000}), milliseconds{2500});
  EXPECT_EQ(Deadline::first_patience(milliseconds{1000}), kProbeTimeout);
  // After answers: four times the slowest, within kProbeTimeout and the deadline.
  EXPECT_EQ(Deadline::learned_patience(milliseconds{3}, milliseconds{10000}), kProbeTimeout);
  EXPECT_EQ(Deadline::learned_patience(milliseconds{1200}, milliseconds{10000}), milliseconds{4800});
  EXPECT_EQ(Deadline::learned_patience(milliseconds{4000}, milliseconds{10000}), milliseconds{10000});
  EXPECT_EQ(Deadline::next_patience(kProbeTimeout, milliseconds{6000}), milliseconds{1000});
  EXPECT_EQ(Deadline::next_patience(milliseconds{4000}, milliseconds{6000}), milliseconds{6000});
  EXPECT_EQ(Deadline::next_patience(milliseconds{6000}, milliseconds{6000}), milliseconds{6000});
  EXPECT_EQ(Deadline::next_patience(kProbeTimeout, milliseconds{300}), kProbeTimeout);
}

TEST(ProbePatience, ResendsOnlyATimeoutWhileTimeIsLeft) {
  using namespace std::chrono_literals;
  check_kind::Deadline d{check_kind::Clock::now() + 5s, std::chrono::milliseconds{5000}};
  const Error timeout = fail_errno("connect to 10.0.0.1:80: timed out", ETIMEDOUT).value();
  const Error refused = fail_errno("connect to 10.0.0.1:80", ECONNREFUSED).value();
  const Error unreachable = fail_errno("connect to 10.0.0.1:80", EHOSTUNREACH).value();
  EXPECT_TRUE(d.resend(timeout));
  EXPECT_FALSE(d.resend(refused));
  EXPECT_FALSE(d.resend(unreachable));
  check_kind::Deadline over{check_kind::Clock::now() - 1ms, std::chrono::milliseconds{5000}};
  EXPECT_FALSE(over.resend(timeout));
}

// patiently(): two timeouts then an answer is one answer after 0.5, 1 and 2 s of patience
// (a check of 2 s: its first patience is the least, 0.5 s); later probes of the check start
// at the grown patience.
TEST(ProbePatience, PatientlyGrowsTheTimeoutAndKeepsIt) {
  using namespace std::chrono_literals;
  check_kind::Deadline d{check_kind::Clock::now() + 60s, std::chrono::milliseconds{2000}};
  std::vector<long> asked;
  int resent = 0;
  auto slow = [&](std::chrono::milliseconds t) -> Status {
    asked.push_back(static_cast<long>(t.count()));
    if (t < 2000ms) return fail_errno("timed out", ETIMEDOUT);
    return {};
  };
  EXPECT_TRUE(check_kind::patiently(d, slow, &resent));
  EXPECT_EQ(resent, 2);
  ASSERT_EQ(asked.size(), 3u);
  EXPECT_EQ(asked[0], 500);
  EXPECT_EQ(asked[1], 1000);
  EXPECT_EQ(asked[2], 2000);
  asked.clear();
  EXPECT_TRUE(check_kind::patiently(d, slow));
  EXPECT_EQ(asked.size(), 1u);
  // A refusal is an answer: never resent.
  asked.clear();
  auto refused = [&](std::chrono::milliseconds t) -> Status {
    asked.push_back(static_cast<long>(t.count()));
    return fail_errno("connect", ECONNREFUSED);
  };
  EXPECT_FALSE(check_kind::patiently(d, refused));
  EXPECT_EQ(asked.size(), 1u);
}

TEST(CheckReportJson, ReadsBackWhatChecksJsonWrote) {
  CheckReport r;
  r.lab = "dr-demo";
  CheckResult c;
  c.name = "balanced";
  c.kind = "balance";
  c.passed = false;
  c.detail = "rs1 60 of 60";
  c.expected = "every real server answers";
  c.ms = 812.5;
  c.deadline_ms = 10000;
  c.causes.push_back({"rs2", "rs2 has no route back", "[nodes.rs2] routes = ..."});
  r.results.push_back(c);
  auto back = check_report_from_json(checks_json(r));
  ASSERT_TRUE(back) << back.error().str();
  EXPECT_EQ(back->lab, "dr-demo");
  ASSERT_EQ(back->results.size(), 1u);
  const CheckResult& b = back->results[0];
  EXPECT_EQ(b.name, c.name);
  EXPECT_EQ(b.kind, c.kind);
  EXPECT_EQ(b.passed, c.passed);
  EXPECT_EQ(b.detail, c.detail);
  EXPECT_EQ(b.expected, c.expected);
  EXPECT_EQ(b.ms, c.ms);
  EXPECT_EQ(b.deadline_ms, c.deadline_ms);
  ASSERT_EQ(b.causes.size(), 1u);
  EXPECT_EQ(b.causes[0].fix, c.causes[0].fix);
  EXPECT_FALSE(check_report_from_json(nlohmann::json::parse(R"({"checks": []})")));
  EXPECT_FALSE(check_report_from_json(nlohmann::json::parse(R"({"lab": "x", "checks": [{"passed": true}]})")));
  EXPECT_FALSE(check_report_from_json(nlohmann::json("no report")));
}

}  // namespace
}  // namespace labctl
