// Agents without a kernel: load targets, the agent keys of the loader, the supervised argv,
// the planner's order, the supervisor's record, the access log line, /proc/net parsing and
// reading log tails.
#include <arpa/inet.h>
#include <fcntl.h>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "agents/access_log.h"
#include "labctl/kernel/process.h"
#include "labctl/lab/agent_logs.h"
#include "labctl/model/load.h"
#include "labctl/model/load_target.h"
#include "labctl/plan/agent.h"
#include "labctl/plan/planner.h"
#include "tests/unit/demo_labs.h"

namespace labctl {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(LoadTarget, UrlsWithAndWithoutPortAndPath) {
  auto t = parse_load_target("http://10.0.0.100/");
  ASSERT_TRUE(t) << t.error().str();
  EXPECT_EQ(t->addr.str(), "10.0.0.100");
  EXPECT_EQ(t->port, 80);
  EXPECT_EQ(t->path, "/");
  EXPECT_EQ(t->host_header(), "10.0.0.100");

  t = parse_load_target("http://10.0.0.100:8080/a/b?c=d");
  ASSERT_TRUE(t) << t.error().str();
  EXPECT_EQ(t->port, 8080);
  EXPECT_EQ(t->path, "/a/b?c=d");
  EXPECT_EQ(t->host_header(), "10.0.0.100:8080");

  t = parse_load_target("http://10.0.0.100");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->path, "/");

  t = parse_load_target("http://[fd00::100]:81/x");
  ASSERT_TRUE(t) << t.error().str();
  EXPECT_TRUE(t->addr.v6());
  EXPECT_EQ(t->port, 81);
  EXPECT_EQ(t->host_header(), "[fd00::100]:81");
}

TEST(LoadTarget, HostPortForm) {
  auto t = parse_load_target("10.0.0.100:80");
  ASSERT_TRUE(t) << t.error().str();
  EXPECT_EQ(t->port, 80);
  EXPECT_EQ(t->path, "/");
  t = parse_load_target("[2001:db8::1]:8080");
  ASSERT_TRUE(t) << t.error().str();
  EXPECT_EQ(t->addr.str(), "2001:db8::1");
  EXPECT_EQ(t->port, 8080);
}

TEST(LoadTarget, EveryErrorNamesTheAcceptedForms) {
  struct Case {
    const char* text;
    const char* why;
  } cases[] = {
      {"http://web.lab/", "no numeric address"},
      {"10.0.0.100", "has no port"},
      {"https://10.0.0.1/", "only http://"},
      {"fd00::1:80", "IPv6 address without brackets"},
      {"http://10.0.0.1:0/", "not a number 1..65535"},
      {"http://10.0.0.1:99999/", "not a number 1..65535"},
      {"http://10.0.0.1:/", "not a number 1..65535"},
      {"http://[10.0.0.1]/", "IPv4 address in brackets"},
      {"http://[fd00::1/", "without ']'"},
      {"10.0.0.1:80/x", "no http://"},
      {"http://10.0.0.1/a b", "space or control character"},
      {"", "is empty"},
      {"http://:80/", "has no address"},
  };
  for (const auto& c : cases) {
    auto t = parse_load_target(c.text);
    ASSERT_FALSE(t) << c.text;
    EXPECT_THAT(t.error().message, HasSubstr(c.why)) << c.text;
    EXPECT_THAT(t.error().hint, HasSubstr("http://ADDRESS[:PORT][/PATH] or ADDRESS:PORT"))
        << c.text;
  }
}

std::string lab_with(const std::string& agent_line) {
  return R"(version = 1
name = "t"
[switches.lan]
[nodes.a]
interfaces.eth0 = { switch = "lan", addresses = ["10.0.0.1/24"] }
)" + agent_line +
         "\n";
}

std::string errors(const LoadResult& r) {
  std::string s;
  for (const auto& d : r.diagnostics) s += format_diagnostic(d) + "\n";
  return s;
}

