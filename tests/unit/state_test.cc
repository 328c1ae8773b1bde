#include "labctl/lab/state.h"

#include <stdlib.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <filesystem>

#include <gtest/gtest.h>

namespace labctl {
namespace {

class StateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/labctl-state-XXXXXX";
    root_ = ::mkdtemp(tmpl);
    ::setenv("LABCTL_STATE_DIR", root_.c_str(), 1);
  }
  void TearDown() override {
    ::unsetenv("LABCTL_STATE_DIR");
    std::filesystem::remove_all(root_);
  }
  std::string root_;
};

TEST_F(StateTest, StateDirIsPrivateAndRemovable) {
  ASSERT_TRUE(make_state_dir("lab1"));
  struct stat st{};
  ASSERT_EQ(::stat(state_dir("lab1").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_EQ(labs_with_state(), std::vector<std::string>{"lab1"});
  ASSERT_TRUE(remove_state_dir("lab1"));
  EXPECT_TRUE(labs_with_state().empty());
  EXPECT_TRUE(remove_state_dir("lab1")) << "removing twice is fine";
}

// Names hold '-': node a's agent b-c and node a-b's agent c must not share a log, a state
// record or a keepalived folder (they did as "NODE-AGENT").
TEST_F(StateTest, AgentFilesOfNamesThatJoinAlikeStayApart) {
  EXPECT_NE(agent_log_path("l", "a", "b-c"), agent_log_path("l", "a-b", "c"));
  EXPECT_NE(agent_state_path("l", "a", "b-c"), agent_state_path("l", "a-b", "c"));
  EXPECT_NE(keepalived_dir("l", "a", "b-c"), keepalived_dir("l", "a-b", "c"));
  EXPECT_EQ(agent_log_path("l", "a-b", "c"), state_dir("l") + "/logs/a-b/c.log");
  EXPECT_EQ(agent_state_path("l", "a", "b-c"), state_dir("l") + "/agents/a/b-c.json");
  EXPECT_EQ(keepalived_dir("l", "a", "b-c"), state_dir("l") + "/keepalived/a/b-c");
}

TEST_F(StateTest, AgentFoldersArePrivatePerNode) {
  ASSERT_TRUE(make_state_dir("lab1"));
  ASSERT_TRUE(make_agent_dirs("lab1", "a-b"));
  for (const char* kind : {"/logs", "/agents", "/keepalived"})
    for (const std::string& dir : {state_dir("lab1") + kind, state_dir("lab1") + kind + "/a-b"}) {
      struct stat st{};
      ASSERT_EQ(::lstat(dir.c_str(), &st), 0) << dir;
      EXPECT_TRUE(S_ISDIR(st.st_mode)) << dir;
      EXPECT_EQ(st.st_mode & 0777, 0700u) << dir;
    }
  // A folder others can write is refused, not used.
  ASSERT_EQ(::chmod((state_dir("lab1") + "/logs/a-b").c_str(), 0777), 0);
  EXPECT_FALSE(make_agent_dirs("lab1", "a-b"));
  EXPECT_FALSE(make_agent_dirs("lab1", "../x")) << "no name with a '/' becomes a path";
}

TEST_F(StateTest, JournalRoundTripsAndToleratesTornTail) {
  ASSERT_TRUE(make_state_dir("lab1"));
  {
    auto j = Journal::open("lab1");
    ASSERT_TRUE(j);
    ASSERT_TRUE(j->append({"netns", "lab1-a", 0}));
    ASSERT_TRUE(j->append({"agent", "a/web", 1234}));
  }
  // A write cut short by a crash must not break reading what came before.
  FILE* f = std::fopen((state_dir("lab1") + "/journal").c_str(), "a");
  std::fputs("netns lab1-", f);
  std::fclose(f);
  auto entries = Journal::read("lab1");
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].kind, "netns");
  EXPECT_EQ(entries[0].name, "lab1-a");
  EXPECT_EQ(entries[1].name, "a/web");
  EXPECT_EQ(entries[1].pid, 1234);
  EXPECT_TRUE(Journal::read("missing").empty());
}

