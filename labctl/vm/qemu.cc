#include "labctl/vm/qemu.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <sstream>

#include <fmt/format.h>

#include "labctl/base/fd.h"
#include "labctl/base/file.h"
#include "labctl/vm/initramfs.h"

namespace labctl {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

// The guest console and qemu's output are read back for error messages up to this size.
constexpr size_t kMaxLog = 16u << 20;

bool valid_env_name(const std::string& name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  return true;
}

// Blocks the signals we handle and delivers them through a signalfd; the old mask comes
// back on destruction. qemu gets a clean mask, so it still dies of SIGKILL/SIGTERM.
class SignalGuard {
 public:
  SignalGuard() {
    sigemptyset(&set_);
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGCHLD}) sigaddset(&set_, s);
    ::sigprocmask(SIG_BLOCK, &set_, &old_);
    fd_.reset(::signalfd(-1, &set_, SFD_CLOEXEC | SFD_NONBLOCK));
  }
  SignalGuard(const SignalGuard&) = delete;
  SignalGuard& operator=(const SignalGuard&) = delete;
  ~SignalGuard() {
    fd_.reset();
    // Drop what arrived while blocked, except what the user sent to stop us.
    ::sigprocmask(SIG_SETMASK, &old_, nullptr);
  }
  [[nodiscard]] int fd() const { return fd_.get(); }
  [[nodiscard]] const sigset_t& old_mask() const { return old_; }

 private:
  sigset_t set_{}, old_{};
  Fd fd_;
};

// qemu as a child that never outlives us: killed on every return path and, through
// PR_SET_PDEATHSIG, even when labctl itself is killed.
class Child {
 public:
  Child() = default;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() { kill(); }

  Status spawn(const std::vector<std::string>& argv, int out_fd, const sigset_t& mask) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) return fail_errno("fork", errno);
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      ::sigprocmask(SIG_SETMASK, &mask, nullptr);
      int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      ::dup2(null, 0);
      ::dup2(out_fd, 1);
      ::dup2(out_fd, 2);
      ::setpgid(0, 0);  // a terminal's ^C reaches labctl only; labctl decides
      // Nothing of labctl's stays open in qemu (the work folder's fd among them).
      ::syscall(SYS_close_range, 3U, ~0U, 0U);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    return {};
  }
  /// True once the child has exited (reaped).
  bool poll_exit() {
    if (pid_ <= 0) return true;
    int st = 0;
    if (::waitpid(pid_, &st, WNOHANG) == pid_) {
      pid_ = -1;
      status_ = st;
      return true;
    }
    return false;
  }
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status_, 0);
    pid_ = -1;
  }
  [[nodiscard]] int status() const { return status_; }

 private:
  pid_t pid_ = -1;
  int status_ = 0;
};

// Copies what the guest appended to a share file since the last call.
class Tail {
 public:
  Tail(Fd fd, int to) : fd_(std::move(fd)), to_(to) {}
  void pump() {
    if (!fd_) return;
    char buf[65536];
    for (ssize_t n; (n = ::read(fd_.get(), buf, sizeof buf)) > 0;) {
      if (to_ < 0) continue;
      for (ssize_t off = 0; off < n;) {
        ssize_t w = ::write(to_, buf + off, static_cast<size_t>(n - off));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        off += w;
      }
    }
  }

 private:
  Fd fd_;
  int to_;
};

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

}  // namespace

std::vector<std::string> qemu_argv(const QemuConfig& c) {
  std::vector<std::string> a = {c.qemu, "-nodefaults", "-no-user-config", "-display", "none",
                                "-no-reboot", "-m", std::to_string(c.memory_mib)};
  if (c.kvm) a.insert(a.end(), {"-enable-kvm", "-cpu", "host"});
  else a.insert(a.end(), {"-accel", "tcg"});
  a.insert(a.end(),
           {"-kernel", c.kernel_image, "-initrd", c.initramfs, "-append",
            std::string("console=ttyS0 panic=-1") + (c.verbose ? "" : " quiet"),
            "-chardev", "file,id=console,path=" + qemu_escape(c.console_log),
            "-serial", "chardev:console", "-nic", "none",
            "-virtfs", std::string("local,path=/,mount_tag=") + kRootTag +
                           ",security_model=none,readonly=on,multidevs=remap",
            "-virtfs", "local,path=" + qemu_escape(c.io_dir) + ",mount_tag=" + kIoTag +
                           ",security_model=none"});
  return a;
}

