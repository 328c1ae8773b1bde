#include "labctl/vm/initramfs.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace labctl {
namespace {

InitConfig config(const std::string& modules_dir) {
  return {"6.1.0-56-amd64", modules_dir, {"virtio_ring", "virtio", "9pnet", "9p", "overlay"},
          "/usr/sbin/modprobe", {"ip_vs", "ip_vs_lblc"}};
}

bool shell_syntax_ok(const std::string& script) {
  char path[] = "/tmp/labctl-init-test.XXXXXX";
  int fd = ::mkstemp(path);
  ::close(fd);
  std::ofstream(path) << script;
  int rc = ::system(("/bin/sh -n " + std::string(path)).c_str());
  ::unlink(path);
  return rc == 0;
}

TEST(Initramfs, InitLoadsModulesInOrderAndRunsTheCommandFromTheShare) {
  std::string s = init_script(config("/var/cache/labctl/kernel/v/lib/modules/6.1.0-56-amd64"));
  EXPECT_EQ(s.rfind("#!/bin/busybox sh\n", 0), 0u);
  EXPECT_NE(s.find("for m in 'virtio_ring' 'virtio' '9pnet' '9p' 'overlay'; do"), std::string::npos);
  EXPECT_NE(s.find("labctl_root /lower"), std::string::npos);
  EXPECT_NE(s.find("echo /sbin/labctl-modprobe >/proc/sys/kernel/modprobe"), std::string::npos);
  EXPECT_NE(s.find("for m in 'ip_vs' 'ip_vs_lblc'; do"), std::string::npos);
  EXPECT_NE(s.find("chroot /newroot /bin/sh /run/labctl-vm/cmd.sh"), std::string::npos);
  EXPECT_NE(s.find("if true; then"), std::string::npos) << "modules tree bound into place";
  EXPECT_LT(s.find("status.tmp"), s.find("poweroff -f\necho o"));
  EXPECT_TRUE(shell_syntax_ok(s));
}

TEST(Initramfs, TheHostsOwnModulesTreeNeedsNoBind) {
  EXPECT_NE(init_script(config("/lib/modules/6.1.0-56-amd64")).find("if false; then"), std::string::npos);
  EXPECT_NE(init_script(config("/usr/lib/modules/6.1.0-56-amd64")).find("if false; then"), std::string::npos);
}

TEST(Initramfs, ModprobeWrapperRunsModprobeInTheChroot) {
  EXPECT_EQ(modprobe_wrapper(config("/x")),
            "#!/bin/busybox sh\nexec /bin/busybox chroot /newroot '/usr/sbin/modprobe' \"$@\"\n");
}

TEST(Initramfs, DynamicBinariesAreRefusedAsBusybox) {
  auto st = check_static_busybox("/bin/sh");
  ASSERT_FALSE(st) << "/bin/sh is dynamically linked on Debian";
  EXPECT_NE(st.error().hint.find("busybox-static"), std::string::npos);
  EXPECT_FALSE(check_static_busybox("/nonexistent/busybox"));
}

// A modules tree with the early modules (tiny fake .ko files: they are only copied).
std::string fake_modules_tree(const std::string& root) {
  const std::string dir = root + "/lib/modules/6.1.0-labctl-test";
  std::filesystem::create_directories(dir + "/kernel");
  std::string dep;
  for (const auto& m : kEarlyModules) {
    dep += "kernel/" + m + ".ko:\n";
    std::ofstream(dir + "/kernel/" + m + ".ko") << "module " << m;
  }
  std::ofstream(dir + "/modules.dep") << dep;
  return dir;
}

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// Issue 21 item 16: a cached image of the right size was reused whatever its bytes, and
// the cache was written through ofstream on a fixed temporary name (PATH.tmp.PID).
TEST(Initramfs, TheCacheIsUsedOnlyWithTheSameBytesAndWrittenSafely) {
  if (!check_static_busybox("/bin/busybox")) GTEST_SKIP() << "busybox-static missing";
  char templ[] = "/tmp/labctl-initramfs-test.XXXXXX";
  ASSERT_TRUE(::mkdtemp(templ));
  const std::string root = templ, cache = root + "/cache";
  std::filesystem::create_directories(cache);
  VmKernel k{"", fake_modules_tree(root), "6.1.0-labctl-test"};
  auto path = prepare_initramfs(k, {"ip_vs"}, "/bin/busybox", cache);
  ASSERT_TRUE(path) << path.error().str();
  const std::string good = file_bytes(*path);
  ASSERT_GT(good.size(), 1000u);

  // Same size, other bytes: rebuilt.
  std::ofstream(*path, std::ios::binary | std::ios::trunc) << std::string(good.size(), 'x');
  auto again = prepare_initramfs(k, {"ip_vs"}, "/bin/busybox", cache);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *path);
  EXPECT_TRUE(file_bytes(*again) == good) << "a forged cache file of the same size was used";

  // A symlink where the old code put its temporary file is never written through.
  std::filesystem::remove(*path);
  const std::string victim = root + "/victim";
  std::ofstream(victim) << "keep";
  std::filesystem::create_symlink(victim, *path + ".tmp." + std::to_string(::getpid()));
  auto third = prepare_initramfs(k, {"ip_vs"}, "/bin/busybox", cache);
  ASSERT_TRUE(third) << third.error().str();
  EXPECT_EQ(file_bytes(victim), "keep");
  EXPECT_TRUE(file_bytes(*third) == good);
  EXPECT_FALSE(std::filesystem::is_symlink(*third));
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace labctl