TEST_F(StateTest, LockIsExclusivePerLabOnly) {
  auto a = LabLock::acquire("lab1");
  ASSERT_TRUE(a);
  auto b = LabLock::acquire("lab2");
  EXPECT_TRUE(b) << "another lab does not wait";
  // flock locks belong to the open file description: a second open conflicts.
  std::string path = root_ + "/locks/lab1.lock";
  int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  EXPECT_NE(::flock(fd, LOCK_EX | LOCK_NB), 0);
  ::close(fd);
}

TEST_F(StateTest, RemovedLockFileIsNotLockedByALateWaiter) {
  const std::string path = root_ + "/locks/lab1.lock";
  auto a = LabLock::acquire("lab1");
  ASSERT_TRUE(a);
  a->remove();
  EXPECT_NE(::access(path.c_str(), F_OK), 0) << "down leaves no lock file behind";
  // A new acquirer creates and locks a fresh file at the path...
  auto b = LabLock::acquire("lab1");
  ASSERT_TRUE(b);
  EXPECT_EQ(::access(path.c_str(), F_OK), 0);
  // ...which is really held: a third party cannot take it.
  int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  EXPECT_NE(::flock(fd, LOCK_EX | LOCK_NB), 0);
  ::close(fd);
}

// Lab folders and labctl's own files are apart: no lab name reaches locks/.
TEST_F(StateTest, LabFoldersLiveApartFromLabctlsOwnFiles) {
  ASSERT_TRUE(make_state_dir("lab1"));
  EXPECT_EQ(state_dir("lab1"), root_ + "/labs/lab1");
  auto lock = LabLock::acquire("lab2");
  ASSERT_TRUE(lock);
  EXPECT_EQ(::access((root_ + "/locks/lab2.lock").c_str(), F_OK), 0);
  EXPECT_EQ(labs_with_state(), std::vector<std::string>{"lab1"}) << "locks/ is no lab";
  for (const char* reserved : {"locks", "labs", "vm"}) {
    auto st = make_state_dir(reserved);
    ASSERT_FALSE(st) << reserved;
    EXPECT_NE(st.error().str().find("reserved for labctl's own files"), std::string::npos)
        << st.error().str();
    EXPECT_FALSE(remove_state_dir(reserved)) << reserved;
    EXPECT_FALSE(LabLock::acquire(reserved)) << reserved;
  }
  EXPECT_EQ(::access((root_ + "/locks/lab2.lock").c_str(), F_OK), 0) << "nothing removed";
}

// A name that is no lab name never becomes a path that is made or removed: `down ..`
// would otherwise remove_all the parent of the state root.
TEST_F(StateTest, NamesThatAreNoLabNameNeverBecomePaths) {
  const std::string canary = root_ + "/canary";
  std::filesystem::create_directories(canary);
  ASSERT_TRUE(make_state_dir("lab1"));
  for (const std::string& bad : std::vector<std::string>{"..", ".", "../..", "", "a/b", "-x", std::string(33, 'a'),
                                std::string("a\0b", 3)}) {
    auto st = remove_state_dir(bad);
    ASSERT_FALSE(st) << bad;
    EXPECT_NE(st.error().str().find("no lab can be called"), std::string::npos);
    EXPECT_FALSE(make_state_dir(bad));
    EXPECT_FALSE(LabLock::acquire(bad));
    EXPECT_FALSE(Journal::open(bad));
  }
  EXPECT_TRUE(std::filesystem::exists(canary));
  EXPECT_TRUE(std::filesystem::exists(state_dir("lab1")));
  // The name is shown visibly and bounded, never raw.
  auto st = remove_state_dir(std::string(1 << 20, 'x'));
  ASSERT_FALSE(st);
  EXPECT_LT(st.error().str().size(), 400u);
  EXPECT_NE(st.error().str().find("(1048576 bytes)"), std::string::npos);
  auto bell = check_lab_name("a\ab");
  ASSERT_FALSE(bell);
  EXPECT_EQ(bell.error().str().find('\a'), std::string::npos) << "no raw BEL";
}

}  // namespace
}  // namespace labctl
