// Host tier, issue 21: what another (unprivileged) user can do to labctl's micro-VM code
// running as root. Each attempt runs in a child as nobody (uid/gid 65534, no groups).
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "labctl/vm/qemu.h"
#include "tests/host/as_nobody.h"
#include "tests/host/host_test.h"

namespace labctl {
namespace fs = std::filesystem;
namespace {

using test::vm_work_folder_attacks;
using test::as_nobody;

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
  const std::string open_dir = std::string(templ) + "/open", theirs = std::string(templ) + "/theirs";
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

}  // namespace
}  // namespace labctl