TEST(AgentKeys, RestartSecondsTargetAndProtoAreRead) {
  auto r = parse_topology(lab_with(R"(agents.web = { kind = "http", restart = "on-failure" }
agents.gen = { kind = "load", target = "http://10.0.0.1/", seconds = 5 }
agents.py = { kind = "command", argv = ["nc", "-lu", "9"], port = 9, proto = "udp", restart = "no" })"),
                          "t.toml");
  ASSERT_TRUE(r.ok()) << errors(r);
  const Node* n = r.topology->node("a");
  ASSERT_EQ(n->agents.size(), 3u);
  EXPECT_TRUE(n->agents[0].restart_on_failure);
  EXPECT_EQ(n->agents[1].params.at("seconds"), "5");
  EXPECT_FALSE(n->agents[1].restart_on_failure);
  EXPECT_EQ(n->agents[2].params.at("proto"), "udp");
  EXPECT_EQ(agent_listen_spec(n->agents[2]), "udp:9");
}

TEST(AgentKeys, HttpDelayReachesItsArgvAndWhy) {
  auto r = parse_topology(lab_with(R"(agents.app = { kind = "http", port = 8080, delay = 50 }
agents.fast = { kind = "http", port = 8081, delay = 0 })"),
                          "t.toml");
  ASSERT_TRUE(r.ok()) << errors(r);
  const Node* n = r.topology->node("a");
  EXPECT_THAT(agent_argv(n->agents[0], "a", "labagent"),
              ::testing::ElementsAre("labagent", "http", "--port", "8080", "--name", "a", "--delay", "50"));
  // No work to simulate: no flag.
  EXPECT_THAT(agent_argv(n->agents[1], "a", "labagent"),
              ::testing::ElementsAre("labagent", "http", "--port", "8081", "--name", "a"));
}

TEST(AgentKeys, LoadSecondsDefaultsTo30) {
  auto r = parse_topology(lab_with(R"(agents.gen = { kind = "load", target = "10.0.0.1:80" })"),
                          "t.toml");
  ASSERT_TRUE(r.ok()) << errors(r);
  EXPECT_EQ(r.topology->node("a")->agents[0].params.at("seconds"), "30");
}

TEST(AgentKeys, ReadyTimeoutReachesTheSupervisorAndIsBounded) {
  auto r = parse_topology(lab_with(R"(agents.py = { kind = "command", argv = ["x"], port = 9, ready_timeout = 30 })"),
                          "t.toml");
  ASSERT_TRUE(r.ok()) << errors(r);
  const Agent& py = r.topology->node("a")->agents[0];
  EXPECT_EQ(agent_ready_timeout(py), std::chrono::seconds(30));
  auto argv = supervised_argv(py, "a", "labagent", "s", {"x"});
  auto it = std::find(argv.begin(), argv.end(), "--ready-timeout-ms");
  ASSERT_NE(it, argv.end());
  EXPECT_EQ(*(it + 1), "30000");
  Agent plain = test::http_agent(80);
  EXPECT_EQ(agent_ready_timeout(plain), kAgentReadyTimeout);

  r = parse_topology(lab_with(R"(agents.web = { kind = "http", ready_timeout = 0 })"), "t.toml");
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(errors(r), HasSubstr("t.toml:6:47: error: ready_timeout of agent a:web must be at least 0.1"));
}

