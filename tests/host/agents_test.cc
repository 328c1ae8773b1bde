// Host tier: agents in real namespaces. Readiness (a command agent with a port is awaited;
// one that exits fails `up` with its log and leaves nothing), exit codes and restarts read
// back through `labctl status`/`ls`, the load agent's URL target, the UDP echo's source
// address, the access log and `labctl logs`.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <thread>

#include "labctl/base/file.h"
#include "labctl/kernel/netns.h"
#include "labctl/kernel/probe.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/lab/state.h"
#include "labctl/kernel/process.h"
#include "labctl/lab/status.h"
#include "labctl/model/load.h"
#include "labctl/plan/planner.h"
#include "tests/host/host_test.h"
#include "tests/support/kill_sweep.h"

namespace labctl {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

const std::string kLabctl = LABCTL_BINARY_DIR "/labctl/labctl";
const std::string kLabagent = LABCTL_BINARY_DIR "/agents/labagent";

std::string run(const std::string& cmd) { return test::run_capture(cmd); }

bool nothing_left(const std::string& lab) {
  for (const auto& ns : list_netns())
    if (ns.rfind(lab + "-", 0) == 0) return false;
  return !std::filesystem::exists(state_dir(lab));
}

// A client and a server on one switch; the server also has a secondary address (.3).
// Agents are added per test.
std::string topology(const std::string& lab, const std::string& server_agents,
                     const std::string& client_agents = "") {
  return "version = 1\nname = \"" + lab + "\"\n[switches.lan]\n" +
         // The client comes first, so a load agent on it is first in file order too.
         "[nodes.client]\ninterfaces.eth0 = { switch = \"lan\", addresses = [\"10.77.0.10/24\"] "
         "}\n" +
         client_agents + "\n" +
         "[nodes.srv]\ninterfaces.eth0 = { switch = \"lan\", addresses = [\"10.77.0.2/24\", "
         "\"10.77.0.3/24\"] }\n" +
         server_agents + "\n";
}

class HostAgents : public ::testing::Test {
 protected:
  void SetUp() override {
    LABCTL_REQUIRE_ROOT();
    lab_ = "ag" + std::to_string(::getpid() % 10000) + "x" +
           std::to_string(std::random_device{}() % 100000);
    file_ = "/tmp/" + lab_ + ".toml";
  }
  void TearDown() override {
    if (lab_.empty()) return;
    std::string out = run(kLabctl + " down " + lab_ + " 2>&1");
    EXPECT_TRUE(nothing_left(lab_)) << out;
    // Supervisors and agents went with the namespaces: no labagent of this lab is left.
    EXPECT_EQ(run("pgrep -f -- '[-]-state " + state_dir(lab_) + "/' || true"), "");
    std::remove(file_.c_str());
    std::remove(go_file().c_str());
  }
  // `labctl up FILE`: its output and exit status.
  std::pair<std::string, int> up(const std::string& text) {
    std::ofstream(file_) << text;
    std::string out = run(kLabctl + " up " + file_ + " 2>&1; echo rc=$?");
    auto at = out.rfind("rc=");
    return {out, std::stoi(out.substr(at + 3))};
  }
  nlohmann::json agent_json(const std::string& node, const std::string& agent) {
    auto j = nlohmann::json::parse(run(kLabctl + " status " + lab_ + " --json"), nullptr, false);
    if (!j.is_object()) return {};
    for (const auto& n : j["nodes"])
      if (n["name"] == node)
        for (const auto& a : n["agents"])
          if (a["name"] == agent) return a;
    return {};
  }
  // A shell loop that waits for go(), then runs `then`: an agent that ends when the test
  // says, so no test races a timer against `up` on a loaded machine.
  std::string until_go(const std::string& then) {
    return "while [ ! -e " + go_file() + " ]; do sleep 0.05; done; " + then;
  }
  std::string go_file() const { return "/tmp/" + lab_ + ".go"; }
  void go() { std::ofstream(go_file()) << ""; }
  // Polls status until the agent's status phrase contains `want` (or 5 s pass).
  nlohmann::json await_agent(const std::string& node, const std::string& agent,
                             const std::string& want) {
    nlohmann::json a;
    for (int i = 0; i < 100; ++i) {
      a = agent_json(node, agent);
      if (a.is_object() && a["status"].get<std::string>().find(want) != std::string::npos) break;
      std::this_thread::sleep_for(50ms);
    }
    return a;
  }
  Fd ns(const std::string& node) {
    auto fd = open_netns(netns_name(lab_, node));
    EXPECT_TRUE(fd);
    return fd ? std::move(*fd) : Fd();
  }
  // This lab's line of `labctl ls` (other labs may be up on the machine).
  std::string ls_line() {
    std::string ls = run(kLabctl + " ls");
    auto at = ls.find(lab_ + " ");
    return at == std::string::npos ? "" : ls.substr(at, ls.find('\n', at) - at);
  }
  std::string lab_, file_;
};

TEST_F(HostAgents, CommandAgentWithAPortIsAwaitedUntilItListens) {
  // It takes a second before it listens: `up` must wait, so a connect right after succeeds.
  const auto t0 = std::chrono::steady_clock::now();
  auto [out, rc] = up(topology(
      lab_, "agents.late = { kind = \"command\", argv = [\"sh\", \"-c\", \"sleep 1; exec " +
                kLabagent + " http --port 9000 --name late\"], port = 9000 }"));
  ASSERT_EQ(rc, 0) << out;
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 1s);
  Fd client = ns("client");
  std::string body;
  ASSERT_TRUE(run_in_netns(client.get(), [&]() -> Status {
    TRY_ASSIGN(body, http_get(*IpAddr::parse("10.77.0.2"), 9000, "/", 2000ms));
    return {};
  }));
  EXPECT_EQ(body, "late");
  EXPECT_EQ(agent_json("srv", "late")["status"], "running");
}

