// Host tier: what a local user who is not root can do to a running lab (docs/security.md).
// labctl runs as root on shared machines; an unprivileged user (uid 65534 here, through
// setpriv) must not be able to read, write, replace or plant anything labctl reads or writes
// as root, and root's output files must never be written through a link that user planted.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "labctl/base/file.h"
#include "labctl/lab/state.h"
#include "tests/host/host_test.h"
#include "tests/support/kill_sweep.h"

namespace labctl {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
const std::string kLabctl = LABCTL_BINARY_DIR "/labctl/labctl";
constexpr uid_t kNobody = 65534;

std::string sh(const std::string& cmd) { return test::run_capture(cmd); }

// `cmd` run by uid/gid 65534 with no supplementary groups; its output and "rc=N".
std::string as_nobody(const std::string& cmd) {
  return sh("setpriv --reuid=65534 --regid=65534 --clear-groups sh -c '" + cmd + "' 2>&1; echo rc=$?");
}

// The routed host fixture under a random name, with a check that needs no IPVS.
std::string lab_text(const std::string& name) {
  return test::routed_lab(name) + test::kRoutedReachCheck;
}

class HostSecurity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (::geteuid() != 0) return;
    lab_ = test::unique_name("sec");
    char tmpl[] = "/tmp/labctl-sec-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
    ::chmod(dir_.c_str(), 0711);  // others may pass through to the folders made theirs below
    // The topology sits in a file named like a built-in lab, run from its folder: `up` must
    // keep the text it built, not the built-in of that name.
    text_ = lab_text(lab_);
    std::ofstream(dir_ + "/nat-demo") << text_;
    up_ = sh("cd " + dir_ + " && " + kLabctl + " up nat-demo 2>&1; echo rc=$?");
  }
  static void TearDownTestSuite() {
    if (lab_.empty()) return;
    sh(kLabctl + " down " + lab_ + " >/dev/null 2>&1");
    fs::remove_all(dir_);
  }
  void SetUp() override {
    LABCTL_REQUIRE_ROOT();
    ASSERT_THAT(up_, HasSubstr("rc=0")) << up_;
  }
  // A folder the unprivileged user owns, as their home or a shared /tmp folder would be.
  std::string users_folder() {
    const std::string d = dir_ + "/user-" + std::to_string(++folders_);
    EXPECT_EQ(::mkdir(d.c_str(), 0755), 0);
    EXPECT_EQ(::chown(d.c_str(), kNobody, kNobody), 0);
    return d;
  }
  // A file of root's that the user must not be able to reach through a link.
  std::string victim() {
    const std::string v = dir_ + "/victim";
    EXPECT_TRUE(write_text(v, "root's secret\n"));
    return v;
  }
  static inline std::string lab_, dir_, text_, up_;
  static inline int folders_ = 0;
};

TEST_F(HostSecurity, UpKeepsTheTextItBuiltNotABuiltinOfTheSameName) {
  EXPECT_EQ(read_text(state_dir(lab_) + "/topology.toml"), text_);
  EXPECT_THAT(sh(kLabctl + " status " + lab_ + " 2>&1"), HasSubstr("router"));
}

