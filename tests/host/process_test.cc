// Host tier: agents and sysctls inside real namespaces.
#include "labctl/kernel/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "labctl/base/file.h"
#include "labctl/kernel/netns.h"
#include "labctl/kernel/sysctl.h"
#include "tests/host/host_test.h"

namespace labctl {
namespace {
using namespace std::chrono_literals;

class NetnsFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "host tier needs root";
    name_ = test::unique_name("labctl-test-proc");
    ASSERT_TRUE(create_netns(name_));
    auto fd = open_netns(name_);
    ASSERT_TRUE(fd);
    fd_ = std::move(*fd);
    log_ = "/tmp/" + name_ + ".log";
  }
  void TearDown() override {
    if (name_.empty()) return;
    stop_processes_in_netns(netns_path(name_), 500ms);
    EXPECT_TRUE(delete_netns(name_));
    std::remove(log_.c_str());
  }
  std::string name_, log_;
  Fd fd_;
};

TEST_F(NetnsFixture, AgentStartsReadyInsideTheNamespaceAndStops) {
  SpawnOptions o;
  o.netns_fd = fd_.get();
  o.argv = {LABCTL_BINARY_DIR "/agents/labagent", "http", "--port", "8080", "--name", "n1",
            "--ready-fd", "3"};
  o.log_path = log_;
  o.ready_timeout = 3s;
  auto pid = spawn_in_netns(o);
  ASSERT_TRUE(pid) << pid.error().str();
  auto pids = pids_in_netns(netns_path(name_));
  ASSERT_EQ(pids.size(), 1u);
  EXPECT_EQ(pids[0], *pid);
  stop_processes_in_netns(netns_path(name_), 1s);
  EXPECT_TRUE(pids_in_netns(netns_path(name_)).empty());
  EXPECT_FALSE(test::alive(*pid));
}

TEST_F(NetnsFixture, AgentThatExitsBeforeReadyIsAnErrorWithItsLog) {
  SpawnOptions o;
  o.netns_fd = fd_.get();
  // Port 80 twice: the second cannot bind and exits with its reason in the log.
  o.argv = {LABCTL_BINARY_DIR "/agents/labagent", "http", "--port", "99999"};
  o.log_path = log_;
  o.ready_timeout = 3s;
  auto pid = spawn_in_netns(o);
  ASSERT_FALSE(pid);
  EXPECT_NE(pid.error().message.find("exited before it was ready"), std::string::npos)
      << pid.error().str();
  EXPECT_NE(pid.error().hint.find("port"), std::string::npos) << pid.error().str();
}

std::atomic<int> g_caught{0};

