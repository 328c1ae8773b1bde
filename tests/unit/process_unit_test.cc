// What spawn_in_netns says before it forks, when the program cannot be run: no root needed.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <cstdlib>
#include <chrono>
#include <string>

#include "labctl/kernel/process.h"

namespace labctl {
namespace {

class ScopedPath {
 public:
  explicit ScopedPath(const char* value) {
    if (const char* p = std::getenv("PATH")) old_ = p;
    ::setenv("PATH", value, 1);
  }
  ~ScopedPath() { ::setenv("PATH", old_.c_str(), 1); }
  ScopedPath(const ScopedPath&) = delete;
  ScopedPath& operator=(const ScopedPath&) = delete;

 private:
  std::string old_;
};

TEST(SpawnErrors, AProgramNotInPathNamesItAndWherePathLooked) {
  ScopedPath path("/nonexistent/bin:/also/not/here");
  SpawnOptions o;
  o.argv = {"no-such-agent-program"};
  auto r = spawn_in_netns(o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().errnum, ENOENT);
  const std::string s = r.error().str();
  EXPECT_NE(s.find("program 'no-such-agent-program' not found in PATH"), std::string::npos) << s;
  EXPECT_NE(s.find("PATH looked in '/nonexistent/bin:/also/not/here'"), std::string::npos) << s;
  EXPECT_NE(s.find("full path"), std::string::npos) << s;
}

TEST(SpawnErrors, AFullPathThatIsMissingOrNotExecutableSaysWhich) {
  SpawnOptions o;
  o.argv = {"/nonexistent/agent"};
  auto r = spawn_in_netns(o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().errnum, ENOENT);
  EXPECT_NE(r.error().str().find("there is no file '/nonexistent/agent'"), std::string::npos)
      << r.error().str();
  const std::string plain = ::testing::TempDir() + "/labctl-not-executable-" + std::to_string(::getpid());
  std::ofstream(plain) << "#!/bin/sh\n";
  ::chmod(plain.c_str(), 0644);
  o.argv = {plain};
  r = spawn_in_netns(o);
  std::remove(plain.c_str());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().errnum, EACCES);
  EXPECT_NE(r.error().str().find("is not executable"), std::string::npos) << r.error().str();
  // A name with a control byte is shown visibly, never raw.
  o.argv = {"/nonexistent/a\x07gent"};
  r = spawn_in_netns(o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().str().find('\x07'), std::string::npos);
  EXPECT_NE(r.error().str().find("a\\agent"), std::string::npos) << r.error().str();
}

// The scheduler's facts, from the text of /proc/PID/stat (a name with spaces and
// parentheses included) and /proc/PID/schedstat.
TEST(SchedFacts, ReadsStateCpuTimeAndWaits) {
  const std::string stat =
      "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 12345 1000 10\n";
  auto f = parse_sched_facts(stat, "123456789 987654321 42\n", 100);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->state, 'S');
  EXPECT_TRUE(f->waits_known);
  EXPECT_EQ(f->run, std::chrono::nanoseconds(123456789));
  EXPECT_EQ(f->wait, std::chrono::nanoseconds(987654321));
  // Without schedstat: utime + stime in ticks (7 + 3 at 100 a second), waits unknown.
  f = parse_sched_facts(stat, "", 100);
  ASSERT_TRUE(f);
  EXPECT_FALSE(f->waits_known);
  EXPECT_EQ(f->run, std::chrono::milliseconds(100));
  EXPECT_FALSE(parse_sched_facts("4242 (x", "", 100));
  EXPECT_FALSE(parse_sched_facts("4242 (x) S 1 2", "", 100));
}

// What counts as time a program has had: a loaded machine's waits never do.
TEST(SchedFacts, TimeHadCountsOnlyWhatTheProgramGot) {
  using std::chrono::milliseconds;
  const auto wall = milliseconds(1000);
  // Asleep by choice: the wall time but its waits for a CPU (all counted: none under way).
  EXPECT_EQ(time_had({'S', milliseconds(5), milliseconds(900), true}, wall), milliseconds(100));
  EXPECT_EQ(time_had({'I', milliseconds(5), milliseconds(0), true}, wall), wall);
  // Runnable: a wait under way is not counted yet, so only its CPU time is sure.
  EXPECT_EQ(time_had({'R', milliseconds(0), milliseconds(0), true}, wall), milliseconds(0));
  EXPECT_EQ(time_had({'R', milliseconds(300), milliseconds(0), true}, wall), milliseconds(300));
  EXPECT_EQ(time_had({'D', milliseconds(2), milliseconds(0), true}, wall), milliseconds(2));
  // Stopped, or exited and not yet reaped: none.
  for (char s : {'T', 't', 'Z', 'X'})
    EXPECT_EQ(time_had({s, milliseconds(300), milliseconds(0), true}, wall), milliseconds(0)) << s;
}

}  // namespace
}  // namespace labctl
