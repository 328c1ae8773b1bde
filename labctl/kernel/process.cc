#include "labctl/kernel/process.h"

#include "labctl/base/display.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <sched.h>
#include <spawn.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "labctl/base/fd.h"
#include "labctl/base/file.h"
#include "labctl/kernel/tcp_sockets.h"

extern char** environ;

namespace labctl {
namespace {

// What a child reports through the status pipe when it cannot get to exec.
struct ChildFailure {
  int stage;
  int err;
};
constexpr const char* kStages[] = {"", "enter the namespace", "unshare the mount namespace",
                                   "make / a slave mount", "remount /sys", "open the log",
                                   "exec"};

// In the child, between fork and exec: only system calls. Returns 0 or the failed stage.
int enter_node(int netns_fd) {
  if (::setns(netns_fd, CLONE_NEWNET) != 0) return 1;
  if (::unshare(CLONE_NEWNS) != 0) return 2;
  if (::mount("", "/", "none", MS_SLAVE | MS_REC, nullptr) != 0) return 3;
  // A fresh sysfs shows this namespace's interfaces under /sys/class/net.
  ::umount2("/sys", MNT_DETACH);
  if (::mount("sysfs", "/sys", "sysfs", 0, nullptr) != 0) return 4;
  return 0;
}

// In the child: `fd` moved to a number above 3 (close-on-exec), or -1.
int move_above_3(int fd) {
  if (fd < 0 || fd > 3) return fd;
  int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 4);
  ::close(fd);
  return moved;
}

// In the child: every fd from `first` up is closed by the coming exec. close_range (Linux
// 5.11); older kernels get each open fd marked, as /proc/self/fd lists them (no opendir
// after fork: getdents64 on a raw fd, no allocation).
void close_on_exec_from(int first) {
  if (::syscall(SYS_close_range, static_cast<unsigned>(first), ~0U, CLOSE_RANGE_CLOEXEC) == 0)
    return;
  int dir = ::open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return;
  alignas(8) char buf[4096];
  for (long n; (n = ::syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0;) {
    for (long at = 0; at < n;) {
      struct Dirent64 {
        uint64_t ino;
        int64_t off;
        unsigned short reclen;
        unsigned char type;
        char name[1];
      };
      const auto* d = reinterpret_cast<const Dirent64*>(buf + at);
      int fd = 0;
      const char* c = d->name;
      for (; *c >= '0' && *c <= '9'; ++c) fd = fd * 10 + (*c - '0');
      if (*c == '\0' && c != d->name && fd >= first && fd != dir) ::fcntl(fd, F_SETFD, FD_CLOEXEC);
      at += d->reclen;
    }
  }
  ::close(dir);
}

// read(2), again after a signal handler interrupted it.
ssize_t read_retrying(int fd, void* buf, size_t len) {
  for (;;) {
    ssize_t n = ::read(fd, buf, len);
    if (n >= 0 || errno != EINTR) return n;
  }
}

std::vector<char*> c_strings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  for (const auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

std::vector<std::string> merged_env(const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv(*e);
    bool overridden = false;
    for (const auto& x : extra)
      if (kv.substr(0, kv.find('=') + 1) == x.substr(0, x.find('=') + 1)) overridden = true;
    if (!overridden) env.push_back(std::move(kv));
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

}  // namespace

// Resolved in the parent, so "not found" is a clear error rather than a failed exec.
Result<std::string> resolve_program(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    if (::access(name.c_str(), X_OK) == 0) return name;
    const int err = errno;
    return fail_errno("cannot run " + shown(name), err,
                      err == ENOENT   ? "there is no file " + shown(name)
                      : err == EACCES ? shown(name) + " is not executable (chmod +x) or a folder on "
                                        "its way is closed to labctl"
                                      : "");
  }
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t colon = dirs.find(':', start);
    std::string dir = dirs.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return fail_errno("program " + shown(name) + " not found in PATH", ENOENT,
                    "PATH looked in " + shown(dirs, 512) +
                        "; install it, or give its full path as the agent's argv[0]");
}

std::string log_tail(const std::string& path, int lines) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return "";
  off_t size = ::lseek(fd.get(), 0, SEEK_END);
  off_t from = size > 2048 ? size - 2048 : 0;
  std::string out(static_cast<size_t>(size - from), '\0');
  if (::pread(fd.get(), out.data(), out.size(), from) < 0) return "";
  if (from > 0) out.erase(0, std::min(out.size(), out.find('\n') + 1));  // a cut first line
  while (!out.empty() && out.back() == '\n') out.pop_back();
  size_t start = out.size();
  for (int n = 0; n < lines && start > 0; ++n) {
    size_t nl = out.rfind('\n', start - 1);
    start = nl == std::string::npos ? 0 : nl;
  }
  return out.substr(start == 0 ? 0 : start + 1);
}

bool proc_net_has_port(std::string_view table, bool udp, uint16_t port) {
  // "  sl  local_address rem_address   st ..." then one socket a line:
  // "   0: 00000000:1F90 00000000:0000 0A ...". Ports and states are hex.
  for (const auto& f : proc_net_rows(table)) {
    auto colon = f[1].rfind(':');
    if (colon == std::string_view::npos) continue;
    unsigned long p = std::strtoul(std::string(f[1].substr(colon + 1)).c_str(), nullptr, 16);
    if (p != port) continue;
    if (udp || f[3] == "0A") return true;  // 0A: TCP_LISTEN
  }
  return false;
}

bool port_ready_here(bool udp, uint16_t port) {
  for (const char* v : {"", "6"}) {
    std::string path = std::string("/proc/self/net/") + (udp ? "udp" : "tcp") + v;
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) continue;
    std::string text;
    char buf[8192];
    ssize_t n;
    while ((n = ::read(fd.get(), buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
    if (proc_net_has_port(text, udp, port)) return true;
  }
  return false;
}

Result<pid_t> spawn_in_netns(const SpawnOptions& opts) {
  if (opts.argv.empty()) return fail("nothing to run: empty argv");
  TRY_ASSIGN(std::string program, resolve_program(opts.argv[0]));
  const auto env_strings = merged_env(opts.env);
  auto argv = c_strings(opts.argv);
  auto envp = c_strings(env_strings);
  const bool want_ready = opts.ready_timeout.count() > 0;

  int status_pipe[2], ready_pipe[2] = {-1, -1};
  if (::pipe2(status_pipe, O_CLOEXEC) != 0) return fail_errno("pipe", errno);
  Fd status_r(status_pipe[0]), status_w(status_pipe[1]);
  if (want_ready && ::pipe2(ready_pipe, O_CLOEXEC) != 0) return fail_errno("pipe", errno);
  Fd ready_r(ready_pipe[0]), ready_w(ready_pipe[1]);

  pid_t child = ::fork();
  if (child < 0) return fail_errno("fork", errno);
  if (child == 0) {
    // Double fork: the grandchild is re-parented, so agents outlive labctl and never
    // linger as labctl's zombies.
    pid_t grandchild = ::fork();
    if (grandchild != 0) {
      (void)!::write(status_pipe[1], &grandchild, sizeof grandchild);
      ::_exit(grandchild > 0 ? 0 : 1);
    }
    ::setsid();
    ChildFailure f{enter_node(opts.netns_fd), 0};
    if (f.stage == 0) {
      // Above fd 3, so that no dup2 below lands on one of them (labctl started with a
      // standard fd closed would otherwise hand out 0-2 here).
      int in = move_above_3(::open("/dev/null", O_RDONLY | O_CLOEXEC));
      int out = move_above_3(::open(opts.log_path.empty() ? "/dev/null" : opts.log_path.c_str(),
                                    O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600));
      int ready = want_ready ? move_above_3(ready_pipe[1]) : -1;
      if (in < 0 || out < 0 || (want_ready && ready < 0)) {
        f.stage = 5;
      } else {
        // dup2 clears close-on-exec on the copy: 0-2 (and 3) are what the agent gets.
        ::dup2(in, 0);
        ::dup2(out, 1);
        ::dup2(out, 2);
        if (want_ready) ::dup2(ready, 3);
        // Nothing else of whoever ran labctl (a CI harness's pipe, a terminal's extra fds)
        // reaches the agent: everything above marked close-on-exec, which keeps the status
        // pipe open until the exec itself.
        close_on_exec_from(want_ready ? 4 : 3);
        ::execve(program.c_str(), argv.data(), envp.data());
        f.stage = 6;
      }
    }
    f.err = errno;
    (void)!::write(status_pipe[1], &f, sizeof f);
    ::_exit(127);
  }
  status_w.reset();
  ready_w.reset();
  // `up` catches Ctrl-C without SA_RESTART (lab/lifecycle.cc): one here must not read as a
  // failed fork and orphan the agent; the caller sees the flag and rolls the agent back.
  int ws = 0;
  while (::waitpid(child, &ws, 0) < 0 && errno == EINTR) {
  }
  pid_t pid = -1;
  if (read_retrying(status_r.get(), &pid, sizeof pid) != sizeof pid || pid <= 0)
    return fail("start " + opts.argv[0] + ": fork failed");
  ChildFailure f{};
  if (read_retrying(status_r.get(), &f, sizeof f) == sizeof f) {
    ::waitpid(pid, nullptr, WNOHANG);
    return fail_errno("start " + opts.argv[0] + ": could not " + kStages[f.stage], f.err);
  }
  if (!want_ready) return pid;

  // The child answers with one line: "ready", or "failed: WHY". Until then, EOF means it
  // died without a word.
  const auto deadline = std::chrono::steady_clock::now() + opts.ready_timeout;
  std::string answer;
  bool timed_out = false;
  while (answer.find('\n') == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{ready_r.get(), POLLIN, 0};
    int rc = left.count() > 0 ? ::poll(&p, 1, static_cast<int>(left.count())) : 0;
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) {
      timed_out = rc == 0;
      break;
    }
    char buf[512];
    ssize_t n = read_retrying(ready_r.get(), buf, sizeof buf);
    if (n <= 0) break;
    answer.append(buf, static_cast<size_t>(n));
  }
  if (answer.starts_with("ready")) return pid;
  if (timed_out) ::kill(pid, SIGTERM);  // a supervisor passes it on to the agent
  std::string why = answer.starts_with("failed: ") ? answer.substr(8, answer.find('\n') - 8)
                    : timed_out ? "not ready after " + std::to_string(opts.ready_timeout.count()) + " ms"
                                : "it exited before it was ready";
  std::string tail = log_tail(opts.log_path);
  std::string indented;
  for (size_t at = 0; at < tail.size();) {
    size_t nl = tail.find('\n', at);
    indented += "\n    " + tail.substr(at, nl == std::string::npos ? nl : nl - at);
    at = nl == std::string::npos ? tail.size() : nl + 1;
  }
  return fail("start " + (opts.what.empty() ? opts.argv[0] : opts.what) + ": " + why,
              tail.empty() ? "its log " + opts.log_path + " is empty"
                           : "the last lines of its log (" + opts.log_path + "):" + indented);
}

std::optional<SchedFacts> parse_sched_facts(std::string_view stat, std::string_view schedstat,
                                            long ticks_per_second) {
  // "PID (COMM) S ..." where COMM may hold spaces and parentheses: fields follow the last ')'.
  const size_t paren = stat.rfind(')');
  if (paren == std::string_view::npos) return std::nullopt;
  std::vector<std::string_view> f;
  for (size_t i = paren + 1; i < stat.size() && f.size() < 13;) {
    while (i < stat.size() && (stat[i] == ' ' || stat[i] == '\n')) ++i;
    size_t j = i;
    while (j < stat.size() && stat[j] != ' ' && stat[j] != '\n') ++j;
    if (j > i) f.push_back(stat.substr(i, j - i));
    i = j;
  }
  // f[0] is the state (field 3), f[11] and f[12] utime and stime (fields 14, 15).
  if (f.size() < 13 || f[0].size() != 1 || ticks_per_second <= 0) return std::nullopt;
  auto number = [](std::string_view w, unsigned long long& v) {
    auto [end, ec] = std::from_chars(w.data(), w.data() + w.size(), v);
    return ec == std::errc{} && end == w.data() + w.size();
  };
  SchedFacts out;
  out.state = f[0][0];
  unsigned long long ut = 0, st = 0;
  if (!number(f[11], ut) || !number(f[12], st)) return std::nullopt;
  out.run = std::chrono::nanoseconds((ut + st) * 1'000'000'000ULL / static_cast<unsigned long long>(ticks_per_second));
  // "RUN_NS WAIT_NS SLICES": nanoseconds, finer than the ticks above.
  unsigned long long run = 0, wait = 0;
  const size_t sp = schedstat.find(' ');
  const size_t sp2 = sp == std::string_view::npos ? sp : schedstat.find(' ', sp + 1);
  if (sp2 != std::string_view::npos && number(schedstat.substr(0, sp), run) &&
      number(schedstat.substr(sp + 1, sp2 - sp - 1), wait)) {
    out.run = std::chrono::nanoseconds(run);
    out.wait = std::chrono::nanoseconds(wait);
    out.waits_known = true;
  }
  return out;
}

std::optional<SchedFacts> sched_facts(pid_t pid) {
  const std::string dir = "/proc/" + std::to_string(pid);
  const std::string stat = read_text(dir + "/stat");
  if (stat.empty()) return std::nullopt;
  return parse_sched_facts(stat, read_text(dir + "/schedstat"), ::sysconf(_SC_CLK_TCK));
}

std::chrono::nanoseconds time_had(const SchedFacts& f, std::chrono::nanoseconds wall) {
  switch (f.state) {
    case 'S':
    case 'I':
      // Without schedstat the waits are unknown: asleep, it has run at least once, and the
      // wall time is the best bound left.
      return std::max(f.run, wall - f.wait);
    case 'R':
    case 'D':
      return f.run;
    default:  // T, t (stopped), Z, X (dead), anything new
      return std::chrono::nanoseconds(0);
  }
}

using Inodes = std::vector<std::pair<dev_t, ino_t>>;

// Where in `inodes` the network namespace of `st` is, or inodes.size().
static size_t which(const Inodes& inodes, const struct stat& st) {
  for (size_t i = 0; i < inodes.size(); ++i)
    if (st.st_dev == inodes[i].first && st.st_ino == inodes[i].second) return i;
  return inodes.size();
}

// The pids in /proc (thread-group leaders) that live in one of `inodes`.
static std::vector<pid_t> pids_in(const Inodes& inodes) {
  std::vector<pid_t> out;
  if (inodes.empty()) return out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  const pid_t self = ::getpid();
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0 || pid == self) continue;
    struct stat st{};
    std::string p = std::string(e->d_name) + "/ns/net";
    if (::fstatat(::dirfd(d), p.c_str(), &st, 0) != 0) continue;
    if (which(inodes, st) < inodes.size()) out.push_back(static_cast<pid_t>(pid));
  }
  ::closedir(d);
  return out;
}

static Inodes inodes_of(const std::vector<std::string>& ns_paths) {
  Inodes out;
  for (const auto& path : ns_paths) {
    struct stat st{};
    if (::stat(path.c_str(), &st) == 0) out.emplace_back(st.st_dev, st.st_ino);
  }
  return out;
}

std::vector<pid_t> pids_in_netns(const std::string& ns_path) {
  return pids_in(inodes_of({ns_path}));
}

namespace {

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }
int pidfd_send_signal(int fd, int sig) {
  return static_cast<int>(::syscall(SYS_pidfd_send_signal, fd, sig, nullptr, 0));
}

// Waits until every process behind `fds` has exited (each pidfd turns readable) or the
// time is up; returns the ones still running.
std::vector<Fd> wait_exit(std::vector<Fd> fds, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!fds.empty()) {
    std::vector<pollfd> p;
    for (const auto& f : fds) p.push_back({f.get(), POLLIN, 0});
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    if (::poll(p.data(), p.size(), static_cast<int>(left.count())) < 0 && errno != EINTR) break;
    std::vector<Fd> running;
    for (size_t i = 0; i < fds.size(); ++i)
      if (!(p[i].revents & POLLIN)) running.push_back(std::move(fds[i]));
    fds = std::move(running);
  }
  return fds;
}

}  // namespace

