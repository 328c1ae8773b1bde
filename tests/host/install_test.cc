// `cmake --install` into a scratch prefix, then the installed labctl as a user runs it:
// --version names the commit, the man pages and bash completion are where man and bash
// look, and a lab brought up by the installed labctl runs the labagent installed next to it.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "tests/host/host_test.h"

namespace fs = std::filesystem;

namespace {

struct Outcome {
  int status = -1;
  std::string out;
};

Outcome sh(const std::string& cmd) {
  Outcome r;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  std::array<char, 4096> buf{};
  for (size_t n; (n = std::fread(buf.data(), 1, buf.size(), p)) > 0;) r.out.append(buf.data(), n);
  int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), {}};
}

class HostInstall : public ::testing::Test {
 protected:
  void SetUp() override {
    prefix_ = "/var/tmp/" + labctl::test::unique_name("labctl-install-test");
    lab_ = labctl::test::unique_name("inst");
  }
  void TearDown() override {
    if (fs::exists(labctl())) sh(labctl().string() + " down " + lab_);
    fs::remove_all(prefix_);
  }
  fs::path labctl() const { return prefix_ / "bin/labctl"; }
  fs::path prefix_;
  std::string lab_;
};

TEST_F(HostInstall, InstalledLabctlHasVersionManPagesCompletionAndItsOwnLabagent) {
  LABCTL_REQUIRE_ROOT();
  Outcome inst = sh("cmake --install " + std::string(LABCTL_BINARY_DIR) + " --prefix " +
                    prefix_.string());
  ASSERT_EQ(inst.status, 0) << inst.out;

  Outcome v = sh(labctl().string() + " --version");
  EXPECT_EQ(v.status, 0);
  EXPECT_TRUE(v.out.starts_with("labctl ") && v.out.find(" (") != std::string::npos) << v.out;
  EXPECT_EQ(sh((prefix_ / "bin/labagent").string() + " --version").out,
            "labagent" + v.out.substr(6)) << "both programs name the same build";

  for (const char* page : {"labctl.1", "labctl-up.1", "labctl-vm-exec.1", "labagent.1"}) {
    SCOPED_TRACE(page);
    std::string text = read_file(prefix_ / "share/man/man1" / page);
    EXPECT_NE(text.find(".TH "), std::string::npos) << "a man page";
  }
  EXPECT_NE(read_file(prefix_ / "share/man/man1/labctl-up.1").find("dry\\-run"), std::string::npos)
      << "made from up --help";

  Outcome c = sh("bash -c 'source \"$0\" && COMP_WORDS=(" + labctl().string() +
                 " st) && COMP_CWORD=1 && _labctl && echo \"${COMPREPLY[*]}\"' " +
                 (prefix_ / "share/bash-completion/completions/labctl").string());
  EXPECT_EQ(c.out, "status\n");

  // A lab from the installed binary, without LABCTL_AGENT: its agent is the installed one.
  const fs::path topo = prefix_ / "lab.toml";
  std::ofstream(topo) << "version = 1\nname = \"" << lab_ << "\"\n"
                      << "[nodes.n]\ninterfaces.eth0 = { peer = \"m:eth0\", addresses = [\"10.79.0.1/30\"] }\n"
                      << "agents.web = { kind = \"http\", port = 8080 }\n"
                      << "[nodes.m]\ninterfaces.eth0 = { peer = \"n:eth0\", addresses = [\"10.79.0.2/30\"] }\n";
  Outcome up = sh("env -u LABCTL_AGENT " + labctl().string() + " up " + topo.string());
  ASSERT_EQ(up.status, 0) << up.out;
  Outcome pids = sh("ip netns pids " + lab_ + "-n");
  std::set<std::string> exes;
  std::istringstream in(pids.out);
  for (std::string pid; in >> pid;) exes.insert(fs::read_symlink("/proc/" + pid + "/exe").string());
  EXPECT_EQ(exes, std::set<std::string>{(prefix_ / "bin/labagent").string()})
      << "supervisor and server are the labagent installed next to labctl";
  EXPECT_EQ(sh(labctl().string() + " down " + lab_).status, 0);
}

}  // namespace

// `make deb`'s package (cpack from this build, into a scratch folder): its Depends line
// names the libraries' packages, lintian (where installed) finds nothing, and the programs
// unpacked into a throwaway root (dpkg -x, nothing installed on this machine) run:
// --version, and validate of a built-in lab.
TEST_F(HostInstall, TheDebianPackageIsLintianCleanAndItsLabctlRuns) {
  LABCTL_REQUIRE_ROOT();
  if (sh("command -v cpack dpkg-deb").status != 0) GTEST_SKIP() << "no cpack or dpkg-deb";
  const fs::path out = prefix_ / "deb";
  Outcome pack = sh("cd " + std::string(LABCTL_BINARY_DIR) + " && cpack -G DEB -B " + out.string());
  ASSERT_EQ(pack.status, 0) << pack.out;
  Outcome deb = sh("ls " + out.string() + "/labctl_*_amd64.deb");
  ASSERT_EQ(deb.status, 0) << deb.out;
  const std::string file = deb.out.substr(0, deb.out.find('\n'));
  const std::string depends = sh("dpkg-deb -f " + file + " Depends").out;
  for (const char* lib : {"libnl-route-3-200", "libmnl0", "libnftables1", "libpcap0.8", "libtomlplusplus3", "iproute2"})
    EXPECT_NE(depends.find(lib), std::string::npos) << lib << " missing from: " << depends;
  EXPECT_NE(sh("dpkg-deb -f " + file + " Recommends").out.find("keepalived"), std::string::npos);
  if (sh("command -v lintian").status == 0) {
    Outcome lint = sh("lintian --allow-root " + file);
    EXPECT_EQ(lint.status, 0) << lint.out;
    EXPECT_EQ(lint.out.find("E: "), std::string::npos) << lint.out;
    EXPECT_EQ(lint.out.find("W: "), std::string::npos) << lint.out;
  }
  const fs::path root = prefix_ / "root";
  ASSERT_EQ(sh("dpkg -x " + file + " " + root.string()).status, 0);
  for (const char* f : {"usr/bin/labctl", "usr/bin/labagent", "usr/share/man/man1/labctl-test.1.gz",
                        "usr/share/bash-completion/completions/labctl", "usr/share/doc/labctl/copyright",
                        "usr/share/doc/labctl/changelog.gz"})
    EXPECT_TRUE(fs::exists(root / f)) << f;
  Outcome v = sh((root / "usr/bin/labctl").string() + " --version");
  EXPECT_EQ(v.status, 0) << v.out;
  EXPECT_TRUE(v.out.starts_with("labctl ")) << v.out;
  Outcome val = sh((root / "usr/bin/labctl").string() + " validate dr-demo");
  EXPECT_EQ(val.status, 0) << val.out;
}
