// Host tier: labs this kernel cannot build (no IPVS, no IPIP) run in a micro-VM of their
// own and every command reaches them (cli/vm_lab.h, docs/vm.md). Each boot costs ~7 s of
// TCG, so the tests are few and each does much. Host state lives in a LABCTL_STATE_DIR of
// the test's own, so the qemu processes of a test are recognized by that path.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "labctl/kernel/features.h"
#include "labctl/vm/guest_kernel.h"
#include "labctl/vm/initramfs.h"
#include "labctl/vm/qemu.h"
#include "tests/host/host_test.h"

namespace labctl {
namespace fs = std::filesystem;
namespace {

const std::string kLabctl = LABCTL_BINARY_DIR "/labctl/labctl";

struct Outcome {
  int status = -1;
  std::string out, err;
};

class VmLab : public ::testing::Test {
 protected:
  void SetUp() override {
    LABCTL_REQUIRE_ROOT();
    if (probe_ipvs({}).family) GTEST_SKIP() << "this kernel has IPVS: labs run natively here";
    if (find_program("qemu-system-x86_64").empty()) GTEST_SKIP() << "qemu-system-x86_64 missing";
    if (auto k = resolve_vm_kernel(kernel_query_from_env()); !k) GTEST_SKIP() << k.error().str();
    if (!check_static_busybox("/bin/busybox")) GTEST_SKIP() << "busybox-static missing";
    // Short: the relay sockets live below it (unix socket paths are at most 107 bytes).
    state_ = "/tmp/" + test::unique_name("vmlab");
    fs::create_directories(state_);
    // labctl accepts only a private state folder (base/file.h: make_private_dir).
    fs::permissions(state_, fs::perms::owner_all, fs::perm_options::replace);
  }
  void TearDown() override {
    if (state_.empty()) return;
    // Whatever a failed test left: its qemu processes name our state folder.
    std::system(("pkill -KILL -f -- '" + pattern() + "' 2>/dev/null").c_str());
    fs::remove_all(state_);
  }