TEST(AgentKeys, BadValuesAreErrorsAtTheirPosition) {
  auto r = parse_topology(lab_with(R"(agents.web = { kind = "http", restart = "on-failur" })"),
                          "t.toml");
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(errors(r), HasSubstr("t.toml:6:41: error: restart of agent a:web is 'on-failur'"));
  EXPECT_THAT(errors(r), HasSubstr("did you mean 'on-failure'"));

  r = parse_topology(
      lab_with(R"(agents.gen = { kind = "load", target = "http://www/", seconds = 3601 })"),
      "t.toml");
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(errors(r), HasSubstr("t.toml:6:40: error: agent a:gen: target 'http://www/' names "
                                   "'www', which is no numeric address"));
  EXPECT_THAT(errors(r), HasSubstr("seconds"));

  r = parse_topology(lab_with(R"(agents.py = { kind = "command", argv = ["x"], proto = "udp" })"),
                     "t.toml");
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(errors(r), HasSubstr("has a proto but no port"));
}

TEST(AgentArgv, EveryAgentRunsUnderTheSupervisor) {
  Agent web = test::http_agent(8080);
  web.restart_on_failure = true;
  EXPECT_EQ(agent_listen_spec(web), "tcp:8080");
  auto argv = supervised_argv(web, "rs1", "/bin/labagent", "/run/x/agents/rs1-web.json",
                              agent_argv(web, "rs1", "/bin/labagent"));
  EXPECT_EQ(argv, (std::vector<std::string>{"/bin/labagent",
                                            "supervise",
                                            "--state",
                                            "/run/x/agents/rs1-web.json",
                                            "--node",
                                            "rs1",
                                            "--agent",
                                            "web",
                                            "--ready-fd",
                                            "3",
                                            "--ready-timeout-ms",
                                            "5000",
                                            "--listen",
                                            "tcp:8080",
                                            "--restart",
                                            "on-failure",
                                            "--",
                                            "/bin/labagent",
                                            "http",
                                            "--port",
                                            "8080",
                                            "--name",
                                            "rs1"}));

  Agent load;
  load.name = "gen";
  load.kind = "load";
  load.params = {{"target", "http://10.0.0.100/"}, {"count", "50"}, {"seconds", "7"}};
  EXPECT_EQ(agent_listen_spec(load), "");
  EXPECT_EQ(agent_argv(load, "client", "labagent"),
            (std::vector<std::string>{"labagent", "load", "--target", "http://10.0.0.100/",
                                      "--count", "50", "--seconds", "7"}));
  argv = supervised_argv(load, "client", "labagent", "s", {"labagent", "load"});
  EXPECT_THAT(argv, ::testing::Contains("--oneshot"));
  EXPECT_THAT(argv, ::testing::Not(::testing::Contains("--listen")));

  Agent cmd;
  cmd.name = "sleep";
  cmd.kind = "command";
  cmd.argv = {"sleep", "1000"};
  EXPECT_EQ(agent_listen_spec(cmd), "");  // no port: alive for 200 ms
  cmd.port = 9000;
  EXPECT_EQ(agent_listen_spec(cmd), "tcp:9000");
}

TEST(Planner, LoadAgentsStartAfterEveryServerAgent) {
  Topology t = test::dr_lab();
  Agent load;
  load.name = "gen";
  load.kind = "load";
  load.params = {{"target", "http://10.0.0.100/"}, {"count", "10"}};
  // The client comes first in the file; its load agent must still start last.
  t.nodes.front().agents.push_back(load);
  Plan p = make_plan(t);
  std::vector<std::string> order;
  for (const auto& s : p.steps)
    if (const auto* a = std::get_if<step::StartAgent>(&s.step))
      order.push_back(a->node + ":" + a->agent.name);
  ASSERT_GE(order.size(), 2u);
  EXPECT_EQ(order.back(), t.nodes.front().name + ":gen");
  for (size_t i = 0; i + 1 < order.size(); ++i) EXPECT_THAT(order[i], ::testing::EndsWith(":web"));
}

TEST(AgentState, RoundTripsAndDescribesHowItEnded) {
  AgentState s;
  s.node = "rs1";
  s.agent = "web";
  s.state = "running";
  s.supervisor = 10;
  s.pid = 11;
  auto back = parse_agent_state(agent_state_text(s));
  ASSERT_TRUE(back) << back.error().str();
  EXPECT_EQ(back->node, "rs1");
  EXPECT_EQ(back->pid, 11);
  EXPECT_EQ(describe(*back), "running");
  EXPECT_TRUE(agent_ok(*back));

  s.state = "exited";
  s.code = 3;
  EXPECT_EQ(describe(s), "exited (code 3)");
  EXPECT_FALSE(agent_ok(s));
  s.code = -1;
  s.signal = SIGKILL;
  EXPECT_EQ(describe(s), "killed (SIGKILL)");
  s.state = "restarting";
  s.restarts = 2;
  EXPECT_EQ(describe(s), "restarting after killed (SIGKILL) (restarted 2 times)");
  EXPECT_FALSE(agent_ok(s));  // down right now
  s.state = "running";
  s.restarts = 1;
  EXPECT_EQ(describe(s), "running (restarted once)");

  AgentState load{"client", "gen", "exited", 1, 0, 0, 0, 0, true};
  EXPECT_EQ(describe(load), "finished (code 0)");
  EXPECT_TRUE(agent_ok(load));
  load.code = 1;
  EXPECT_FALSE(agent_ok(load));
  load.state = "gone";
  EXPECT_THAT(describe(load), HasSubstr("gone"));

  EXPECT_FALSE(parse_agent_state("{\"node\": 1}"));
  EXPECT_FALSE(parse_agent_state("not json"));
}

TEST(AccessLog, OneLinePerRequestWithClientRequestAndStatus) {
  sockaddr_in6 v4{};
  v4.sin6_family = AF_INET6;
  ASSERT_EQ(::inet_pton(AF_INET6, "::ffff:10.0.0.10", &v4.sin6_addr), 1);
  v4.sin6_port = htons(40312);
  char line[labagent::kAccessLineMax];
  size_t n = labagent::format_access_line(line, v4, "GET /index.html HTTP/1.1", 200);
  EXPECT_EQ(std::string(line, n), "10.0.0.10:40312 \"GET /index.html\" 200\n");

  sockaddr_in6 v6 = v4;
  ASSERT_EQ(::inet_pton(AF_INET6, "fd00::10", &v6.sin6_addr), 1);
  n = labagent::format_access_line(line, v6, "HEAD / HTTP/1.0", 200);
  EXPECT_EQ(std::string(line, n), "[fd00::10]:40312 \"HEAD /\" 200\n");

  n = labagent::format_access_line(line, v4, "", 0);
  EXPECT_EQ(std::string(line, n), "10.0.0.10:40312 \"-\" -\n");

  // A hostile request line is shown, not echoed: no quotes, no control bytes, bounded.
  std::string evil = "GET /\"\x1b[31m" + std::string(1000, 'a') + " HTTP/1.1";
  n = labagent::format_access_line(line, v4, evil, 200);
  std::string got(line, n);
  EXPECT_LT(got.size(), labagent::kAccessLineMax);
  EXPECT_EQ(got.find('\x1b'), std::string::npos);
  EXPECT_EQ(std::count(got.begin(), got.end(), '"'), 2);
  EXPECT_EQ(got.back(), '\n');
}

TEST(ProcNet, ListeningTcpAndBoundUdp) {
  const std::string tcp =
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout "
      "inode\n"
      "   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 "
      "1 1\n"
      "   1: 0100007F:0050 0100007F:A000 01 00000000:00000000 00:00000000 00000000     0        0 "
      "2 1\n";
  EXPECT_TRUE(proc_net_has_port(tcp, false, 8080));
  EXPECT_FALSE(proc_net_has_port(tcp, false, 80));  // established, not listening
  EXPECT_FALSE(proc_net_has_port(tcp, false, 81));
  const std::string udp6 =
      "  sl  local_address                         remote_address                        st\n"
      "  5: 00000000000000000000000000000000:0007 00000000000000000000000000000000:0000 07 0 0\n";
  EXPECT_TRUE(proc_net_has_port(udp6, true, 7));
  EXPECT_FALSE(proc_net_has_port(udp6, true, 8));
  EXPECT_FALSE(proc_net_has_port("", true, 7));
}

class TempLog : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/labctl-log-XXXXXX";
    int fd = ::mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    ::close(fd);
    path_ = tmpl;
  }
  void TearDown() override { std::remove(path_.c_str()); }
  void write(const std::string& s) {
    int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND);
    ASSERT_EQ(::write(fd, s.data(), s.size()), static_cast<ssize_t>(s.size()));
    ::close(fd);
  }
  std::vector<std::string> pump(LogSource& src, bool flush) {
    std::vector<std::string> out;
    EXPECT_TRUE(pump_log(src, flush, [&](const std::string& l) { out.push_back(l); }));
    return out;
  }
  std::string path_;
};

