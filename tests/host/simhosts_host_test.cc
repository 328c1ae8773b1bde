// The simulated hosts the multi-host tests run on (tests/support/simhosts.h): each a host
// of its own (hostname, /run, namespaces, processes), reachable over ssh from the machine
// and from each other, and gone without a trace when the harness is.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "labctl/base/file.h"
#include "labctl/kernel/netns.h"
#include "labctl/kernel/process.h"
#include "tests/host/host_test.h"
#include "tests/support/simhosts.h"

namespace labctl::test {
namespace {

using namespace std::chrono_literals;

#define START_HOSTS(var, n)                                       \
  auto var##_r = SimHosts::start(n, SimHosts::default_program()); \
  ASSERT_TRUE(var##_r) << var##_r.error().str();                  \
  SimHosts& var = *var##_r

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  for (size_t at = 0; at < text.size();) {
    size_t nl = text.find('\n', at);
    if (nl == std::string::npos) nl = text.size();
    if (nl > at) out.push_back(text.substr(at, nl - at));
    at = nl + 1;
  }
  return out;
}

// Interface names of the machine's own root namespace (this test process's).
std::vector<std::string> root_links() {
  auto c =
      run_captured({"/usr/sbin/ip", "-o", "link", "show"}, std::chrono::steady_clock::now() + 10s);
  std::vector<std::string> out;
  if (!c) return out;
  for (const auto& l : lines(c->out)) {
    const auto a = l.find(": ");
    out.push_back(l.substr(a + 2, l.find(':', a + 2) - (a + 2)));
  }
  std::sort(out.begin(), out.end());
  return out;
}

// "net:[4026532...]" of every process and every nsfs mount of the machine's mount
// namespace: what still holds a namespace alive.
bool namespace_referenced(const std::string& id) {
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::error_code ec;
    for (const char* kind : {"net", "pid", "mnt", "uts"})
      if (std::filesystem::read_symlink(e.path() / "ns" / kind, ec).string() == id) return true;
  }
  const std::string inode = id.substr(id.find('[') + 1, id.size() - id.find('[') - 2);
  return read_text("/proc/self/mountinfo").find(inode) != std::string::npos;
}

TEST(SimHosts, EachHostHasItsNameAndItsOwnRun) {
  LABCTL_REQUIRE_ROOT();
  // The machine's /run/netns is not empty while the hosts run.
  const std::string real_ns = unique_name("simreal");
  ASSERT_TRUE(create_netns(real_ns));
  const auto root_before = root_links();
  {
    START_HOSTS(hosts, 2);
    std::printf("2 simulated hosts started in %lld ms\n",
                static_cast<long long>(hosts.start_time().count()));
    EXPECT_LT(hosts.start_time(), 5000ms);  // ~0.2 s here; a loaded CI machine gets slack
    auto name = hosts.run(1, {"hostname"});
    ASSERT_TRUE(name) << name.error().str();
    EXPECT_EQ(*name, "h1\n");
    auto name2 = hosts.run(2, {"cat", "/proc/sys/kernel/hostname"});
    ASSERT_TRUE(name2) << name2.error().str();
    EXPECT_EQ(*name2, "h2\n");

    auto list = hosts.run(1, {"ip", "netns", "list"});
    ASSERT_TRUE(list) << list.error().str();
    EXPECT_EQ(*list, "");
    EXPECT_TRUE(hosts.netns_names(1).empty());
    ASSERT_TRUE(hosts.run(1, {"ip", "netns", "add", "x"}));
    list = hosts.run(1, {"ip", "netns", "list"});
    ASSERT_TRUE(list) << list.error().str();
    EXPECT_EQ(*list, "x\n");
    EXPECT_EQ(hosts.netns_names(1), std::vector<std::string>{"x"});
    EXPECT_TRUE(hosts.netns_names(2).empty());
    list = hosts.run(2, {"ip", "netns", "list"});
    ASSERT_TRUE(list);
    EXPECT_EQ(*list, "");
    EXPECT_FALSE(std::filesystem::exists("/run/netns/x"));
    // ... and the leftover check sees it.
    auto left = hosts.leftovers(1);
    EXPECT_NE(std::find(left.begin(), left.end(), "h1: /run/netns/x"), left.end()) << left.size();
    ASSERT_TRUE(hosts.run(1, {"ip", "netns", "del", "x"}));
    EXPECT_EQ(hosts.leftovers(1), std::vector<std::string>{});

    // The host's own eth0 and nothing of it in the machine's root namespace.
    auto addr = hosts.run(2, {"ip", "-o", "-4", "addr", "show", "dev", "eth0"});
    ASSERT_TRUE(addr) << addr.error().str();
    EXPECT_NE(addr->find("inet 192.168.77.2/24"), std::string::npos) << *addr;
    auto mtu = hosts.run(2, {"cat", "/sys/class/net/eth0/mtu"});  // its own /sys too
    ASSERT_TRUE(mtu) << mtu.error().str();
    EXPECT_EQ(*mtu, "1500\n");
    EXPECT_EQ(root_links(), root_before);
  }
  EXPECT_TRUE(delete_netns(real_ns));
}

TEST(SimHosts, HostsReachEachOtherOverTheUnderlayAndOverSsh) {
  LABCTL_REQUIRE_ROOT();
  START_HOSTS(hosts, 2);
  // ssh from inside h1 with the same config file: what labctl on h1 does to reach h2.
  auto via = hosts.run(1, {"ssh", "-F", hosts.ssh_config(), "h2", "hostname"});
  ASSERT_TRUE(via) << via.error().str();
  EXPECT_EQ(*via, "h2\n");
  // Straight over the underlay (no proxy): h1's eth0 to h2's sshd through the bridge.
  via =
      hosts.run(1, {"ssh", "-F", hosts.ssh_config(), "-o", "ProxyCommand=none", "h2", "hostname"});
  ASSERT_TRUE(via) << via.error().str();
  EXPECT_EQ(*via, "h2\n");
  // A host key other than the one in known_hosts is refused (no trust on first use).
  auto wrong =
      hosts.run(1, {"ssh", "-F", hosts.ssh_config(), "-o", "HostKeyAlias=h1", "h2", "true"});
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message.find("Host key verification failed"), std::string::npos)
      << wrong.error().message;
}