TEST_F(HostAgents, AnAgentThatExitsAtOnceFailsUpWithItsLogAndLeavesNothing) {
  auto [out, rc] = up(topology(lab_,
                               "agents.web = { kind = \"http\", port = 80 }\n"
                               "agents.bad = { kind = \"command\", argv = [\"sh\", \"-c\", "
                               "\"echo boom-marker >&2; exit 3\"] }"));
  EXPECT_EQ(rc, 1) << out;
  EXPECT_THAT(out, HasSubstr("start agent srv:bad: exited (code 3) before it was ready")) << out;
  EXPECT_THAT(out, HasSubstr("boom-marker")) << out;
  EXPECT_TRUE(nothing_left(lab_)) << run("ip netns list");

  auto [out2, rc2] =
      up(topology(lab_, "agents.f = { kind = \"command\", argv = [\"/bin/false\"] }"));
  EXPECT_EQ(rc2, 1) << out2;
  EXPECT_THAT(out2, HasSubstr("exited (code 1) before it was ready")) << out2;
  EXPECT_TRUE(nothing_left(lab_));
}

TEST_F(HostAgents, AnAgentThatNeverListensFailsUpAfterTheDeadline) {
  auto [out, rc] = up(topology(
      lab_, "agents.mute = { kind = \"command\", argv = [\"sleep\", \"101\"], port = 9001 }"));
  EXPECT_EQ(rc, 1) << out;
  EXPECT_THAT(out, HasSubstr("not listening on tcp:9001 after 5000 ms")) << out;
  EXPECT_TRUE(nothing_left(lab_));
  EXPECT_EQ(run("pgrep -x -f '[s]leep 101' || true"), "");
}

TEST_F(HostAgents, AgentsThatDieLaterShowInStatusAndLs) {
  // It exits when told, not after a time `up` would have to beat on a loaded machine.
  auto [out, rc] = up(topology(
      lab_,
      "agents.web = { kind = \"http\", port = 80 }\n"
      "agents.brief = { kind = \"command\", argv = [\"sh\", \"-c\", \"" + until_go("exit 4") + "\"] }"));
  ASSERT_EQ(rc, 0) << out;
  EXPECT_THAT(ls_line(), ::testing::EndsWith(" ok"));
  go();
  auto brief = await_agent("srv", "brief", "exited (code 4)");
  EXPECT_EQ(brief["status"], "exited (code 4)") << brief.dump();
  EXPECT_EQ(brief["exit_code"], 4);
  EXPECT_EQ(brief["ok"], false);

  auto web = agent_json("srv", "web");
  ASSERT_TRUE(web.is_object());
  const pid_t pid = web["pid"].get<pid_t>();
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  web = await_agent("srv", "web", "killed");
  EXPECT_EQ(web["status"], "killed (SIGKILL)") << web.dump();
  EXPECT_EQ(web["signal"], "SIGKILL");

  std::string text = run(kLabctl + " status " + lab_);
  EXPECT_THAT(text, HasSubstr("agent web  killed (SIGKILL)")) << text;
  EXPECT_THAT(text, HasSubstr("agent brief  exited (code 4)")) << text;
  std::string line = ls_line();
  EXPECT_THAT(line, HasSubstr("exited (code 4)")) << line;
  EXPECT_THAT(line, Not(::testing::EndsWith(" ok"))) << line;
  auto lsj = nlohmann::json::parse(run(kLabctl + " ls --json"));
  for (const auto& l : lsj)
    if (l["lab"] == lab_) {
      EXPECT_EQ(l["ok"], false);
      EXPECT_EQ(l["failed_agents"].size(), 2u) << l.dump();
    }
}