// A pidfd for `pid` if its process is in one of `inodes`. A pid from a scan of /proc may
// have been recycled since, so the check comes after the pidfd is open: from then on the
// pidfd names that process and no other.
static Fd open_if_inside(pid_t pid, const Inodes& inodes) {
  Fd fd(pidfd_open(pid));
  struct stat st{};
  const std::string ns = "/proc/" + std::to_string(pid) + "/ns/net";
  if (!fd || ::stat(ns.c_str(), &st) != 0 || which(inodes, st) == inodes.size()) return Fd();
  return fd;
}

void stop_processes_in_netns(const std::vector<std::string>& ns_paths,
                             std::chrono::milliseconds grace) {
  const auto inodes = inodes_of(ns_paths);
  const auto pids = pids_in(inodes);
  if (pids.empty()) return;  // nothing to wait for, so no window for latecomers either
  std::vector<Fd> fds;
  for (pid_t p : pids)
    if (Fd fd = open_if_inside(p, inodes); fd && pidfd_send_signal(fd.get(), SIGTERM) == 0)
      fds.push_back(std::move(fd));
  fds = wait_exit(std::move(fds), grace);
  for (const auto& fd : fds) pidfd_send_signal(fd.get(), SIGKILL);
  wait_exit(std::move(fds), std::chrono::seconds(5));
  // Anything that entered a namespace while we waited (an `exec` shell started just now).
  for (pid_t p : pids_in(inodes))
    if (Fd fd = open_if_inside(p, inodes)) pidfd_send_signal(fd.get(), SIGKILL);
}

