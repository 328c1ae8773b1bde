#include "labctl/vm/initramfs.h"

#include <cstdlib>
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

}  // namespace
}  // namespace labctl