// `up` catches Ctrl-C without SA_RESTART: a signal while spawn_in_netns waits for its child
// must not end the wait with a made-up answer ("fork failed", which left the agent running,
// orphaned; or "started", for one whose exec then fails). Here the child is held at opening
// its log (a FIFO nobody reads yet) while the waiting thread gets one; then its exec fails.
TEST_F(NetnsFixture, ASignalWhileWaitingForTheChildGetsTheChildsRealAnswer) {
  const std::string fifo = "/tmp/" + name_ + ".fifo", bogus = "/tmp/" + name_ + ".bogus";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // Executable, but no program: execve says ENOEXEC.
  ASSERT_TRUE(write_text(bogus, "not a program\n", 0700));
  struct sigaction sa{}, old{};
  sa.sa_handler = [](int) { ++g_caught; };
  sigemptyset(&sa.sa_mask);  // no SA_RESTART, as lab_up's own handler
  ASSERT_EQ(::sigaction(SIGUSR1, &sa, &old), 0);
  g_caught = 0;
  SpawnOptions o;
  o.netns_fd = fd_.get();
  o.argv = {bogus};
  o.log_path = fifo;
  std::atomic<pid_t> tid{0};
  Result<pid_t> pid = fail("not run");
  std::thread t([&] {
    tid = ::gettid();
    pid = spawn_in_netns(o);
  });
  // Blocked: its first child reaped, the agent in the namespace, the thread asleep in read.
  auto blocked = [&] {
    if (tid == 0 || pids_in_netns(netns_path(name_)).empty()) return false;
    const std::string task = "/proc/self/task/" + std::to_string(tid.load());
    const std::string stat = read_text(task + "/stat");
    const size_t paren = stat.rfind(") ");
    return read_text(task + "/children").empty() && paren != std::string::npos &&
           stat.compare(paren + 2, 1, "S") == 0;
  };
  for (int i = 0; i < 10000 && !blocked(); ++i) std::this_thread::sleep_for(1ms);
  ASSERT_TRUE(blocked());
  ASSERT_EQ(::syscall(SYS_tgkill, ::getpid(), tid.load(), SIGUSR1), 0);
  for (int i = 0; i < 10000 && g_caught == 0; ++i) std::this_thread::sleep_for(1ms);
  EXPECT_EQ(g_caught, 1);
  // Now a reader: the child gets its log and tries its exec.
  Fd reader(::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  t.join();
  ::sigaction(SIGUSR1, &old, nullptr);
  std::remove(fifo.c_str());
  std::remove(bogus.c_str());
  ASSERT_FALSE(pid) << "started " << *pid << ", but its exec failed";
  EXPECT_NE(pid.error().message.find("could not exec"), std::string::npos) << pid.error().str();
  EXPECT_EQ(pid.error().errnum, ENOEXEC) << pid.error().str();
}

TEST_F(NetnsFixture, MissingProgramIsAClearError) {
  SpawnOptions o;
  o.netns_fd = fd_.get();
  o.argv = {"labctl-no-such-program"};
  auto pid = spawn_in_netns(o);
  ASSERT_FALSE(pid);
  EXPECT_NE(pid.error().message.find("not found in PATH"), std::string::npos);
}

TEST_F(NetnsFixture, CommandAgentSeesOnlyTheNodesInterfacesInSys) {
  SpawnOptions o;
  o.netns_fd = fd_.get();
  o.argv = {"/bin/sh", "-c", "ls /sys/class/net; sleep 30"};
  o.log_path = log_;
  ASSERT_TRUE(spawn_in_netns(o));
  std::string content;
  for (int i = 0; i < 200 && content.empty(); ++i) {
    std::this_thread::sleep_for(10ms);
    std::ifstream in(log_);
    std::getline(in, content, '\0');
  }
  EXPECT_EQ(content, "lo\n");
}

TEST_F(NetnsFixture, SysctlIsSetInTheNamespaceOnlyAndReadBack) {
  auto root_before = read_sysctl("net.ipv4.conf.all.arp_ignore");
  ASSERT_TRUE(root_before);
  const std::string want = *root_before == "1" ? "2" : "1";
  std::string inside;
  ASSERT_TRUE(run_in_netns(fd_.get(), [&]() -> Status {
    TRY(write_sysctl("net.ipv4.conf.all.arp_ignore", want));
    TRY_ASSIGN(inside, read_sysctl("net.ipv4.conf.all.arp_ignore"));
    return {};
  }));
  EXPECT_EQ(inside, want);
  EXPECT_EQ(*read_sysctl("net.ipv4.conf.all.arp_ignore"), *root_before) << "root netns untouched";
}

std::string mountinfo() {
  std::ifstream f("/proc/self/mountinfo");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// SysctlFs opens its first kProcOpensFirst files through /proc, then through procfs
// instances of its own: other superblocks than /proc's, mounted nowhere, renewed as it goes.
// Either way a write acts on the namespace of the calling thread.
TEST_F(NetnsFixture, SysctlWritesThroughAPrivateProcfsMountedNowhere) {
  const std::string mounts_before = mountinfo();
  auto root_before = read_sysctl("net.ipv4.conf.all.arp_ignore");
  ASSERT_TRUE(root_before);
  SysctlFs fs;
  struct stat proc_st {};
  ASSERT_EQ(::stat("/proc/sys/net/ipv4/ip_forward", &proc_st), 0);
  // Each round opens twice: the write, then ip_forward, whose device we note.
  const int rounds = SysctlFs::kProcOpensFirst / 2 + SysctlFs::kOpensPerInstance + 1;
  std::vector<dev_t> devs;
  std::vector<Fd> held;  // holding a file keeps its instance, so its device number is not reused
  ASSERT_TRUE(run_in_netns(fd_.get(), [&]() -> Status {
    for (int i = 0; i < rounds; ++i) {
      const std::string v = std::to_string(i % 2);
      TRY(write_sysctl("net.ipv4.conf.all.arp_ignore", v, &fs));
      TRY_ASSIGN(auto now, read_sysctl("net.ipv4.conf.all.arp_ignore"));  // through /proc
      EXPECT_EQ(now, v);
      Fd fd(fs.open("/proc/sys/net/ipv4/ip_forward", O_RDONLY | O_CLOEXEC));
      EXPECT_TRUE(fd);
      struct stat st {};
      EXPECT_EQ(::fstat(fd.get(), &st), 0);
      devs.push_back(st.st_dev);
      held.push_back(std::move(fd));
    }
    return {};
  }));
  const size_t through_proc = SysctlFs::kProcOpensFirst / 2;
  ASSERT_EQ(devs.size(), through_proc + SysctlFs::kOpensPerInstance + 1);
  std::set<dev_t> instances;
  for (size_t i = 0; i < devs.size(); ++i) {
    if (i < through_proc) {
      EXPECT_EQ(devs[i], proc_st.st_dev) << "open " << 2 * i + 1 << " should go through /proc";
    } else {
      EXPECT_NE(devs[i], proc_st.st_dev) << "open " << 2 * i + 1 << " went through /proc";
      instances.insert(devs[i]);
    }
  }
  EXPECT_EQ(instances.size(), 3u) << "a new instance every " << SysctlFs::kOpensPerInstance
                                  << " opens (66 opens after /proc's)";
  EXPECT_EQ(*read_sysctl("net.ipv4.conf.all.arp_ignore"), *root_before) << "root netns untouched";
  EXPECT_EQ(mountinfo(), mounts_before) << "nothing mounted where anyone can see it";
  Status missing = run_in_netns(fd_.get(), [&] { return write_sysctl("net.ipv4.nope", "1", &fs); });
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("net.ipv4.nope does not exist"), std::string::npos);
}

// Where the kernel refuses a private instance (here: no CAP_SYS_ADMIN), /proc it is.
TEST_F(NetnsFixture, SysctlFsFallsBackToProcWhereRefused) {
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) _exit(2);
    SysctlFs fs;
    struct stat proc_st {};
    if (::stat("/proc/sys", &proc_st) != 0) _exit(3);
    // Past the opens that go through /proc anyway, and past a refused instance.
    for (int i = 0; i < SysctlFs::kProcOpensFirst + 2; ++i) {
      Fd fd(fs.open("/proc/sys/net/ipv4/ip_forward", O_RDONLY | O_CLOEXEC));
      struct stat st {};
      if (!fd || ::fstat(fd.get(), &st) != 0) _exit(3);
      if (st.st_dev != proc_st.st_dev) _exit(4);
    }
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "2: could not drop root, 3: open failed, 4: not /proc";
}

TEST_F(NetnsFixture, UnknownSysctlNamesTheKey) {
  Status st = run_in_netns(fd_.get(), [] { return write_sysctl("net.ipv4.conf.eth9.rp_filter", "0"); });
  ASSERT_FALSE(st);
  EXPECT_NE(st.error().message.find("net.ipv4.conf.eth9.rp_filter does not exist"), std::string::npos);
  EXPECT_FALSE(st.error().hint.empty());
  Status bad = run_in_netns(fd_.get(), [] { return write_sysctl("net.ipv4.ip_forward", "banana"); });
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().errnum, EINVAL);
}

}  // namespace
}  // namespace labctl