Error exec_in_netns(int netns_fd, const std::vector<std::string>& argv,
                    const std::vector<std::string>& env) {
  if (argv.empty()) return Error{"nothing to run", 0, {}, {}};
  if (int stage = enter_node(netns_fd); stage != 0)
    return Error{std::string("could not ") + kStages[stage], errno, {}, {}};
  const auto env_strings = merged_env(env);
  auto args = c_strings(argv);
  auto envp = c_strings(env_strings);
  ::execvpe(argv[0].c_str(), args.data(), envp.data());
  int err = errno;
  return Error{"cannot run " + argv[0], err, {}, err == ENOENT ? "is it installed and in PATH?" : ""};
}

Result<pid_t> spawn_in_own_group(const std::vector<std::string>& argv, int in, int out, int err) {
  if (argv.empty()) return fail("spawn: no program");
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  ::posix_spawn_file_actions_init(&fa);
  ::posix_spawnattr_init(&attr);
  const int fds[3] = {in, out, err};
  for (int i = 0; i < 3; ++i) {
    if (fds[i] >= 0)
      ::posix_spawn_file_actions_adddup2(&fa, fds[i], i);
    else
      ::posix_spawn_file_actions_addopen(&fa, i, "/dev/null", i == 0 ? O_RDONLY : O_WRONLY, 0);
  }
  ::posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  ::posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  ::posix_spawnattr_setsigmask(&attr, &none);
  // Signals labctl catches (SIGINT for `up`'s rollback) are reset by exec anyway; ignored
  // ones (SIGPIPE under some shells) are not: the child gets the defaults.
  ::posix_spawnattr_setsigdefault(&attr, &all);
  ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  const int rc = ::posix_spawn(&pid, argv[0].c_str(), &fa, &attr, args.data(), environ);
  ::posix_spawn_file_actions_destroy(&fa);
  ::posix_spawnattr_destroy(&attr);
  if (rc != 0) return fail_errno("start " + argv[0], rc);
  return pid;
}

