// labagent supervise's readiness without a port, in a forked child of the test (no root, no
// namespace): "alive for 200 ms" must mean 200 ms the program has had, never 200 ms of a
// machine too loaded to run it (a program that failed at once then passed for ready, and
// `up` said the lab was up).
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "agents/common.h"
#include "labctl/base/fd.h"
#include "labctl/base/file.h"
#include "labctl/kernel/process.h"
#include "labctl/plan/agent.h"

namespace labctl {
namespace {

using namespace std::chrono_literals;

// The supervisor, forked, answering on the read end of `ready`, its stdout and stderr (and
// the agent's) appended to `log`.
pid_t fork_supervisor(int ready_w, const std::vector<std::string>& argv,
                      const std::string& log = "/dev/null", long long log_cap = 0) {
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  int out = ::open(log.c_str(), O_WRONLY | O_APPEND | O_CREAT, 0600);
  ::dup2(out, 1);
  ::dup2(out, 2);
  ::dup2(ready_w, 3);
  if (ready_w != 3) ::close(ready_w);  // only fd 3 may hold the pipe, or its EOF never comes
  labagent::SuperviseOptions o;
  o.ready_fd = 3;
  o.argv = argv;
  o.log_cap_bytes = log_cap;
  ::_exit(labagent::run_supervise(o));
}

// Stops and reaps a supervisor a failed assertion left running (SIGTERM: it stops its
// agent too); one already reaped is left alone.
struct Reaper {
  pid_t pid;
  ~Reaper() {
    if (pid > 0 && ::waitpid(pid, nullptr, WNOHANG) == 0) {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

// The supervisor's one child once it is in `state` (bounded: 10 s), else 0.
pid_t child_in_state(pid_t sup, char state) {
  const std::string children = "/proc/" + std::to_string(sup) + "/task/" + std::to_string(sup) + "/children";
  for (int i = 0; i < 10000; ++i) {
    const pid_t child = static_cast<pid_t>(std::atoi(read_text(children).c_str()));
    if (child > 0)
      if (auto f = sched_facts(child); f && f->state == state) return child;
    std::this_thread::sleep_for(1ms);
  }
  return 0;
}

std::string read_to_eof(int fd) {
  std::string out;
  char buf[256];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) != 0;) {
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
    } else if (errno != EINTR) {
      break;
    }
  }
  return out;
}

// A program the scheduler has not let run (here one stopped, by itself, right after its
// exec) has had no time at all: however long the wall clock runs, it is not ready; once it
// runs and exits 3, the start fails with that.
TEST(Supervise, AProgramThatHasNotRunIsNotReadyHoweverLongTheClockRuns) {
  int ready[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  Fd ready_r(ready[0]);
  const pid_t sup = fork_supervisor(ready[1], {"sh", "-c", "kill -STOP $$; echo boom >&2; exit 3"});
  ::close(ready[1]);
  ASSERT_GT(sup, 0);
  Reaper reaper{sup};
  const pid_t child = child_in_state(sup, 'T');
  ASSERT_GT(child, 0) << "the program never stopped";
  // Four times the alive time (200 ms) passes on the wall clock while it is stopped.
  pollfd p{ready_r.get(), POLLIN, 0};
  if (::poll(&p, 1, 4 * static_cast<int>(kAgentAliveTime.count())) != 0) {
    char buf[256] = {};
    (void)!::read(ready_r.get(), buf, sizeof buf - 1);
    ADD_FAILURE() << "answered while the program had not run: " << buf;
  }
  ASSERT_EQ(::kill(child, SIGCONT), 0);
  EXPECT_EQ(read_to_eof(ready_r.get()), "failed: exited (code 3) before it was ready\n");
  int ws = 0;
  ASSERT_EQ(::waitpid(sup, &ws, 0), sup);
  EXPECT_TRUE(WIFEXITED(ws) && WEXITSTATUS(ws) == 1) << ws;
}

// The other half: a program that sleeps by its own choice is ready once it has had 200 ms.
TEST(Supervise, AProgramAsleepByItsOwnChoiceIsReadyOnceItHadTheAliveTime) {
  int ready[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  Fd ready_r(ready[0]);
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t sup = fork_supervisor(ready[1], {"sleep", "100"});
  ::close(ready[1]);
  ASSERT_GT(sup, 0);
  Reaper reaper{sup};
  char buf[16] = {};
  ASSERT_EQ(::read(ready_r.get(), buf, 6), 6);
  EXPECT_EQ(std::string(buf), "ready\n");
  EXPECT_GE(std::chrono::steady_clock::now() - t0, kAgentAliveTime);
  ::kill(sup, SIGTERM);
  int ws = 0;
  ASSERT_EQ(::waitpid(sup, &ws, 0), sup);
  EXPECT_TRUE(WIFEXITED(ws) && WEXITSTATUS(ws) == 0) << ws;
}

// An agent that logs without end (the http agent writes a line per request) cannot fill
// /run: past the cap its log is copied to LOG.1 and emptied, with a note that says where.
TEST(Supervise, ALogPastItsCapMovesToLogDotOne) {
  char dir[] = "/tmp/labctl-supervise-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  struct RemoveAll {
    std::string path;
    ~RemoveAll() { std::filesystem::remove_all(path); }
  } cleanup{dir};
  const std::string log = std::string(dir) + "/a.log", older = rotated_log_path(log);
  const std::string go = std::string(dir) + "/go";
  // What the agent had written so far: past the cap before the supervisor looks.
  std::string before;
  for (int i = 0; i < 200; ++i) before += "line-" + std::to_string(i) + "-......................\n";
  ASSERT_TRUE(write_text(log, before));
  int ready[2];
  ASSERT_EQ(::pipe2(ready, O_CLOEXEC), 0);
  Fd ready_r(ready[0]);
  const pid_t sup = fork_supervisor(
      ready[1], {"sh", "-c", "while [ ! -e " + go + " ]; do sleep 0.01; done; echo after; exec sleep 100"},
      log, 4096);
  ::close(ready[1]);
  ASSERT_GT(sup, 0);
  Reaper reaper{sup};
  // It looks at least once a second: a bounded wait for LOG.1.
  for (int i = 0; i < 10000 && read_text(older).empty(); ++i) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(read_text(older), before);
  struct stat st{};
  ASSERT_EQ(::stat(older.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // What the agent writes next lands at the start of the emptied log, after the note.
  ASSERT_TRUE(write_text(go, ""));
  std::string now;
  for (int i = 0; i < 10000 && now.find("after\n") == std::string::npos; ++i) {
    std::this_thread::sleep_for(1ms);
    now = read_text(log);
  }
  EXPECT_EQ(now, "labagent supervise: the log passed 4096 bytes; what it held is in " + older + "\nafter\n");
  ::kill(sup, SIGTERM);
  int ws = 0;
  ASSERT_EQ(::waitpid(sup, &ws, 0), sup);
}

}  // namespace
}  // namespace labctl
