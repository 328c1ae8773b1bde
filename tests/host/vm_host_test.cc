// Host tier: boots the micro-VM for real (about 6 s under TCG), so boots are few: one
// for a command's output, arguments and exit status, one killed by --timeout.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <chrono>

#include <gtest/gtest.h>

#include "labctl/vm/initramfs.h"
#include "labctl/vm/qemu.h"
#include "labctl/vm/guest_kernel.h"
#include "tests/host/as_nobody.h"
#include "tests/host/host_test.h"

namespace labctl {
namespace fs = std::filesystem;
namespace {

const std::string kLabctl = LABCTL_BINARY_DIR "/labctl/labctl";

#define LABCTL_REQUIRE_VM()                                                              \
  do {                                                                                   \
    LABCTL_REQUIRE_ROOT();                                                               \
    if (find_program("qemu-system-x86_64").empty())                                      \
      GTEST_SKIP() << "qemu-system-x86_64 missing (package qemu-system-x86)";            \
    if (auto k = resolve_vm_kernel(kernel_query_from_env()); !k)                         \
      GTEST_SKIP() << "no micro-VM kernel: " << k.error().str();                         \
    if (!check_static_busybox("/bin/busybox")) GTEST_SKIP() << "busybox-static missing"; \
  } while (0)

struct Outcome {
  int status = -1;
  std::string out, err;
};

// Runs labctl with `args` (a shell command line) and collects stdout, stderr and status.
Outcome labctl(const std::string& args, const std::string& env = "") {
  std::string err_path = "/tmp/labctl-vm-host-test.err." + std::to_string(::getpid());
  Outcome r;
  FILE* p = ::popen((env + kLabctl + " " + args + " 2>" + err_path).c_str(), "r");
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) r.out.append(buf, n);
  int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  std::ifstream in(err_path);
  std::ostringstream s;
  s << in.rdbuf();
  r.err = s.str();
  ::unlink(err_path.c_str());
  return r;
}

// A TMPDIR of the test's own, so leftovers (share dirs, a qemu naming them) are ours.
class HostVm : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = "/var/tmp/" + test::unique_name("labctl-vm-host-test");
    fs::create_directories(tmp_);
    // Like /tmp: every user may make files there, and no one remove another's.
    fs::permissions(tmp_, static_cast<fs::perms>(01777));
  }
  void TearDown() override { fs::remove_all(tmp_); }
  Outcome vm(const std::string& args) { return labctl("vm exec " + args, "TMPDIR=" + tmp_ + " "); }
  bool empty_tmp() const { return fs::is_empty(tmp_); }
  bool qemu_running() const {
    // "[/]" keeps pgrep from matching the shell that runs it.
    std::string pat = "path=" + tmp_.substr(0, 1) + "[" + tmp_.substr(1, 1) + "]" + tmp_.substr(2);
    return std::system(("pgrep -f '" + pat + "' >/dev/null").c_str()) == 0;
  }
  std::string tmp_;
};

TEST_F(HostVm, RunsTheCommandWithIpvsExactArgsOutputAndExitStatus) {
  LABCTL_REQUIRE_VM();
  Outcome r = vm(
      "-- sh -c 'cat /proc/net/ip_vs; printf \"[%s]\\n\" \"$@\"; pwd; labctl --version; echo to-stderr >&2; exit 42'"
      " sh 'a b' \"it's\" '\"q\"' '$HOME' ''");
  EXPECT_EQ(r.status, 42) << r.err;
  EXPECT_NE(r.out.find("IP Virtual Server version"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[a b]\n[it's]\n[\"q\"]\n[$HOME]\n[]\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(fs::current_path().string() + "\n"), std::string::npos) << "cwd kept";
  // This labctl, not installed, is on the guest's PATH.
  EXPECT_NE(r.out.find("\nlabctl "), std::string::npos) << r.out;
  EXPECT_EQ(r.err, "to-stderr\n");
  EXPECT_TRUE(empty_tmp()) << "the share directory was removed";
}

TEST_F(HostVm, TimeoutKillsTheGuestAndSaysSo) {
  LABCTL_REQUIRE_VM();
  std::string err_path = tmp_ + ".err";
  FILE* p = ::popen(("TMPDIR=" + tmp_ + " " + kLabctl + " vm exec --timeout 3 -- sleep 600 2>" +
                     err_path).c_str(), "r");
  ASSERT_TRUE(p);
  // While the guest boots, its folder is there with everything labctl reads and writes:
  // another user can touch none of it (issue 21 item 1).
  std::string work;
  for (int i = 0; i < 400 && work.empty(); ++i) {
    for (const auto& e : fs::directory_iterator(tmp_))
      if (e.path().filename().string().starts_with("labctl-vm.") &&
          fs::exists(e.path() / "qemu.log"))  // made last
        work = e.path();
    if (work.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_FALSE(work.empty()) << "no work folder in " << tmp_;
  EXPECT_EQ(test::as_nobody(test::vm_work_folder_attacks(work)), std::vector<std::string>{});
  ::sleep(1);
  EXPECT_TRUE(qemu_running()) << "control: the pattern finds a running guest";
  int st = ::pclose(p);
  EXPECT_EQ(WEXITSTATUS(st), 124);
  std::ifstream in(err_path);
  std::string err((std::istreambuf_iterator<char>(in)), {});
  ::unlink(err_path.c_str());
  EXPECT_NE(err.find("did not finish within 3 s"), std::string::npos) << err;
  EXPECT_TRUE(empty_tmp());
  EXPECT_FALSE(qemu_running()) << "qemu was killed";
}

TEST(HostVmCli, MissingKernelErrorSaysHowToGetOne) {
  Outcome r = labctl("vm exec --kernel /nonexistent/vmlinuz-1.0 -- true");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("scripts/fetch-vm-kernel.sh"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace labctl