TEST(SimHosts, LeftoverProcessIsReportedAndTeardownKillsIt) {
  LABCTL_REQUIRE_ROOT();
  START_HOSTS(hosts, 2);
  EXPECT_EQ(hosts.leftovers(1), std::vector<std::string>{});
  EXPECT_EQ(hosts.leftovers(2), std::vector<std::string>{});
  // Daemonized as labctl's agent supervisors are: its parent gone, init reaps it later.
  ASSERT_TRUE(hosts.run(1, {"sh", "-c", "setsid sleep 1000 </dev/null >/dev/null 2>&1 &"}));
  pid_t sleeper = -1;
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (sleeper < 0 && std::chrono::steady_clock::now() < until) {
    for (const auto& l : hosts.leftovers(1)) {
      if (l.find("sleep 1000") == std::string::npos) continue;
      EXPECT_EQ(l.rfind("h1: process ", 0), 0u) << l;
      sleeper = std::stoi(l.substr(12));
    }
    if (sleeper < 0) std::this_thread::sleep_for(10ms);
  }
  ASSERT_GT(sleeper, 0) << "the leftover sleep was not reported";
  EXPECT_EQ(hosts.leftovers(2), std::vector<std::string>{});
  const auto pids = hosts.pids(1);
  EXPECT_NE(std::find(pids.begin(), pids.end(), sleeper), pids.end());
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(hosts.stop());
  std::printf("2 simulated hosts stopped in %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - t0)
                                         .count()));
  EXPECT_FALSE(alive(sleeper));
}