Result<Captured> run_captured(const std::vector<std::string>& argv, std::chrono::steady_clock::time_point until,
                              const std::atomic<bool>* stop, std::chrono::milliseconds grace, const CaptureIo& io) {
  using Clock = std::chrono::steady_clock;
  if (argv.empty()) return fail("run_captured: no program");
  Fd input;
  if (!io.input.empty()) {
    input = Fd(::memfd_create("labctl-input", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!input) return fail_errno("memfd_create", errno);
    for (size_t done = 0; done < io.input.size();) {
      const ssize_t n = ::write(input.get(), io.input.data() + done, io.input.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return fail_errno("write the input of " + argv[0], errno);
      done += static_cast<size_t>(n);
    }
    (void)::fcntl(input.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
    if (::lseek(input.get(), 0, SEEK_SET) != 0) return fail_errno("rewind the input of " + argv[0], errno);
  }
  Fd input_w;  // end_input: the write end, closed when it turns true
  if (io.end_input) {
    if (!io.input.empty()) return fail("run_captured: input and end_input together");
    int in_pipe[2];
    if (::pipe2(in_pipe, O_CLOEXEC) != 0) return fail_errno("pipe", errno);
    input = Fd(in_pipe[0]);
    input_w = Fd(in_pipe[1]);
  }
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return fail_errno("pipe", errno);
  Fd out_r(out_pipe[0]), out_w(out_pipe[1]);
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) return fail_errno("pipe", errno);
  Fd err_r(err_pipe[0]), err_w(err_pipe[1]);
  TRY_ASSIGN(const pid_t pid, spawn_in_own_group(argv, input ? input.get() : -1, out_w.get(), err_w.get()));
  out_w = Fd();
  err_w = Fd();
  input = Fd();
  Captured c;
  std::string partial[2];
  auto hand_on = [&](int i, std::string_view chunk, bool last) {
    if (!io.on_line) return;
    partial[i].append(chunk);
    size_t start = 0;
    for (size_t nl; (nl = partial[i].find('\n', start)) != std::string::npos; start = nl + 1)
      io.on_line(i == 1, std::string_view(partial[i]).substr(start, nl - start));
    partial[i].erase(0, start);
    if (last && !partial[i].empty()) {
      io.on_line(i == 1, partial[i]);
      partial[i].clear();
    }
  };
  std::optional<Clock::time_point> kill_at;
  auto signal_group = [&](int sig) { ::kill(-pid, sig); };
  pollfd fds[2] = {{out_r.get(), POLLIN, 0}, {err_r.get(), POLLIN, 0}};
  std::string* sinks[2] = {&c.out, &c.err};
  int open_pipes = 2;
  while (open_pipes > 0) {
    if (input_w && io.end_input->load()) input_w = Fd();
    const auto now = Clock::now();
    if (!kill_at && (now >= until || (stop && stop->load()))) {
      (now >= until ? c.timed_out : c.stopped) = true;
      signal_group(SIGINT);
      kill_at = now + grace;
    } else if (kill_at && now >= *kill_at) {
      signal_group(SIGKILL);
      kill_at = Clock::time_point::max();
    }
    if (::poll(fds, 2, 100) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[8192];
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
        hand_on(i, std::string_view(buf, static_cast<size_t>(n)), false);
      } else if (n == 0 || errno != EINTR) {
        fds[i].fd = -1;
        --open_pipes;
        hand_on(i, {}, true);
      }
    }
  }
  // Both pipes closed: it exited, or left a child of its own holding them (not ours to wait for).
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  c.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return c;
}

}  // namespace labctl
