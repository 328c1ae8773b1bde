#include "tests/support/simhosts.h"

#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <thread>

#include "labctl/base/file.h"
#include "labctl/base/shell_quote.h"
#include "labctl/kernel/netns.h"
#include "labctl/kernel/process.h"

namespace labctl::test {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr const char* kSshd = "/usr/sbin/sshd";
constexpr int kMaxHosts = 200;  // 192.168.77.1 .. .200 on one /24

std::string proc(pid_t pid, const std::string& what) {
  return "/proc/" + std::to_string(pid) + "/" + what;
}

std::string read_link(const std::string& path) {
  std::error_code ec;
  auto target = std::filesystem::read_symlink(path, ec);
  return ec ? std::string() : target.string();
}

// Runs argv and fails, with its stderr, unless it exits 0.
Result<std::string> run_ok(const std::vector<std::string>& argv,
                           std::chrono::milliseconds timeout) {
  TRY_ASSIGN(auto c, run_captured(argv, Clock::now() + timeout, nullptr, 1s));
  if (c.timed_out)
    return fail(shell_join(argv) + ": no answer within " + std::to_string(timeout.count()) + " ms");
  if (c.exit_code != 0)
    return fail(shell_join(argv) + ": exit " + std::to_string(c.exit_code) +
                (c.err.empty() ? "" : ": " + c.err));
  return c.out;
}

// A path that goes verbatim into ssh_config/sshd_config lines (ssh expands '%' and splits
// words at blanks and quotes).
Status config_safe(const std::string& path) {
  if (path.find_first_of(" \t\n\"'%#\\") != std::string::npos)
    return fail("simhosts: path " + path + " cannot be written into an ssh config",
                "build in a folder whose path has no blanks, quotes, '%' or '#'");
  return {};
}

// Names in a folder, sorted; empty when it is not there.
std::vector<std::string> list_dir(const std::string& path) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(path, ec))
    out.push_back(e.path().filename());
  std::sort(out.begin(), out.end());
  return out;
}

bool zombie_or_gone(pid_t pid) {
  const std::string stat = read_text(proc(pid, "stat"));
  const auto paren = stat.rfind(')');
  return paren == std::string::npos || paren + 2 >= stat.size() || stat[paren + 2] == 'Z';
}

std::string cmdline(pid_t pid) {
  std::string c = read_text(proc(pid, "cmdline"));
  while (!c.empty() && c.back() == '\0') c.pop_back();
  std::replace(c.begin(), c.end(), '\0', ' ');
  return c;
}

std::vector<pid_t> all_pids() {
  std::vector<pid_t> out;
  for (const auto& name : list_dir("/proc"))
    if (!name.empty() &&
        std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; }))
      out.push_back(std::stoi(name));
  return out;
}

}  // namespace

struct SimHosts::State {
  struct Host {
    std::string name, addr, dir, netns;
    pid_t init = -1;
  };
  std::string program, dir, ssh, ip;
  bool dir_bound = false;             ///< dir is bind-mounted onto itself (private).
  std::vector<std::string> ns_files;  ///< Namespace bind mounts made, underlay first.
  std::vector<Host> hosts;
  std::chrono::milliseconds start_time{0};

  Status make_netns(const std::string& path);
  Status configure_network();
  Status boot(Host& h);
  Status wait_ready(Host& h, Clock::time_point until);
  Status stop();
};