TEST(SimHosts, InitReapsOrphans) {
  LABCTL_REQUIRE_ROOT();
  START_HOSTS(hosts, 1);
  // Its parent (sh) exits at once: the orphan is init's to reap when it ends.
  ASSERT_TRUE(hosts.run(1, {"sh", "-c", "setsid sleep 1.5 </dev/null >/dev/null 2>&1 &"}));
  pid_t orphan = -1;
  for (const auto& l : hosts.leftovers(1))
    if (l.find("sleep 1.5") != std::string::npos) orphan = std::stoi(l.substr(12));
  ASSERT_GT(orphan, 0) << "the orphan was not seen";
  // Gone from /proc altogether: a zombie nobody reaps would stay.
  const auto until = std::chrono::steady_clock::now() + 6s;
  while (std::filesystem::exists("/proc/" + std::to_string(orphan)) &&
         std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(std::filesystem::exists("/proc/" + std::to_string(orphan)));
  EXPECT_EQ(hosts.leftovers(1), std::vector<std::string>{});
}

// The harness folders of this machine (others' included: compared before and after).
std::vector<std::string> harness_dirs() {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator("/tmp"))
    if (e.path().filename().string().rfind("labctl-simhosts-", 0) == 0) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(SimHosts, FailedStartLeavesNothing) {
  LABCTL_REQUIRE_ROOT();
  const auto before = harness_dirs();
  const auto root_before = root_links();
  // An "init" that exits at once: start fails half way, after namespaces, mounts and keys.
  auto hosts = SimHosts::start(2, "/bin/false");
  ASSERT_FALSE(hosts);
  EXPECT_NE(hosts.error().str().find("h1's init ended before sshd listened"), std::string::npos)
      << hosts.error().str();
  // (Its folder would still be there if a mount in it had been left.)
  EXPECT_EQ(harness_dirs(), before) << "another harness started meanwhile? rerun alone";
  EXPECT_EQ(root_links(), root_before);
}

TEST(SimHosts, TeardownLeavesNothing) {
  LABCTL_REQUIRE_ROOT();
  const auto root_before = root_links();
  std::string dir;
  std::vector<pid_t> pids;
  std::vector<std::string> namespaces;
  {
    START_HOSTS(hosts, 3);
    dir = hosts.dir();
    struct stat st{};
    ASSERT_EQ(::stat(dir.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0700u);
    EXPECT_EQ(st.st_uid, 0u);
    // A multiplexed connection, as labctl keeps one per host: it must end with its host.
    auto argv = hosts.ssh_argv(3);
    argv.insert(argv.begin() + 1, {"-o", "ControlMaster=auto", "-o", "ControlPersist=60"});
    argv.push_back("true");
    auto master = run_captured(argv, std::chrono::steady_clock::now() + 10s);
    ASSERT_TRUE(master && master->exit_code == 0) << (master ? master->err : master.error().str());
    EXPECT_FALSE(std::filesystem::is_empty(dir + "/cm"));
    for (int i = 1; i <= hosts.size(); ++i) {
      for (pid_t p : hosts.pids(i)) pids.push_back(p);
      for (const char* kind : {"net", "pid", "mnt", "uts"}) {
        std::error_code ec;
        namespaces.push_back(std::filesystem::read_symlink(
            "/proc/" + std::to_string(hosts.init_pid(i)) + "/ns/" + kind, ec));
      }
    }
    EXPECT_GE(pids.size(), 6u);  // init and sshd on each
  }
  EXPECT_FALSE(std::filesystem::exists(dir));
  for (pid_t p : pids) EXPECT_FALSE(alive(p)) << "pid " << p;
  for (const auto& ns : namespaces) EXPECT_FALSE(namespace_referenced(ns)) << ns;
  EXPECT_EQ(read_text("/proc/self/mountinfo").find(dir), std::string::npos);
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::string cmd = read_text((e.path() / "cmdline").string());
    EXPECT_EQ(cmd.find(dir), std::string::npos) << e.path();
  }
  EXPECT_EQ(root_links(), root_before);
}

}  // namespace
}  // namespace labctl::test