std::string command_script(const std::vector<std::string>& argv, const std::string& cwd,
                           const std::vector<std::string>& env) {
  std::string s = "# generated by labctl vm exec\n";
  for (const auto& e : env) {
    auto eq = e.find('=');
    if (eq == std::string::npos || !valid_env_name(e.substr(0, eq))) continue;
    s += "export " + e.substr(0, eq) + "=" + shell_quote(e.substr(eq + 1)) + "\n";
  }
  s += "cd -- " + shell_quote(cwd) + " || { echo 'labctl vm: cannot enter '" + shell_quote(cwd) +
       "' in the guest' >&2; exit 125; }\n";
  s += "exec";
  for (const auto& a : argv) s += " " + shell_quote(a);
  return s + "\n";
}

bool hidden_in_guest(const std::string& path) {
  // /tmp is not among them: the overlay root already makes the host's /tmp writable in the
  // guest, so a clone or build tree under /tmp works there too.
  for (const char* p : {"/run", "/proc", "/sys", "/dev"}) {
    std::string_view v(path), pre(p);
    if (v == pre || (v.starts_with(pre) && v.size() > pre.size() && v[pre.size()] == '/')) return true;
  }
  return false;
}

std::string find_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
  for (std::string d; std::getline(dirs, d, ':');) {
    std::string p = (d.empty() ? "." : d) + "/" + name;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return {};
}

std::string qemu_escape(const std::string& s) {
  std::string out;
  for (char c : s) out += c == ',' ? std::string(",,") : std::string(1, c);
  return out;
}

std::string last_lines(const std::string& text, size_t n, const std::string& prefix) {
  std::deque<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    if (!l.empty() && l.back() == '\r') l.pop_back();
    lines.push_back(l);
    if (lines.size() > n) lines.pop_front();
  }
  std::string out;
  for (const auto& l : lines) out += "\n  " + prefix + l;
  return out;
}