Status SimHosts::State::make_netns(const std::string& path) {
  {
    Fd dfd(::open((dir + "/ns").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dfd) return fail_errno("open " + dir + "/ns", errno);
    TRY(create_file_at(dfd.get(), std::filesystem::path(path).filename(), 0600));
  }
  // A fresh thread unshares its network namespace and binds it at `path`.
  TRY(run_in_new_netns([&]() -> Status {
    if (::mount("/proc/thread-self/ns/net", path.c_str(), nullptr, MS_BIND, nullptr) != 0)
      return fail_errno("bind a new network namespace at " + path, errno);
    return {};
  }));
  ns_files.push_back(path);
  return {};
}

// The underlay: a bridge br0 in the underlay namespace, one veth per host (hN there, eth0
// in the host), addresses and lo. `ip -batch` files stay in the folder, as a record.
Status SimHosts::State::configure_network() {
  std::string underlay = "link add br0 type bridge\nlink set br0 up\n";
  for (const auto& h : hosts)
    underlay += "link add " + h.name + " mtu 1500 type veth peer name eth0 mtu 1500 netns " +
                h.netns + "\nlink set " + h.name + " master br0 up\n";
  const std::string batch = dir + "/underlay.ip";
  TRY(write_text(batch, underlay));
  Fd ufd(::open(ns_files.front().c_str(), O_RDONLY | O_CLOEXEC));
  if (!ufd) return fail_errno("open " + ns_files.front(), errno);
  TRY(run_in_netns(ufd.get(), [&]() -> Status {
        TRY(run_ok({ip, "-batch", batch}, 10s).map([](auto&&) {}));
        return {};
      }).map_error([](Error e) { return e.context("simhosts: make the underlay"); }));
  for (const auto& h : hosts) {
    const std::string hb = h.dir + "/network.ip";
    TRY(write_text(hb, "link set lo up\naddr add " + h.addr + "/24 dev eth0\nlink set eth0 up\n"));
    Fd fd(::open(h.netns.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return fail_errno("open " + h.netns, errno);
    TRY(run_in_netns(fd.get(), [&]() -> Status {
          TRY(run_ok({ip, "-batch", hb}, 10s).map([](auto&&) {}));
          return {};
        }).map_error([&](Error e) { return e.context("simhosts: address " + h.name); }));
  }
  return {};
}

// Host h's init, cloned straight into new mount, UTS and PID namespaces (so it is PID 1
// there and our child here), entering h's network namespace before it execs `simhost init`.
// The namespace files of every host are bound before this, so each host's copy of the
// mount table has them all.
Status SimHosts::State::boot(Host& h) {
  Fd netns(::open(h.netns.c_str(), O_RDONLY | O_CLOEXEC));
  if (!netns) return fail_errno("open " + h.netns, errno);
  Fd log(::open((h.dir + "/log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC,
                0600));
  if (!log) return fail_errno("create " + h.dir + "/log", errno);
  Fd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!devnull) return fail_errno("open /dev/null", errno);
  const std::vector<std::string> args = {
      program, "init", h.name, dir + "/authorized_keys", "--", kSshd,
      "-D",    "-e",   "-f",   h.dir + "/sshd_config"};
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  // The raw clone (no fork handlers: the child makes only system calls until exec, so it
  // is safe from a threaded test process).
  const long pid = ::syscall(SYS_clone, CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWUTS | SIGCHLD,
                             nullptr, nullptr, nullptr, 0);
  if (pid < 0) return fail_errno("simhosts: clone the init of " + h.name, errno);
  if (pid == 0) {
    // Dies with the test if the test dies (a crash, a SIGKILL) before stopping it.
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) ::_exit(126);
    if (::setns(netns.get(), CLONE_NEWNET) != 0) ::_exit(126);
    ::dup2(devnull.get(), 0);
    ::dup2(log.get(), 1);
    ::dup2(log.get(), 2);
    ::syscall(SYS_close_range, 3U, ~0U, 0U);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(argv[0], argv.data(), environ);
    ::_exit(127);
  }
  h.init = static_cast<pid_t>(pid);
  return {};
}

// Until sshd listens in h (read from the host's own /proc/net/tcp, through its init).
Status SimHosts::State::wait_ready(Host& h, Clock::time_point until) {
  for (;;) {
    int ws = 0;
    if (::waitpid(h.init, &ws, WNOHANG) == h.init) {
      h.init = -1;
      return fail("simhosts: " + h.name + "'s init ended before sshd listened",
                  log_tail(h.dir + "/log", 8));
    }
    if (proc_net_has_port(read_text(proc(h.init, "net/tcp")), false, 22)) return {};
    if (Clock::now() >= until)
      return fail("simhosts: sshd of " + h.name + " does not listen after 10 s",
                  log_tail(h.dir + "/log", 8));
    std::this_thread::sleep_for(2ms);
  }
}

Status SimHosts::State::stop() {
  std::vector<std::string> problems;
  for (auto& h : hosts) {
    if (h.init <= 0) continue;
    ::kill(h.init, SIGKILL);  // PID 1 gone: the kernel kills its whole PID namespace
    int ws = 0;
    while (::waitpid(h.init, &ws, 0) < 0 && errno == EINTR) {
    }
    h.init = -1;
  }
  // ssh clients of the harness (a ControlMaster, a proxy) end once their sshd is gone;
  // whatever still names the folder after 2 s is killed.
  if (!dir.empty()) {
    const auto until = Clock::now() + 2s;
    for (;;) {
      std::vector<pid_t> left;
      for (pid_t p : all_pids())
        if (p != ::getpid() && cmdline(p).find(dir) != std::string::npos && !zombie_or_gone(p))
          left.push_back(p);
      if (left.empty()) break;
      if (Clock::now() >= until) {
        for (pid_t p : left) ::kill(p, SIGKILL);
        break;
      }
      std::this_thread::sleep_for(10ms);
    }
  }
  for (auto it = ns_files.rbegin(); it != ns_files.rend(); ++it) {
    if (::umount2(it->c_str(), MNT_DETACH) != 0)
      problems.push_back("unmount " + *it + ": " + std::strerror(errno));
    else
      ::unlink(it->c_str());
  }
  ns_files.clear();
  if (dir_bound) {
    if (::umount2(dir.c_str(), MNT_DETACH) != 0)
      problems.push_back("unmount " + dir + ": " + std::strerror(errno));
    dir_bound = false;
  }
  if (!dir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    if (ec)
      problems.push_back("remove " + dir + ": " + ec.message());
    else
      dir.clear();
  }
  if (problems.empty()) return {};
  std::string all;
  for (const auto& p : problems) all += (all.empty() ? "" : "; ") + p;
  return fail("simhosts: teardown left: " + all);
}

std::string SimHosts::default_program() {
  return std::string(LABCTL_BINARY_DIR) + "/tests/simhost";
}

Result<SimHosts> SimHosts::start(int n, const std::string& program) {
  const auto t0 = Clock::now();
  if (n < 1 || n > kMaxHosts)
    return fail("simhosts: " + std::to_string(n) + " hosts: 1 to 200 are possible");
  if (::geteuid() != 0) return fail("simhosts: needs root (namespaces, mounts)");
  if (::access(kSshd, X_OK) != 0)
    return fail_errno(std::string("simhosts: ") + kSshd, errno,
                      "install openssh-server (scripts/setup.sh)");
  auto s = std::make_unique<State>();
  TRY_ASSIGN(s->program, resolve_program(program));
  TRY_ASSIGN(s->ssh, resolve_program("ssh"));
  TRY_ASSIGN(s->ip, resolve_program("ip"));
  TRY_ASSIGN(const std::string keygen, resolve_program("ssh-keygen"));
  TRY(config_safe(s->program));
  TRY(config_safe(s->ssh));

  // From here on a failure tears down what was made (SimHosts' destructor).
  SimHosts hosts(std::move(s));
  State& st = *hosts.s_;
  char tmpl[] = "/tmp/labctl-simhosts-XXXXXX";  // short: ControlPath sockets live in it
  if (::mkdtemp(tmpl) == nullptr)
    return fail_errno("simhosts: mkdtemp /tmp/labctl-simhosts-XXXXXX", errno);
  st.dir = tmpl;
  // The folder is its own private mount, so the namespace bind mounts under it propagate
  // to no other mount namespace of the machine (where / is shared, as under systemd).
  if (::mount(st.dir.c_str(), st.dir.c_str(), nullptr, MS_BIND, nullptr) != 0)
    return fail_errno("simhosts: bind " + st.dir + " onto itself", errno);
  st.dir_bound = true;
  if (::mount(nullptr, st.dir.c_str(), nullptr, MS_PRIVATE, nullptr) != 0)
    return fail_errno("simhosts: make " + st.dir + " a private mount", errno);
  for (const char* sub : {"/ns", "/cm"}) TRY(make_private_dir(st.dir + sub));

  for (int i = 1; i <= n; ++i) {
    State::Host h;
    h.name = "h" + std::to_string(i);
    h.addr = "192.168.77." + std::to_string(i);
    h.dir = st.dir + "/" + h.name;
    h.netns = st.dir + "/ns/" + h.name;
    TRY(make_private_dir(h.dir));
    st.hosts.push_back(std::move(h));
  }

  // Keys: the client's, and each host's, made for this run only.
  const std::string id = st.dir + "/id_ed25519";
  TRY(run_ok({keygen, "-q", "-t", "ed25519", "-N", "", "-C", "simhosts-client", "-f", id}, 10s)
          .map_error([](Error e) { return e.context("simhosts: make the client key"); }));
  TRY(write_text(st.dir + "/authorized_keys", read_text(id + ".pub")));
  std::string known_hosts, config;
  for (const auto& h : st.hosts) {
    const std::string key = h.dir + "/ssh_host_ed25519_key";
    TRY(run_ok({keygen, "-q", "-t", "ed25519", "-N", "", "-C", h.name, "-f", key}, 10s)
            .map_error(
                [&](Error e) { return e.context("simhosts: make the host key of " + h.name); }));
    std::string pub = read_text(key + ".pub");
    if (auto sp = pub.find(' ', pub.find(' ') + 1); sp != std::string::npos)
      pub.resize(sp);  // drop the comment
    known_hosts += h.name + "," + h.addr + " " + pub + "\n";
    TRY(write_text(h.dir + "/sshd_config",
                   "# sshd of simulated host " + h.name +
                       " (tests/support/simhosts.h)\n"
                       "Port 22\n"
                       "ListenAddress " +
                       h.addr +
                       "\n"
                       "ListenAddress 127.0.0.1\n"
                       "HostKey " +
                       key +
                       "\n"
                       "PidFile none\n"
                       "PermitRootLogin prohibit-password\n"
                       "PubkeyAuthentication yes\n"
                       "AuthorizedKeysFile /run/simhost/authorized_keys\n"
                       "StrictModes yes\n"
                       "PasswordAuthentication no\n"
                       "KbdInteractiveAuthentication no\n"
                       "UsePAM no\n"
                       "UseDNS no\n"
                       // The post-quantum default costs ~0.1 s of CPU a connection here, the
                       // tests open hundreds: same protocol, the classic curve.
                       "KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org\n"
                       "PrintMotd no\n"
                       "AcceptEnv LABCTL_*\n"
                       "MaxSessions 64\n"
                       "MaxStartups 64:30:128\n"
                       "Subsystem sftp internal-sftp\n"));
    config += "Host " + h.name +
              "\n"
              "  HostName " +
              h.addr +
              "\n"
              "  ProxyCommand " +
              shell_quote(st.program) + " proxy " + h.netns + " %h %p\n";
  }
  TRY(write_text(st.dir + "/known_hosts", known_hosts));
  config +=
      "Host *\n"
      "  User root\n"
      "  IdentityFile " +
      id +
      "\n"
      "  IdentitiesOnly yes\n"
      "  UserKnownHostsFile " +
      st.dir +
      "/known_hosts\n"
      "  GlobalKnownHostsFile /dev/null\n"
      "  StrictHostKeyChecking yes\n"
      "  BatchMode yes\n"
      "  PasswordAuthentication no\n"
      "  KbdInteractiveAuthentication no\n"
      "  ControlPath " +
      st.dir +
      "/cm/%C\n"
      "  ConnectTimeout 10\n"
      "  LogLevel ERROR\n"
      // A labctl run on one host over ssh reaches the others as the controller does (a
      // check there reading a node of another host): with this config (sshd: AcceptEnv).
      "  SetEnv LABCTL_SSH_CONFIG=" +
      st.dir + "/ssh_config\n";
  TRY(write_text(st.dir + "/ssh_config",
                 "# simulated hosts (tests/support/simhosts.h)\n" + config));

  // Every namespace file exists before the first host's mount namespace is cloned.
  TRY(st.make_netns(st.dir + "/ns/underlay"));
  for (const auto& h : st.hosts) TRY(st.make_netns(h.netns));
  TRY(st.configure_network());
  for (auto& h : st.hosts) TRY(st.boot(h));
  const auto until = Clock::now() + 10s;
  for (auto& h : st.hosts) TRY(st.wait_ready(h, until));

  // sshd listens; one real login per host (in parallel) proves keys and config.
  std::vector<Status> logins(st.hosts.size());
  {
    std::vector<std::thread> threads;
    for (size_t k = 0; k < st.hosts.size(); ++k)
      threads.emplace_back([&, k] {
        auto argv = hosts.ssh_argv(static_cast<int>(k) + 1);
        argv.push_back("true");
        logins[k] = run_ok(argv, 10s).map([](auto&&) {}).map_error([&](Error e) {
          e.hint = "sshd's log: " + log_tail(st.hosts[k].dir + "/log", 8);
          return e.context("simhosts: log in to " + st.hosts[k].name);
        });
      });
    for (auto& t : threads) t.join();
  }
  for (auto& l : logins) TRY(l);
  st.start_time = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  return hosts;
}

SimHosts::SimHosts(std::unique_ptr<State> s) : s_(std::move(s)) {}
SimHosts::SimHosts(SimHosts&&) noexcept = default;
SimHosts& SimHosts::operator=(SimHosts&& o) noexcept {
  if (this != &o) {
    if (s_) (void)s_->stop();
    s_ = std::move(o.s_);
  }
  return *this;
}
SimHosts::~SimHosts() {
  if (s_) (void)s_->stop();
}

Status SimHosts::stop() { return s_ ? s_->stop() : Status{}; }

int SimHosts::size() const { return static_cast<int>(s_->hosts.size()); }
std::string SimHosts::name(int i) const { return s_->hosts.at(static_cast<size_t>(i - 1)).name; }
std::string SimHosts::underlay(int i) const {
  return s_->hosts.at(static_cast<size_t>(i - 1)).addr;
}
const std::string& SimHosts::dir() const { return s_->dir; }
std::string SimHosts::ssh_config() const { return s_->dir + "/ssh_config"; }
std::string SimHosts::netns_file(int i) const {
  return s_->hosts.at(static_cast<size_t>(i - 1)).netns;
}
pid_t SimHosts::init_pid(int i) const { return s_->hosts.at(static_cast<size_t>(i - 1)).init; }
std::chrono::milliseconds SimHosts::start_time() const { return s_->start_time; }

std::vector<std::string> SimHosts::ssh_argv(int i) const {
  return {s_->ssh, "-F", ssh_config(), name(i)};
}

Result<std::string> SimHosts::run(int i, const std::vector<std::string>& argv,
                                  std::chrono::milliseconds timeout) const {
  // One multiplexed connection per host for the harness's own commands (a handshake costs
  // ~0.2 s on a loaded machine), on a socket of its own so that labctl's ControlMaster use
  // through ssh_config's ControlPath never finds it. It ends when its host does.
  auto full = ssh_argv(i);
  full.insert(full.begin() + 1, {"-o", "ControlMaster=auto", "-o", "ControlPersist=yes", "-o",
                                 "ControlPath=" + s_->dir + "/cm/harness-%n"});
  full.push_back(shell_join(argv));
  return run_ok(full, timeout);
}

std::vector<std::string> SimHosts::run_dir(int i, const std::string& sub) const {
  // /proc/PID/root is the root as init sees it: its mount namespace, so its own /run.
  return list_dir(proc(init_pid(i), "root/run/" + sub));
}

std::vector<std::string> SimHosts::netns_names(int i) const { return run_dir(i, "netns"); }

std::vector<pid_t> SimHosts::pids(int i) const {
  std::vector<pid_t> out;
  const std::string ns = read_link(proc(init_pid(i), "ns/pid"));
  if (ns.empty()) return out;
  for (pid_t p : all_pids())
    if (read_link(proc(p, "ns/pid")) == ns && !zombie_or_gone(p)) out.push_back(p);
  return out;
}

// Whether `p` runs Debian's sshd: compared by device and inode, not by the path /proc shows
// (in the micro-VM its exe reads as /newroot/usr/sbin/sshd, the guest's root seen from outside
// its chroot).
static bool runs_sshd(pid_t p) {
  struct stat exe {}, sshd {};
  return ::stat(proc(p, "exe").c_str(), &exe) == 0 && ::stat(kSshd, &sshd) == 0 && exe.st_dev == sshd.st_dev &&
         exe.st_ino == sshd.st_ino;
}

std::vector<std::string> SimHosts::leftovers(int i) const {
  std::vector<std::string> out;
  const std::string host = name(i) + ": ";
  for (const auto& ns : netns_names(i)) out.push_back(host + "/run/netns/" + ns);
  // A process ending right now (an sshd session closing as its ssh returned) has no exe
  // to read for a moment: only what is still there, and not sshd, a little later counts.
  auto candidates = [&](const std::vector<pid_t>& among) {
    std::vector<pid_t> c;
    for (pid_t p : among)
      if (p != init_pid(i) && !zombie_or_gone(p) && !runs_sshd(p))
        c.push_back(p);
    return c;
  };
  auto left = candidates(pids(i));
  auto unsure = [&] {
    return std::any_of(left.begin(), left.end(),
                       [](pid_t p) { return read_link(proc(p, "exe")).empty(); });
  };
  for (int round = 0; round < 25 && unsure(); ++round) {
    std::this_thread::sleep_for(20ms);
    left = candidates(left);
  }
  for (pid_t p : left) out.push_back(host + "process " + std::to_string(p) + " " + cmdline(p));
  Fd fd(::open(netns_file(i).c_str(), O_RDONLY | O_CLOEXEC));
  std::string links;
  Status listed =
      fd ? run_in_netns(fd.get(),
                        [&]() -> Status {
                          TRY_ASSIGN(links, run_ok({s_->ip, "-o", "link", "show"}, 10s));
                          return {};
                        })
         : fail_errno("open " + netns_file(i), errno);
  if (!listed) out.push_back(host + "interfaces unknown: " + listed.error().str());
  // "2: eth0@if5: <BROADCAST,..." one a line
  for (size_t at = 0; at < links.size();) {
    size_t nl = links.find('\n', at);
    if (nl == std::string::npos) nl = links.size();
    const std::string line = links.substr(at, nl - at);
    at = nl + 1;
    const auto a = line.find(": ");
    if (a == std::string::npos) continue;
    std::string dev = line.substr(a + 2, line.find(':', a + 2) - (a + 2));
    // The fallback device a tunnel module adds to every namespace once it is loaded
    // (tunl0@NONE after a lab's first ipip): the kernel's, there before any lab step.
    const bool fallback = line.find("@NONE:") != std::string::npos &&
                          std::set<std::string>{"tunl0", "ip6tnl0", "sit0", "gre0", "gretap0", "erspan0", "ip6gre0",
                                                "ip_vti0", "ip6_vti0"}
                              .contains(dev.substr(0, dev.find('@')));
    if (auto atsign = dev.find('@'); atsign != std::string::npos) dev.resize(atsign);
    if (dev != "lo" && dev != "eth0" && !fallback) out.push_back(host + "interface " + dev);
  }
  return out;
}

}  // namespace labctl::test