TEST_F(HostSecurity, EverythingInTheStateRootIsRootsAndPrivate) {
  std::vector<std::string> bad;
  const std::string root = state_root();
  struct stat st{};
  ASSERT_EQ(::lstat(root.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    ASSERT_EQ(::lstat(it->path().c_str(), &st), 0);
    if (st.st_uid != 0 || (st.st_mode & 022) != 0 || (S_ISDIR(st.st_mode) && (st.st_mode & 077) != 0))
      bad.push_back(it->path().string() + " uid " + std::to_string(st.st_uid) + " mode " +
                    std::to_string(st.st_mode & 07777));
  }
  EXPECT_TRUE(bad.empty()) << ::testing::PrintToString(bad);
}

TEST_F(HostSecurity, AnUnprivilegedUserCanNeitherReadNorPlantLabState) {
  const std::string sd = state_dir(lab_);
  const std::string tries =
      "ls " + state_root() + "; cat " + sd + "/topology.toml; ls " + sd + "/logs; " +
      "echo x > " + sd + "/topology.toml; ln -s /etc/shadow " + sd + "/plan.json; " +
      "mkdir " + state_root() + "/labs/" + lab_ + "-x; echo x > " + state_root() + "/locks/" + lab_ + ".lock; " +
      "ln -s /tmp " + state_root() + "/locks/planted";
  std::string out = as_nobody(tries);
  // Every one of the eight attempts is refused at the private state root.
  int denied = 0;
  for (std::size_t p = out.find("Permission denied"); p != std::string::npos;
       p = out.find("Permission denied", p + 1))
    ++denied;
  EXPECT_EQ(denied, 8) << out;
  EXPECT_EQ(read_text(sd + "/topology.toml"), text_);
  EXPECT_FALSE(fs::is_symlink(sd + "/plan.json"));
  EXPECT_FALSE(fs::exists(state_root() + "/locks/planted"));
}

TEST_F(HostSecurity, JunitAndPcapFilesReplaceALinkTheUserPlantedInsteadOfWritingThroughIt) {
  const std::string v = victim(), folder = users_folder();
  // At the names themselves, and at the fixed temporary name a writer might use beside them.
  ASSERT_THAT(as_nobody("for f in report.xml report.xml.tmp cap.pcap cap.pcap.tmp; do ln -s " + v + " " +
                        folder + "/$f || exit 1; done"),
              HasSubstr("rc=0"));
  std::string out = sh(kLabctl + " check " + lab_ + " --junit " + folder + "/report.xml 2>&1; echo rc=$?");
  EXPECT_THAT(out, HasSubstr("rc=0"));
  out = sh(kLabctl + " capture " + lab_ + " client eth0 -w " + folder + "/cap.pcap --seconds 0.2 2>&1; echo rc=$?");
  EXPECT_THAT(out, HasSubstr("rc=0"));
  EXPECT_EQ(read_text(v), "root's secret\n");
  for (const char* f : {"/report.xml", "/cap.pcap"}) {
    struct stat st{};
    ASSERT_EQ(::lstat((folder + f).c_str(), &st), 0) << f;
    EXPECT_TRUE(S_ISREG(st.st_mode)) << f << " is still a link";
    EXPECT_EQ(st.st_mode & 0777, 0600u) << f;
  }
  EXPECT_THAT(read_text(folder + "/report.xml"), HasSubstr("<testsuite"));
  EXPECT_THAT(sh("tcpdump -r " + folder + "/cap.pcap 2>&1; echo rc=$?"), HasSubstr("rc=0"));
  std::size_t files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(folder)) ++files;
  EXPECT_EQ(files, 4u) << "the two files and the two links beside them, no temporary file";
}

TEST_F(HostSecurity, AnOutputFileTheUserMadeKeepsTheModeTheyChose) {
  const std::string folder = users_folder(), report = folder + "/report.xml";
  ASSERT_TRUE(write_text(report, "", 0644));
  EXPECT_THAT(sh(kLabctl + " check " + lab_ + " --junit " + report + " 2>&1; echo rc=$?"), HasSubstr("rc=0"));
  struct stat st{};
  ASSERT_EQ(::lstat(report.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  EXPECT_THAT(read_text(report), HasSubstr("<testsuite"));
}

TEST_F(HostSecurity, AStateRootOthersCanWriteIsRefusedBeforeAnythingIsMade) {
  const std::string shared = users_folder();
  ASSERT_EQ(::chmod(shared.c_str(), 01777), 0);
  const std::string other = test::unique_name("secshared");
  std::ofstream(dir_ + "/" + other + ".toml") << lab_text(other);
  std::string out = sh("LABCTL_STATE_DIR=" + shared + " " + kLabctl + " up " + dir_ + "/" + other +
                       ".toml 2>&1; echo rc=$?");
  EXPECT_THAT(out, HasSubstr("belongs to uid 65534")) << out;
  EXPECT_THAT(out, ::testing::Not(HasSubstr("rc=0")));
  EXPECT_EQ(sh("ip netns list | grep -c " + other), "0\n") << "nothing was built";
  sh(kLabctl + " down " + other + " >/dev/null 2>&1");  // finds it by its marks, if it was made
}

}  // namespace
}  // namespace labctl