TEST_F(TempLog, LastLinesThenWhatIsAppendedWithItsLabel) {
  write("one\ntwo\nthree\n");
  auto src = open_log("web", path_, 2);
  ASSERT_TRUE(src) << src.error().str();
  EXPECT_THAT(pump(*src, false), ElementsAre("web | two\n", "web | three\n"));
  write("four\nfi");
  EXPECT_THAT(pump(*src, false), ElementsAre("web | four\n"));  // "fi" held back
  write("ve\n");
  EXPECT_THAT(pump(*src, false), ElementsAre("web | five\n"));

  auto all = open_log("", path_, -1);
  ASSERT_TRUE(all);
  EXPECT_EQ(pump(*all, true).size(), 5u);
  auto none = open_log("", path_, 0);
  ASSERT_TRUE(none);
  EXPECT_TRUE(pump(*none, true).empty());
}

TEST_F(TempLog, LastLinesAcrossBlocksAndWithoutAFinalNewline) {
  std::string big;
  for (int i = 0; i < 3000; ++i) big += "line " + std::to_string(i) + "\n";
  write(big + "tail");
  Fd fd(::open(path_.c_str(), O_RDONLY));
  auto off = last_lines_offset(fd.get(), 2);
  ASSERT_TRUE(off);
  EXPECT_EQ(static_cast<size_t>(*off), big.size() - std::string("line 2999\n").size());
  auto src = open_log("", path_, 1);
  ASSERT_TRUE(src);
  EXPECT_THAT(pump(*src, true), ElementsAre("tail\n"));
  EXPECT_EQ(*last_lines_offset(fd.get(), 100000), 0);
}