TEST_F(HostAgents, RestartOnFailureStartsItAgainAndDownStillLeavesNothing) {
  auto [out, rc] =
      up(topology(lab_,
                  "agents.web = { kind = \"http\", port = 80, restart = \"on-failure\" }\n"
                  "agents.flaky = { kind = \"command\", argv = [\"sh\", \"-c\", "
                  "\"echo started; " + until_go("exit 1") + "\"], restart = \"on-failure\" }"));
  ASSERT_EQ(rc, 0) << out;
  auto web = agent_json("srv", "web");
  const pid_t first = web["pid"].get<pid_t>();
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  web = await_agent("srv", "web", "running (restarted once)");
  EXPECT_EQ(web["status"], "running (restarted once)") << web.dump();
  EXPECT_NE(web["pid"].get<pid_t>(), first);
  // It listens again: the restarted server answers.
  Fd client = ns("client");
  std::string body;
  for (int i = 0; i < 40 && body.empty(); ++i) {
    (void)run_in_netns(client.get(), [&]() -> Status {
      TRY_ASSIGN(body, http_get(*IpAddr::parse("10.77.0.2"), 80, "/", 1000ms));
      return {};
    });
    if (body.empty()) std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(body, "srv");

  // Told to, flaky fails, and then fails at once on every restart (after 0.5, then 1 s).
  go();
  nlohmann::json flaky;
  for (int i = 0; i < 400; ++i) {
    flaky = agent_json("srv", "flaky");
    if (flaky.is_object() && flaky["restarts"].get<int>() >= 2) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_GE(flaky["restarts"].get<int>(), 2) << flaky.dump();
  std::string log = run(kLabctl + " logs " + lab_ + " srv flaky");
  EXPECT_GE(std::count(log.begin(), log.end(), '\n'), 3) << log;
  EXPECT_THAT(log, HasSubstr("exited (code 1); restarting in")) << log;
  // TearDown: down leaves no namespace, no state and no supervisor of this lab.
}

TEST_F(HostAgents, LoadAgentWithAUrlTargetLoadsTheServerOnceItIsReady) {
  // The load agent is on the client, first in the file: it must still start after srv's.
  auto [out, rc] =
      up(topology(lab_, "agents.web = { kind = \"http\", port = 8080 }",
                  "agents.gen = { kind = \"load\", target = \"http://10.77.0.3:8080/hello\", "
                  "count = 20, seconds = 5 }"));
  ASSERT_EQ(rc, 0) << out;
  auto gen = await_agent("client", "gen", "finished");
  EXPECT_EQ(gen["status"], "finished (code 0)") << gen.dump();
  EXPECT_EQ(gen["ok"], true);
  std::string log = run(kLabctl + " logs " + lab_ + " client gen");
  EXPECT_THAT(log, HasSubstr("srv 20")) << log;
  EXPECT_THAT(log, Not(HasSubstr("failed"))) << log;
  // The server saw the path asked for, from the client's address.
  std::string access = run(kLabctl + " logs " + lab_ + " srv web");
  EXPECT_THAT(access, HasSubstr("10.77.0.10:")) << access;
  EXPECT_THAT(access, HasSubstr("\"GET /hello\" 200")) << access;
  EXPECT_THAT(ls_line(), ::testing::EndsWith(" ok"));
}

TEST_F(HostAgents, UdpEchoAnswersFromTheAddressItWasSentTo) {
  auto [out, rc] =
      up(topology(lab_, "agents.echo = { kind = \"echo\", port = 7, proto = \"udp\" }"));
  ASSERT_EQ(rc, 0) << out;
  Fd client = ns("client");
  // The secondary address .3: a wildcard socket would answer from the primary .2, and a
  // connected socket drops that. Both addresses must answer.
  for (const char* to : {"10.77.0.3", "10.77.0.2"}) {
    std::string got;
    ASSERT_TRUE(run_in_netns(client.get(), [&]() -> Status {
      Fd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_port = htons(7);
      ::inet_pton(AF_INET, to, &sa.sin_addr);
      if (::connect(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
        return fail_errno("connect", errno);
      timeval tv{2, 0};
      ::setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      if (::send(s.get(), "ping", 4, 0) != 4) return fail_errno("send", errno);
      char buf[16];
      ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
      if (n < 0) return fail_errno(std::string("no echo from ") + to, errno);
      got.assign(buf, static_cast<size_t>(n));
      return {};
    })) << to;
    EXPECT_EQ(got, "ping") << to;
  }
}

TEST_F(HostAgents, LogsPrintsFollowsAndNamesWhatIsUnknown) {
  auto [out, rc] = up(topology(lab_,
                               "agents.web = { kind = \"http\", port = 80 }\n"
                               "agents.talk = { kind = \"command\", argv = [\"sh\", \"-c\", "
                               "\"echo hello-from-talk; exec sleep 100\"] }"));
  ASSERT_EQ(rc, 0) << out;
  Fd client = ns("client");
  auto get = [&] {
    (void)run_in_netns(client.get(), [&]() -> Status {
      TRY_ASSIGN(auto b, http_get(*IpAddr::parse("10.77.0.2"), 80, "/first", 2000ms));
      return {};
    });
  };
  get();
  std::string one = run(kLabctl + " logs " + lab_ + " srv web");
  EXPECT_THAT(one, HasSubstr("10.77.0.10:")) << one;
  EXPECT_THAT(one, HasSubstr("\"GET /first\" 200")) << one;
  std::string all = run(kLabctl + " logs " + lab_ + " srv");
  EXPECT_THAT(all, HasSubstr("web | 10.77.0.10:")) << all;
  EXPECT_THAT(all, HasSubstr("talk | hello-from-talk")) << all;
  get();
  std::string last = run(kLabctl + " logs -n 1 " + lab_ + " srv web");
  EXPECT_EQ(std::count(last.begin(), last.end(), '\n'), 1) << last;

  std::string bad = run(kLabctl + " logs " + lab_ + " sr web 2>&1; echo rc=$?");
  EXPECT_THAT(bad, HasSubstr("has no node 'sr'")) << bad;
  EXPECT_THAT(bad, HasSubstr("did you mean 'srv'")) << bad;
  EXPECT_THAT(bad, HasSubstr("rc=2")) << bad;
  bad = run(kLabctl + " logs " + lab_ + " srv wbe 2>&1; echo rc=$?");
  EXPECT_THAT(bad, HasSubstr("has no agent 'wbe'")) << bad;
  EXPECT_THAT(bad, HasSubstr("did you mean 'web'")) << bad;
  bad = run(kLabctl + " logs " + lab_ + " client 2>&1; echo rc=$?");
  EXPECT_THAT(bad, HasSubstr("has no agents")) << bad;
  bad = run(kLabctl + " logs " + lab_ + "x srv 2>&1; echo rc=$?");
  EXPECT_THAT(bad, HasSubstr("is not up")) << bad;
  EXPECT_THAT(bad, HasSubstr("rc=1")) << bad;

  // -f: a request made while it follows shows up, and it runs until stopped. The request
  // waits until `logs` has the log open (not for a time that a loaded machine may exceed).
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  Fd out_r(p[0]);
  const pid_t follower = ::fork();
  if (follower == 0) {
    ::dup2(p[1], 1);
    ::execl(kLabctl.c_str(), "labctl", "logs", "-f", "-n", "0", lab_.c_str(), "srv", "web", nullptr);
    ::_exit(127);
  }
  ::close(p[1]);
  ASSERT_GT(follower, 0);
  const std::string log = agent_log_path(lab_, "srv", "web");
  auto has_it_open = [&] {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(follower) + "/fd", ec))
      if (std::filesystem::read_symlink(e.path(), ec) == log) return true;
    return false;
  };
  for (int i = 0; i < 10000 && !has_it_open(); ++i) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(has_it_open());
  (void)run_in_netns(client.get(), [&]() -> Status {
    TRY_ASSIGN(auto b, http_get(*IpAddr::parse("10.77.0.2"), 80, "/while-following", 2000ms));
    return {};
  });
  std::string followed;
  for (int i = 0; i < 100 && followed.find("/while-following") == std::string::npos; ++i) {
    pollfd pf{out_r.get(), POLLIN, 0};
    if (::poll(&pf, 1, 100) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(out_r.get(), buf, sizeof buf);
    if (n <= 0) break;
    followed.append(buf, static_cast<size_t>(n));
  }
  int ws = 0;
  EXPECT_EQ(::waitpid(follower, &ws, WNOHANG), 0) << "logs -f ended by itself";
  ::kill(follower, SIGTERM);
  ASSERT_EQ(::waitpid(follower, &ws, 0), follower);
  EXPECT_THAT(followed, HasSubstr("\"GET /while-following\" 200")) << followed;
  EXPECT_THAT(followed, Not(HasSubstr("/first"))) << followed;
}

// Node a's agent b-c and node a-b's agent c: each has its own log and state, `status`
// shows both, and `down` stops both (as "NODE-AGENT" they shared one of each).
TEST_F(HostAgents, AgentsWhoseNamesJoinAlikeKeepTheirOwnLogsAndStates) {
  auto [out, rc] = up("version = 1\nname = \"" + lab_ +
                      "\"\n[switches.lan]\n"
                      "[nodes.a]\ninterfaces.eth0 = { switch = \"lan\", addresses = [\"10.77.0.1/24\"] }\n"
                      "agents.b-c = { kind = \"command\", argv = [\"sh\", \"-c\", "
                      "\"echo marker-of-a; exec sleep 1031\"] }\n"
                      "[nodes.a-b]\ninterfaces.eth0 = { switch = \"lan\", addresses = [\"10.77.0.2/24\"] }\n"
                      "agents.c = { kind = \"command\", argv = [\"sh\", \"-c\", "
                      "\"echo marker-of-a-b; exec sleep 1032\"] }\n");
  ASSERT_EQ(rc, 0) << out;
  const std::string a = run(kLabctl + " logs " + lab_ + " a b-c");
  const std::string ab = run(kLabctl + " logs " + lab_ + " a-b c");
  EXPECT_EQ(a, "marker-of-a\n");
  EXPECT_EQ(ab, "marker-of-a-b\n");
  EXPECT_EQ(agent_json("a", "b-c")["status"], "running");
  EXPECT_EQ(agent_json("a-b", "c")["status"], "running");
  EXPECT_NE(run("pgrep -x -f 'sleep 1031' || true"), "");
  EXPECT_NE(run("pgrep -x -f 'sleep 1032' || true"), "");
  EXPECT_EQ(run(kLabctl + " down " + lab_ + " >/dev/null 2>&1; echo $?"), "0\n");
  EXPECT_EQ(run("pgrep -x -f 'sleep 103[12]' || true"), "");
}

// Whoever runs `up` may hold descriptors it never meant agents to keep: a CI harness reads
// `up`'s output through a pipe until EOF. Once `up` exits that pipe must close, so no agent
// (nor its supervisor) may hold it; the agents themselves get 0-2 and nothing else.
TEST_F(HostAgents, AgentsKeepNoDescriptorOfWhoeverRanUp) {
  std::ofstream(file_) << topology(lab_,
                                   "agents.web = { kind = \"http\", port = 80 }\n"
                                   "agents.idle = { kind = \"command\", argv = [\"sleep\", \"1033\"] }");
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  Fd pipe_r(p[0]);
  const pid_t pid = ::fork();
  if (pid == 0) {
    // `( labctl up LAB 5>&1 >/dev/null 2>&1 ) | cat`: fd 5 is the pipe, nothing else is.
    ::dup2(p[1], 5);
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::dup2(null, 2);
    ::execl(kLabctl.c_str(), "labctl", "up", file_.c_str(), nullptr);
    ::_exit(127);
  }
  ::close(p[1]);
  ASSERT_GT(pid, 0);
  int ws = 0;
  ASSERT_EQ(::waitpid(pid, &ws, 0), pid);
  ASSERT_TRUE(WIFEXITED(ws) && WEXITSTATUS(ws) == 0) << ws;
  // labctl is gone: EOF now, unless something it started holds the write end.
  pollfd pf{pipe_r.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&pf, 1, 10000), 1) << "the pipe stays open after up exited: agents hold it";
  char c;
  EXPECT_EQ(::read(pipe_r.get(), &c, 1), 0);

  const auto pids = pids_in_netns(netns_path(netns_name(lab_, "srv")));
  ASSERT_GE(pids.size(), 4u);  // two supervisors, two agents
  int agents = 0;
  for (pid_t agent : pids) {
    const std::string proc = "/proc/" + std::to_string(agent);
    const std::string cmdline = read_text(proc + "/cmdline");
    if (cmdline.find("supervise") != std::string::npos) continue;  // its own signalfd
    ++agents;
    std::vector<std::string> fds;
    for (const auto& e : std::filesystem::directory_iterator(proc + "/fd")) {
      const std::string fd = e.path().filename();
      if (fd != "0" && fd != "1" && fd != "2")
        fds.push_back(fd + " -> " + std::filesystem::read_symlink(e.path()).string());
    }
    // The http agent's own sockets are its own; nothing may be inherited.
    if (cmdline.find("sleep") != std::string::npos) {
      EXPECT_TRUE(fds.empty()) << cmdline << " holds " << ::testing::PrintToString(fds);
    }
  }
  EXPECT_EQ(agents, 2);
}

}  // namespace
}  // namespace labctl
