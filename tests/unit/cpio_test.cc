#include "labctl/vm/cpio.h"

#include <sys/stat.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace labctl {
namespace {

struct Entry {
  std::string name;
  uint32_t mode = 0, rmajor = 0, rminor = 0;
  std::string data;
};

uint32_t hex(const std::string& s, size_t off) { return std::stoul(s.substr(off, 8), nullptr, 16); }

// An independent reader of the newc format, as the kernel's init/initramfs.c reads it.
std::vector<Entry> parse(const std::string& a) {
  std::vector<Entry> out;
  size_t off = 0;
  while (off < a.size()) {
    EXPECT_EQ(a.substr(off, 6), "070701") << "at " << off;
    Entry e;
    e.mode = hex(a, off + 14);
    uint32_t size = hex(a, off + 54);
    e.rmajor = hex(a, off + 78);
    e.rminor = hex(a, off + 86);
    uint32_t namesize = hex(a, off + 94);
    e.name = a.substr(off + 110, namesize - 1);
    EXPECT_EQ(a[off + 110 + namesize - 1], '\0');
    off = (off + 110 + namesize + 3) & ~size_t{3};
    e.data = a.substr(off, size);
    off = (off + size + 3) & ~size_t{3};
    out.push_back(e);
    if (e.name == "TRAILER!!!") break;
  }
  EXPECT_EQ(off, a.size()) << "nothing after the trailer";
  return out;
}

TEST(Cpio, EntriesRoundTripWithAlignment) {
  CpioWriter w;
  w.add_dir("/dev");
  w.add_char_device("dev/console", 5, 1);
  w.add_file("init", "#!/bin/sh\n", 0755);
  w.add_file("odd", "12345");  // forces data padding
  w.add_symlink("sbin", "bin");
  std::string a = w.finish();
  EXPECT_EQ(a.size() % 4, 0u);
  auto e = parse(a);
  ASSERT_EQ(e.size(), 6u);
  EXPECT_EQ(e[0].name, "dev") << "leading slash dropped";
  EXPECT_TRUE(S_ISDIR(e[0].mode));
  EXPECT_TRUE(S_ISCHR(e[1].mode));
  EXPECT_EQ(e[1].rmajor, 5u);
  EXPECT_EQ(e[1].rminor, 1u);
  EXPECT_EQ(e[2].data, "#!/bin/sh\n");
  EXPECT_EQ(e[2].mode, static_cast<uint32_t>(S_IFREG | 0755));
  EXPECT_EQ(e[3].data, "12345");
  EXPECT_TRUE(S_ISLNK(e[4].mode));
  EXPECT_EQ(e[4].data, "bin");
  EXPECT_EQ(e[5].name, "TRAILER!!!");
}

TEST(Cpio, FinishResetsTheWriter) {
  CpioWriter w;
  w.add_file("a", "x");
  std::string first = w.finish();
  w.add_file("a", "x");
  EXPECT_EQ(w.finish(), first) << "same input, same bytes (the cache key depends on it)";
}

}  // namespace
}  // namespace labctl