// A writer that never ends its line: `logs` prints it in pieces instead of holding it all.
TEST_F(TempLog, ALineThatNeverEndsIsPrintedInBoundedPieces) {
  write(std::string(3 * kMaxLogLine + 100, 'x'));
  auto src = open_log("", path_, -1);
  ASSERT_TRUE(src);
  auto out = pump(*src, false);
  ASSERT_EQ(out.size(), 3u);
  for (const auto& l : out) EXPECT_EQ(l, std::string(kMaxLogLine, 'x') + "\n");
  EXPECT_EQ(src->partial.size(), 100u);
}

// The supervisor rotated the log under a follower (copied to LOG.1, emptied): the follower
// prints what comes next instead of waiting past the end of a file that shrank.
TEST_F(TempLog, AFollowerGoesOnAfterTheLogWasEmptied) {
  write("one\ntwo\n");
  auto src = open_log("", path_, -1);
  ASSERT_TRUE(src);
  EXPECT_EQ(pump(*src, false).size(), 2u);
  ASSERT_EQ(::truncate(path_.c_str(), 0), 0);
  write("three\n");
  EXPECT_THAT(pump(*src, false), ElementsAre("three\n"));
}

// `logs -n N` reads back across the rotation: LOG.1's last lines, then LOG's.
TEST_F(TempLog, LastLinesReachIntoTheRotatedLog) {
  const std::string older = rotated_log_path(path_);
  std::ofstream(older) << "a\nb\nc\n";
  write("d\n");
  auto all = [&](long lines) {
    std::vector<std::string> out;
    auto srcs = open_agent_log("", path_, lines);
    EXPECT_TRUE(srcs) << srcs.error().str();
    if (!srcs) return out;
    for (auto& s : *srcs) {
      EXPECT_TRUE(pump_log(s, true, [&](const std::string& l) { out.push_back(l); }));
    }
    return out;
  };
  EXPECT_THAT(all(3), ElementsAre("b\n", "c\n", "d\n"));
  EXPECT_THAT(all(1), ElementsAre("d\n"));
  EXPECT_THAT(all(-1), ElementsAre("a\n", "b\n", "c\n", "d\n"));
  std::remove(older.c_str());
  EXPECT_THAT(all(3), ElementsAre("d\n"));
}

TEST(LogTail, LastLinesOfAMissingFileAreEmpty) { EXPECT_EQ(log_tail("/nonexistent/x.log"), ""); }

}  // namespace
}  // namespace labctl
