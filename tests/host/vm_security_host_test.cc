// Host tier, issue 21: what another (unprivileged) user can do to labctl's micro-VM code
// running as root. Each attempt runs in a child as nobody (uid/gid 65534, no groups).
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "labctl/lab/lifecycle.h"
#include "labctl/lab/state.h"
#include "labctl/model/load.h"
#include "labctl/plan/planner.h"
#include "labctl/vm/qemu.h"
#include "tests/host/as_nobody.h"
#include "tests/host/host_test.h"

namespace labctl {
namespace fs = std::filesystem;
namespace {

const std::string kLabctl = LABCTL_BINARY_DIR "/labctl/labctl";
using test::vm_work_folder_attacks;
using test::as_nobody;
using test::become_nobody;

// Issue 21 item 1: `labctl vm exec` made its work folder 0777, so while the guest booted
// anyone could read cmd.sh (the caller's environment), replace it (the guest runs it as
// root), plant a symlink labctl would write through, or forge the exit status.
TEST(VmSecurity, OtherUsersCanNeitherReadNorChangeTheWorkFolder) {
  LABCTL_REQUIRE_ROOT();
  auto dir = VmWorkDir::create("export SECRET=s3cret\nexec true\n");
  ASSERT_TRUE(dir) << dir.error().str();
  const std::string d = dir->path();
  struct stat st{};
  ASSERT_EQ(::lstat(d.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  for (const char* name : VmWorkDir::kWorkFiles) {
    ASSERT_EQ(::lstat((d + "/" + name).c_str(), &st), 0) << name;
    EXPECT_TRUE(S_ISREG(st.st_mode)) << name;
    EXPECT_EQ(st.st_mode & 0077, 0u) << name;
  }
  EXPECT_EQ(as_nobody(vm_work_folder_attacks(d)), std::vector<std::string>{});
  // labctl itself reads what the guest writes there.
  EXPECT_EQ(dir->read("cmd.sh", 4096), "export SECRET=s3cret\nexec true\n");
}

// A TMPDIR others may rename entries of lets them swap the folder after the fact.
TEST(VmSecurity, ATemporaryDirectoryOthersControlIsRefused) {
  LABCTL_REQUIRE_ROOT();
  char templ[] = "/tmp/labctl-vm-tmpdir-test.XXXXXX";
  ASSERT_TRUE(::mkdtemp(templ));
  const std::string open_dir = std::string(templ) + "/open";
  const std::string theirs = std::string(templ) + "/theirs";
  ASSERT_EQ(::mkdir(open_dir.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(open_dir.c_str(), 0777), 0);
  ASSERT_EQ(::mkdir(theirs.c_str(), 0700), 0);
  ASSERT_EQ(::chown(theirs.c_str(), test::kNobody, test::kNobody), 0);
  const char* old = std::getenv("TMPDIR");
  const std::string saved = old ? old : "";
  for (const auto& [dir, why] : {std::pair{open_dir, "without the sticky bit"},
                                 std::pair{theirs, "belongs to another user"}}) {
    ::setenv("TMPDIR", dir.c_str(), 1);
    auto w = VmWorkDir::create("true\n");
    ASSERT_FALSE(w) << dir;
    EXPECT_NE(w.error().message.find(why), std::string::npos) << w.error().message;
    EXPECT_TRUE(fs::is_empty(dir));
  }
  ASSERT_EQ(::chmod(open_dir.c_str(), 01777), 0);
  ::setenv("TMPDIR", open_dir.c_str(), 1);
  EXPECT_TRUE(VmWorkDir::create("true\n")) << "a sticky folder like /tmp is fine";
  if (old) ::setenv("TMPDIR", saved.c_str(), 1);
  else ::unsetenv("TMPDIR");
  fs::remove_all(templ);
}

// The fixture topology under a fresh random lab name.
struct TestLab {
  std::string name;
  Topology topo;
  Plan plan;
};

TestLab make_lab() {
  std::ifstream in(std::string(LABCTL_TEST_DATA) + "/host/multi.toml");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  TestLab l;
  l.name = "v" + std::to_string(::getpid() % 10000) + "x" +
           std::to_string(std::random_device{}() % 100000);
  auto at = text.find("name = \"");
  text.replace(at, text.find('\n', at) - at, "name = \"" + l.name + "\"");
  auto r = parse_topology(text, "multi.toml");
  EXPECT_TRUE(r.ok());
  if (r.ok()) {
    l.topo = *r.topology;
    l.plan = make_plan(l.topo);
  }
  return l;
}

// Issue 21 item 2: a process of any user whose command line merely named the lab's relay
// socket passed for the lab's qemu: root's `labctl down` killed it, removed the state and
// skipped the teardown, leaving the lab's namespaces and agents.
TEST(VmSecurity, DownIsNotFooledByALookAlikeQemuOfAnotherUser) {
  LABCTL_REQUIRE_ROOT();
  TestLab l = make_lab();
  ASSERT_FALSE(l.name.empty());
  ASSERT_TRUE(lab_up(l.topo, l.plan, {}));
  ASSERT_FALSE(lab_namespaces(l.name).empty());
  // nobody's `exec -a "x .../labs/LAB/vm/port0.sock" sleep`; the pipe's end says it exec'd.
  const std::string fake = "x " + state_dir(l.name) + "/vm/port0.sock";
  int pipefd[2];
  ASSERT_EQ(::pipe2(pipefd, O_CLOEXEC), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    become_nobody();
    ::execl("/bin/sleep", fake.c_str(), "600", nullptr);
    ::_exit(127);
  }
  ::close(pipefd[1]);
  char c;
  EXPECT_EQ(::read(pipefd[0], &c, 1), 0);
  ::close(pipefd[0]);
  ASSERT_TRUE(test::alive(pid));

  int rc = std::system((kLabctl + " down " + l.name + " >/dev/null 2>&1").c_str());
  EXPECT_EQ(WEXITSTATUS(rc), 0);
  EXPECT_TRUE(lab_namespaces(l.name).empty()) << "down skipped the teardown";
  EXPECT_FALSE(fs::exists(state_dir(l.name)));
  EXPECT_TRUE(test::alive(pid)) << "root's down killed another user's process";

  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  (void)lab_down(l.name);
}

}  // namespace
}  // namespace labctl