Result<VmWorkDir> VmWorkDir::create(const std::string& script) {
  const char* env = std::getenv("TMPDIR");
  const std::string base = env && *env ? env : "/tmp";
  // Whoever may rename entries of `base` may swap our folder for one of theirs after the
  // fact: only we, root, or nobody else (the sticky bit, as on /tmp) may.
  struct stat bs{};
  if (::stat(base.c_str(), &bs) != 0) return fail_errno("temporary directory " + base, errno);
  if (bs.st_uid != 0 && bs.st_uid != ::geteuid())
    return fail("the temporary directory " + base + " belongs to another user (uid " +
                    std::to_string(bs.st_uid) + ")",
                "set TMPDIR to a folder of yours or root's, such as /tmp");
  if ((bs.st_mode & (S_IWGRP | S_IWOTH)) && !(bs.st_mode & S_ISVTX))
    return fail("the temporary directory " + base + " is writable by others without the sticky bit",
                "set TMPDIR to a private folder, or to /tmp");
  std::string templ = base + "/labctl-vm.XXXXXX";
  // mkdtemp makes it 0700, and it stays so: qemu runs as us, and with 9p's
  // security_model=none it acts as us for the guest's root too.
  if (!::mkdtemp(templ.data())) return fail_errno("create a temporary directory " + templ, errno);
  Fd fd(::open(templ.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) {
    int e = errno;
    ::rmdir(templ.c_str());
    return fail_errno("open " + templ, e);
  }
  VmWorkDir dir(templ, std::move(fd));
  for (const char* name : kWorkFiles) {
    TRY_ASSIGN(Fd f, create_file_at(dir.fd_.get(), name, 0600));
    if (std::string_view(name) == "cmd.sh") TRY(write_all(f.get(), script, dir / name));
  }
  return dir;
}

VmWorkDir::VmWorkDir(VmWorkDir&& o) noexcept
    : path_(std::exchange(o.path_, {})), fd_(std::move(o.fd_)) {}

VmWorkDir::~VmWorkDir() {
  std::error_code ec;
  if (!path_.empty()) fs::remove_all(path_, ec);
}

Fd VmWorkDir::open(const std::string& name, int flags) const {
  return Fd(::openat(fd_.get(), name.c_str(), flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
}

std::string VmWorkDir::read(const std::string& name, size_t max) const {
  Fd fd = open(name);
  struct stat st{};
  if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return {};
  std::string out;
  char buf[65536];
  for (ssize_t n; (n = ::read(fd.get(), buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return {};
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max) return {};
  }
  return out;
}

Result<int> vm_exec(const VmOptions& o) {
  const auto start = Clock::now();
  if (o.argv.empty()) return fail("no command given", "usage: labctl vm exec [options] -- CMD...");
  std::string qemu = find_program(o.qemu.empty() ? "qemu-system-x86_64" : o.qemu);
  if (qemu.empty())
    return fail("qemu-system-x86_64 not found",
                "install the package qemu-system-x86 (scripts/setup.sh does)");
  std::string cwd = o.cwd.empty() ? fs::current_path().string() : o.cwd;
  if (hidden_in_guest(cwd))
    return fail("the working directory " + cwd + " does not exist in the guest",
                "the guest mounts fresh /run, /proc, /sys and /dev: cd elsewhere first");
  TRY_ASSIGN(VmKernel kernel, resolve_vm_kernel(o.kernel));
  TRY_ASSIGN(std::string initramfs, prepare_initramfs(kernel, o.preload));

  TRY_ASSIGN(VmWorkDir dir, VmWorkDir::create(command_script(o.argv, cwd, o.env)));
  Tail out(dir.open("stdout"), STDOUT_FILENO), err(dir.open("stderr"), STDERR_FILENO);
  Tail console(dir.open("console.log"), o.verbose ? STDERR_FILENO : -1);

  QemuConfig qc{qemu, kernel.image, initramfs, dir.path(), dir / "console.log",
                o.memory_mib, o.kvm, o.verbose};
  Fd log = dir.open("qemu.log", O_WRONLY);
  if (!log) return fail_errno("open " + (dir / "qemu.log"), errno);
  if (o.verbose)
    std::fprintf(stderr, "labctl vm: kernel %s (%s), modules %s\n", kernel.version.c_str(),
                 kernel.image.c_str(), kernel.modules.c_str());

  SignalGuard signals;
  Child child;
  TRY(child.spawn(qemu_argv(qc), log.get(), signals.old_mask()));
  const auto deadline = o.timeout_s > 0 ? start + std::chrono::seconds(o.timeout_s)
                                        : Clock::time_point::max();
  bool booted = false;
  int stop_signal = 0;
  for (;;) {
    pollfd p{signals.fd(), POLLIN, 0};
    ::poll(&p, 1, 50);
    for (signalfd_siginfo si; ::read(signals.fd(), &si, sizeof si) == sizeof si;)
      if (si.ssi_signo != SIGCHLD) stop_signal = static_cast<int>(si.ssi_signo);
    out.pump();
    err.pump();
    console.pump();
    if (o.verbose && !booted && dir.open("booted")) {
      booted = true;
      std::fprintf(stderr, "labctl vm: guest booted in %.1f s\n", seconds_since(start));
    }
    if (child.poll_exit()) break;
    if (stop_signal) {
      child.kill();
      return fail_errno(fmt::format("interrupted by SIG{}: the guest was killed",
                                    sigabbrev_np(stop_signal) ? sigabbrev_np(stop_signal) : "?"),
                        EINTR);
    }
    if (Clock::now() >= deadline) {
      child.kill();
      return fail_errno(fmt::format("the guest did not finish within {} s and was killed", o.timeout_s),
                        ETIMEDOUT, "raise --timeout, or look at the guest console with --verbose");
    }
  }
  out.pump();
  err.pump();
  console.pump();
  int status = 0;
  std::istringstream status_in(dir.read("status", 64));
  if (!(status_in >> status)) {
    std::string why = dir.read("error", 4096);
    while (!why.empty() && why.back() == '\n') why.pop_back();
    std::string detail = last_lines(dir.read("qemu.log", kMaxLog), 10, "| ") +
                         last_lines(dir.read("console.log", kMaxLog), 20, "| ");
    int qs = child.status();
    return fail(fmt::format("the guest stopped without running the command ({}; qemu {} {}){}{}",
                            why.empty() ? "no error reported by its init" : why,
                            WIFEXITED(qs) ? "exited with" : "killed by signal",
                            WIFEXITED(qs) ? WEXITSTATUS(qs) : WTERMSIG(qs),
                            detail.empty() ? "" : "; last output:", detail),
                "rerun with --verbose to see the whole guest console");
  }
  if (std::string w = dir.read("warnings", 4096); !w.empty())
    std::fprintf(stderr, "labctl vm: warning: %s", w.c_str());
  if (o.verbose)
    std::fprintf(stderr, "labctl vm: done in %.1f s, command exited with %d\n",
                 seconds_since(start), status);
  return status;
}

}  // namespace labctl