  // Runs `labctl ARGS` (shell words) with our state folder; stdin from `input`.
  Outcome labctl(const std::string& args, const std::string& input = "") {
    std::string err = state_ + "/.err", in = state_ + "/.in";
    { std::ofstream(in) << input; }
    Outcome r;
    std::string cmd = "LABCTL_STATE_DIR=" + state_ + " " + kLabctl + " " + args + " <" + in + " 2>" + err;
    FILE* p = ::popen(cmd.c_str(), "r");
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) r.out.append(buf, n);
    int st = ::pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    std::ifstream e(err);
    std::ostringstream s;
    s << e.rdbuf();
    r.err = s.str();
    return r;
  }
  // Our state folder as a pgrep pattern; "[/]" keeps it from matching the shell running it.
  std::string pattern(const std::string& lab = "") const {
    return "[" + state_.substr(0, 1) + "]" + state_.substr(1) + "/labs/" + lab;
  }
  bool qemu_running() const {
    return std::system(("pgrep -f -- '" + pattern() + "' >/dev/null").c_str()) == 0;
  }
  bool state_left(const std::string& lab) const { return fs::exists(state_ + "/labs/" + lab); }
  std::string state_;
};

#define EXPECT_OK(r) EXPECT_EQ((r).status, 0) << "stdout:\n" << (r).out << "\nstderr:\n" << (r).err

TEST_F(VmLab, DrDemoRunsInItsGuestAndEveryCommandReachesIt) {
  Outcome up = labctl("up dr-demo");
  ASSERT_EQ(up.status, 0) << up.out << up.err;
  EXPECT_NE(up.err.find("this kernel cannot build lab dr-demo: it has no IPVS"), std::string::npos) << up.err;
  EXPECT_NE(up.err.find("runs in a micro-VM"), std::string::npos) << up.err;
  EXPECT_NE(up.out.find("lab dr-demo is up"), std::string::npos) << up.out;
  EXPECT_TRUE(qemu_running());

  EXPECT_OK(labctl("check dr-demo"));
  Outcome curl = labctl("exec dr-demo client -- curl -s --max-time 10 http://10.10.0.100/");
  EXPECT_OK(curl);
  EXPECT_FALSE(curl.out.empty());
  // stdin reaches the command, its exit status comes back.
  EXPECT_EQ(labctl("exec dr-demo client -- sh", "exit 7\n").status, 7);
  Outcome cat = labctl("exec dr-demo client -- sh -c 'cat; echo err >&2; exit 3'", "line one\nline two\n");
  EXPECT_EQ(cat.status, 3);
  EXPECT_EQ(cat.out, "line one\nline two\n");
  EXPECT_NE(cat.err.find("err"), std::string::npos);
  // 8 MiB in while 8 MiB come out: neither side blocks on stdin while output waits
  // (issue 21 item 5; the guest's relay deadlocked).
  Outcome big = labctl("exec dr-demo client -- sh -c 'cat; head -c 8388608 /dev/zero'",
                       std::string(8u << 20, '\0'));
  EXPECT_EQ(big.status, 0) << big.err;
  EXPECT_EQ(big.out.size(), 16u << 20);
  // The guest's kernel has IPVS: the director's table is there.
  Outcome ipvs = labctl("exec dr-demo director -- ipvsadm -Ln");
  EXPECT_OK(ipvs);
  EXPECT_NE(ipvs.out.find("10.10.0.100:80"), std::string::npos) << ipvs.out;

  // Live edits are relayed too (the guest's kernel has netem), and its status shows them.
  Outcome cut = labctl("link dr-demo client:eth0 down");
  EXPECT_OK(cut);
  EXPECT_NE(cut.out.find("link client:eth0 cut"), std::string::npos) << cut.out;
  Outcome netem = labctl("link dr-demo rs1:eth0 impair delay=20ms loss=1%");
  EXPECT_OK(netem);
  EXPECT_NE(netem.out.find("delay 20ms, loss 1% (netem)"), std::string::npos) << netem.out;
  Outcome edited = labctl("status dr-demo");
  EXPECT_NE(edited.out.find("link client:eth0 cut"), std::string::npos) << edited.out;
  EXPECT_OK(labctl("link dr-demo client:eth0 up"));
  EXPECT_OK(labctl("link dr-demo rs1:eth0 clear"));

  // measure's picture is drawn in the guest and copied out: it is here, where the user is.
  const std::string svg = state_ + "/out.svg";
  Outcome measure = labctl("measure dr-demo web --requests 20 --concurrency 2 --rounds 1 --svg " + svg);
  EXPECT_OK(measure);
  EXPECT_NE(measure.out.find("requests/s"), std::string::npos) << measure.out;
  EXPECT_NE(measure.err.find("labctl measure: wrote " + svg), std::string::npos) << measure.err;
  std::ifstream drawn(svg);
  std::string head(64, '\0');
  drawn.read(head.data(), 64);
  const bool gnuplot = !find_program("gnuplot").empty();
  if (gnuplot) {
    EXPECT_NE(head.find("<svg"), std::string::npos) << head;
    EXPECT_EQ(fs::status(svg).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
  } else {
    EXPECT_TRUE(fs::exists(svg + ".dat") && fs::exists(svg + ".gp"));
  }

  // So is capture's pcap file: written here, not in the guest.
  const std::string pcap = state_ + "/c.pcap";
  EXPECT_OK(labctl("capture dr-demo client eth0 -w " + pcap + " --seconds 0.5"));
  std::ifstream got(pcap, std::ios::binary);
  unsigned char magic[4] = {};
  got.read(reinterpret_cast<char*>(magic), 4);
  EXPECT_TRUE(got.good()) << pcap << " was not written on the host";
  EXPECT_EQ(magic[0] | magic[1] << 8 | magic[2] << 16 | static_cast<unsigned>(magic[3]) << 24, 0xa1b23c4du);

  Outcome status = labctl("status dr-demo");
  EXPECT_OK(status);
  EXPECT_NE(status.out.find("micro-VM, guest kernel "), std::string::npos) << status.out;
  EXPECT_NE(status.out.find("director"), std::string::npos) << status.out;
  Outcome ls = labctl("ls");
  EXPECT_OK(ls);
  EXPECT_NE(ls.out.find("dr-demo"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("ok (micro-VM"), std::string::npos) << ls.out;
  // Bad input still fails as natively, from the guest's labctl.
  Outcome bad = labctl("exec dr-demo nosuchnode -- true");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.err.find("has no node nosuchnode"), std::string::npos) << bad.err;

  Outcome down = labctl("down dr-demo");
  EXPECT_OK(down);
  EXPECT_NE(down.out.find("lab dr-demo is down"), std::string::npos) << down.out;
  EXPECT_NE(down.out.find("micro-VM of lab dr-demo stopped"), std::string::npos) << down.out;
  EXPECT_FALSE(qemu_running());
  EXPECT_FALSE(state_left("dr-demo"));
  // Idempotent, and nothing of ours is left to find.
  Outcome again = labctl("down dr-demo");
  EXPECT_OK(again);
  EXPECT_NE(again.out.find("no lab dr-demo is up"), std::string::npos) << again.out;
}

TEST_F(VmLab, TwoLabsAtOnceDoNotDisturbEachOther) {
  ASSERT_EQ(labctl("up nat-demo").status, 0);
  Outcome tun = labctl("up --check tun-demo");
  ASSERT_EQ(tun.status, 0) << tun.out << tun.err;
  EXPECT_OK(labctl("check nat-demo"));
  Outcome a = labctl("exec nat-demo client -- curl -s --max-time 10 http://192.168.10.100/");
  Outcome b = labctl("exec tun-demo client -- curl -s --max-time 10 http://10.30.1.100/");
  EXPECT_OK(a);
  EXPECT_OK(b);
  Outcome ls = labctl("ls");
  EXPECT_NE(ls.out.find("nat-demo"), std::string::npos) << ls.out;
  EXPECT_NE(ls.out.find("tun-demo"), std::string::npos) << ls.out;
  // One guest each: nat-demo's guest knows nothing of tun-demo.
  Outcome cross = labctl("exec nat-demo client -- ip netns list");
  EXPECT_EQ(cross.out.find("tun-demo"), std::string::npos) << cross.out;
  EXPECT_OK(labctl("down nat-demo"));
  EXPECT_FALSE(state_left("nat-demo"));
  EXPECT_OK(labctl("check tun-demo"));  // still there after its neighbour left
  EXPECT_OK(labctl("down tun-demo"));
  EXPECT_FALSE(qemu_running());
  EXPECT_FALSE(state_left("tun-demo"));
}

TEST_F(VmLab, InterruptedBootLeavesNothingAndADeadGuestIsCleanedUp) {
  // Ctrl-C while the guest boots.
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setenv("LABCTL_STATE_DIR", state_.c_str(), 1);
    int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 1);
    ::dup2(null, 2);
    ::execl(kLabctl.c_str(), kLabctl.c_str(), "up", "dr-demo", nullptr);
    ::_exit(127);
  }
  for (int i = 0; i < 200 && !qemu_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(qemu_running());
  std::this_thread::sleep_for(std::chrono::seconds(1));
  ::kill(pid, SIGINT);
  int st = 0;
  ::waitpid(pid, &st, 0);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 130) << st;
  EXPECT_FALSE(qemu_running());
  EXPECT_FALSE(state_left("dr-demo"));

  // qemu killed under a running lab: status says so, down cleans the host side.
  ASSERT_EQ(labctl("up dr-demo").status, 0);
  ASSERT_EQ(std::system(("pkill -KILL -f -- '" + pattern("dr-demo/") + "'").c_str()), 0);
  for (int i = 0; i < 100 && qemu_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  Outcome status = labctl("status dr-demo");
  EXPECT_EQ(status.status, 1);
  EXPECT_NE(status.out.find("is not running any more"), std::string::npos) << status.out;
  Outcome exec = labctl("exec dr-demo client -- true");
  EXPECT_EQ(exec.status, 1);
  EXPECT_NE(exec.err.find("labctl down dr-demo"), std::string::npos) << exec.err;
  Outcome down = labctl("down dr-demo");
  EXPECT_OK(down);
  EXPECT_NE(down.out.find("had already stopped"), std::string::npos) << down.out;
  EXPECT_FALSE(state_left("dr-demo"));
}

}  // namespace
}  // namespace labctl
