// The file primitives labctl writes through as root: none follows a planted symlink, none
// leaves a file others can read, and a folder someone else could write is refused.
#include "labctl/base/file.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

namespace labctl {
namespace {

class FileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/labctl-file-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

mode_t mode_of(const std::string& p) {
  struct stat st{};
  EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
  return st.st_mode;
}

TEST_F(FileTest, WriteTextReplacesAPlantedSymlinkInsteadOfFollowingIt) {
  const std::string victim = dir_ + "/victim", link = dir_ + "/out";
  ASSERT_TRUE(write_text(victim, "precious"));
  ASSERT_EQ(::symlink(victim.c_str(), link.c_str()), 0);
  ASSERT_TRUE(write_text(link, "new"));
  EXPECT_EQ(read_text(victim), "precious");
  EXPECT_TRUE(S_ISREG(mode_of(link)));
  EXPECT_EQ(read_text(link), "new");
  EXPECT_EQ(mode_of(link) & 0777, 0600u);
  EXPECT_TRUE(write_file_atomically(link, "x", 0644));
  EXPECT_EQ(mode_of(link) & 0777, 0644u) << "a mode the caller asks for";
  size_t files = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir_)) ++files;
  EXPECT_EQ(files, 2u) << "no temporary file left behind";
}

TEST_F(FileTest, CreateFileAtRefusesAnythingAlreadyThere) {
  Fd dir(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(dir);
  ASSERT_EQ(::symlink("/etc/passwd", (dir_ + "/planted").c_str()), 0);
  auto planted = create_file_at(dir.get(), "planted");
  ASSERT_FALSE(planted);
  EXPECT_EQ(planted.error().errnum, EEXIST);
  auto fresh = create_file_at(dir.get(), "fresh");
  ASSERT_TRUE(fresh);
  EXPECT_EQ(mode_of(dir_ + "/fresh") & 0777, 0600u);
  EXPECT_TRUE(::fcntl(fresh->get(), F_GETFD) & FD_CLOEXEC);
}

TEST_F(FileTest, MakePrivateDirCreatesOrAcceptsOnlyAPrivateFolderOfOurs) {
  const std::string d = dir_ + "/state";
  ASSERT_TRUE(make_private_dir(d));
  EXPECT_EQ(mode_of(d) & 07777, 0700u);
  EXPECT_TRUE(make_private_dir(d)) << "ours and private: accepted again";

  ASSERT_EQ(::chmod(d.c_str(), 0777), 0);
  auto shared = make_private_dir(d);
  ASSERT_FALSE(shared);
  EXPECT_NE(shared.error().message.find("mode 0777"), std::string::npos) << shared.error().message;
  EXPECT_FALSE(shared.error().hint.empty());

  const std::string link = dir_ + "/link";
  ASSERT_EQ(::symlink(dir_.c_str(), link.c_str()), 0);
  auto l = make_private_dir(link);
  ASSERT_FALSE(l);
  EXPECT_NE(l.error().message.find("symbolic link"), std::string::npos);

  if (::geteuid() == 0) {
    const std::string other = dir_ + "/other";
    ASSERT_EQ(::mkdir(other.c_str(), 0700), 0);
    ASSERT_EQ(::chown(other.c_str(), 65534, 65534), 0);
    auto o = make_private_dir(other);
    ASSERT_FALSE(o);
    EXPECT_NE(o.error().message.find("belongs to uid 65534"), std::string::npos);
  }
}

TEST_F(FileTest, ReadRegularFileRefusesAFifoAndAnOversizedFile) {
  const std::string fifo = dir_ + "/fifo", big = dir_ + "/big";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto f = read_regular_file(fifo, 1024);  // would block forever if it opened for reading
  ASSERT_FALSE(f);
  EXPECT_NE(f.error().message.find("not a regular file"), std::string::npos);
  ASSERT_TRUE(write_text(big, std::string(2000, 'x')));
  EXPECT_FALSE(read_regular_file(big, 1024));
  auto ok = read_regular_file(big, 2000);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->size(), 2000u);
}

}  // namespace
}  // namespace labctl
