#include "labctl/vm/kmod.h"

#include <gtest/gtest.h>

namespace labctl {
namespace {

const char* kDep =
    "kernel/fs/9p/9p.ko: kernel/fs/netfs/netfs.ko kernel/fs/fscache/fscache.ko kernel/net/9p/9pnet.ko\n"
    "kernel/net/9p/9pnet.ko:\n"
    "kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko kernel/drivers/virtio/virtio_ring.ko kernel/drivers/virtio/virtio.ko\n"
    "kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko\n"
    "kernel/fs/netfs/netfs.ko:\n"
    "kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko\n"
    "kernel/drivers/virtio/virtio_ring.ko:\n"
    "kernel/fs/overlayfs/overlay.ko.xz:\n";

size_t pos(const std::vector<std::string>& v, const std::string& s) {
  return static_cast<size_t>(std::find(v.begin(), v.end(), s) - v.begin());
}

TEST(Kmod, ModuleNameStripsDirSuffixAndDashes) {
  EXPECT_EQ(module_name("kernel/net/9p/9pnet_virtio.ko"), "9pnet_virtio");
  EXPECT_EQ(module_name("kernel/drivers/char/hw_random/virtio-rng.ko.zst"), "virtio_rng");
}

TEST(Kmod, LoadOrderPutsDependenciesFirstOnce) {
  auto index = parse_module_index(kDep, "");
  auto order = load_order(index, {"9pnet_virtio", "9p"});
  ASSERT_TRUE(order) << order.error().str();
  EXPECT_EQ(order->size(), 7u);
  EXPECT_LT(pos(*order, "virtio_ring"), pos(*order, "virtio"));
  EXPECT_LT(pos(*order, "virtio"), pos(*order, "9pnet_virtio"));
  EXPECT_LT(pos(*order, "9pnet"), pos(*order, "9pnet_virtio"));
  EXPECT_LT(pos(*order, "netfs"), pos(*order, "fscache"));
  EXPECT_LT(pos(*order, "fscache"), pos(*order, "9p"));
}

TEST(Kmod, BuiltinModulesAreSkippedAndUnknownOnesReported) {
  auto index = parse_module_index(kDep, "kernel/drivers/virtio/virtio.ko\nkernel/drivers/virtio/virtio_ring.ko\n");
  auto order = load_order(index, {"9pnet_virtio"});
  ASSERT_TRUE(order);
  EXPECT_EQ(*order, (std::vector<std::string>{"9pnet", "9pnet_virtio"}));
  auto bad = load_order(index, {"9p", "virtio_pci", "nosuch"});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("virtio_pci, nosuch"), std::string::npos) << bad.error().message;
  EXPECT_FALSE(bad.error().hint.empty());
}

TEST(Kmod, PathKeepsTheCompressionSuffix) {
  auto index = parse_module_index(kDep, "");
  EXPECT_EQ(index.path.at("overlay"), "kernel/fs/overlayfs/overlay.ko.xz");
}

}  // namespace
}  // namespace labctl
