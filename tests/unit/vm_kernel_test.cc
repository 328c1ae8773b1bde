#include "labctl/vm/guest_kernel.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace labctl {
namespace fs = std::filesystem;
namespace {

// A file with just enough of the x86 boot header to carry a version string.
void fake_bzimage(const fs::path& p, const std::string& version) {
  fs::create_directories(p.parent_path());
  std::string img(0x400, '\0');
  img.replace(0x202, 4, "HdrS");
  uint16_t ptr = 0x300 - 0x200;
  img[0x20E] = static_cast<char>(ptr & 0xff);
  img[0x20F] = static_cast<char>(ptr >> 8);
  img.replace(0x300, version.size() + 20, version + " (builder) #1 SMP");
  std::ofstream(p, std::ios::binary) << img;
}

class VmKernelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/labctl-kernel-test.XXXXXX";
    ASSERT_TRUE(::mkdtemp(tmpl));
    root_ = tmpl;
  }
  void TearDown() override { fs::remove_all(root_); }
  // A cache entry as scripts/fetch-vm-kernel.sh leaves it.
  void cached(const std::string& v, bool complete = true) {
    fake_bzimage(root_ / "cache" / v / "boot" / ("vmlinuz-" + v), v);
    fs::create_directories(root_ / "cache" / v / "lib" / "modules" / v);
    if (complete) std::ofstream(root_ / "cache" / v / ".complete");
  }
  KernelQuery query() {
    KernelQuery q;
    q.cache_dir = (root_ / "cache").string();
    return q;
  }
  fs::path root_;
};

TEST_F(VmKernelTest, ReadsTheVersionFromTheBootHeader) {
  fake_bzimage(root_ / "vmlinuz", "6.1.0-56-amd64");
  auto v = kernel_image_version((root_ / "vmlinuz").string());
  ASSERT_TRUE(v) << v.error().str();
  EXPECT_EQ(*v, "6.1.0-56-amd64");
  std::ofstream(root_ / "notakernel") << std::string(0x400, 'x');
  EXPECT_FALSE(kernel_image_version((root_ / "notakernel").string()));
}

TEST_F(VmKernelTest, PicksTheNewestCompleteCacheEntry) {
  cached("6.1.0-9-amd64");
  cached("6.1.0-56-amd64");
  cached("6.1.0-99-amd64", /*complete=*/false);
  auto k = resolve_vm_kernel(query());
  ASSERT_TRUE(k) << k.error().str();
  EXPECT_EQ(k->version, "6.1.0-56-amd64");
  EXPECT_EQ(k->modules, (root_ / "cache/6.1.0-56-amd64/lib/modules/6.1.0-56-amd64").string());
}

TEST_F(VmKernelTest, ExplicitBeatsEnvironmentBeatsCache) {
  cached("6.1.0-56-amd64");
  fake_bzimage(root_ / "env/boot/vmlinuz-6.5.0-env", "6.5.0-env");
  fs::create_directories(root_ / "env/lib/modules/6.5.0-env");
  fake_bzimage(root_ / "mine/boot/vmlinuz-6.9.0-mine", "6.9.0-mine");
  fs::create_directories(root_ / "mods/6.9.0-mine");
  auto q = query();
  q.env_image = (root_ / "env/boot/vmlinuz-6.5.0-env").string();
  auto env = resolve_vm_kernel(q);
  ASSERT_TRUE(env) << env.error().str();
  EXPECT_EQ(env->version, "6.5.0-env");
  EXPECT_EQ(env->modules, (root_ / "env/lib/modules/6.5.0-env").string()) << "inferred";
  q.image = (root_ / "mine/boot/vmlinuz-6.9.0-mine").string();
  q.modules = (root_ / "mods/6.9.0-mine").string();
  auto mine = resolve_vm_kernel(q);
  ASSERT_TRUE(mine) << mine.error().str();
  EXPECT_EQ(mine->version, "6.9.0-mine");
  EXPECT_EQ(mine->modules, q.modules);
}

TEST_F(VmKernelTest, ErrorsSayHowToGetAKernel) {
  auto none = resolve_vm_kernel(query());
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().hint.find("scripts/fetch-vm-kernel.sh"), std::string::npos);
  EXPECT_NE(none.error().hint.find("--kernel"), std::string::npos);
  auto q = query();
  fake_bzimage(root_ / "lonely/vmlinuz-7.0.0-nomods", "7.0.0-nomods");
  q.image = (root_ / "lonely/vmlinuz-7.0.0-nomods").string();
  auto nomods = resolve_vm_kernel(q);
  ASSERT_FALSE(nomods);
  EXPECT_NE(nomods.error().hint.find("--modules"), std::string::npos);
  q.modules = (root_ / "lonely").string();
  auto wrong = resolve_vm_kernel(q);
  ASSERT_FALSE(wrong) << "a modules dir named after another version is refused";
  q = query();
  q.modules = "/lib/modules/x";
  EXPECT_FALSE(resolve_vm_kernel(q)) << "--modules without --kernel";
}

}  // namespace
}  // namespace labctl
