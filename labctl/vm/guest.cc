#include "labctl/vm/guest.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "labctl/base/fd.h"
#include "labctl/vm/initramfs.h"
#include "labctl/base/file.h"
#include "labctl/vm/qemu.h"

namespace labctl {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

// qemu in its own session, detached from labctl: the lab outlives `labctl up`.
Result<pid_t> spawn_detached(const std::vector<std::string>& argv, int log_fd) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return fail_errno("fork", errno);
  if (pid == 0) {
    ::setsid();
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    ::dup2(null, 0);
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    // Nothing of labctl's may stay open in qemu (a caller's pipe would never see its end).
    ::syscall(SYS_close_range, 3U, ~0U, 0U);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

// Every uid of the process (real, effective, saved, file system) is `uid`. Read from
// status, not from the owner of /proc/PID, which a process can make root's by turning
// itself non-dumpable.
bool owned_only_by(pid_t pid, uid_t uid) {
  auto status = read_regular_file("/proc/" + std::to_string(pid) + "/status", 1 << 16);
  if (!status) return false;
  std::istringstream in(*status);
  for (std::string line; std::getline(in, line);) {
    if (!line.starts_with("Uid:")) continue;
    std::istringstream ids(line.substr(4));
    int n = 0;
    for (long long id; ids >> id; ++n)
      if (id != static_cast<long long>(uid)) return false;
    return n == 4;
  }
  return false;
}

bool alive(int pidfd) {
  pollfd p{pidfd, POLLIN, 0};  // a pidfd turns readable when its process exits
  return ::poll(&p, 1, 0) == 0;
}

}  // namespace

std::optional<GuestProcess> running_guest(const std::string& dir) {
  auto info = read_guest_info(dir);
  if (!info || info->pid <= 0) return std::nullopt;
  GuestProcess g{info->pid, Fd(static_cast<int>(::syscall(SYS_pidfd_open, info->pid, 0)))};
  if (!g.pidfd) return std::nullopt;
  const std::string proc = "/proc/" + std::to_string(g.pid);
  std::error_code ec;
  std::string exe = fs::read_symlink(proc + "/exe", ec).string();
  if (ec) return std::nullopt;
  // A qemu whose binary was upgraded under it still is that qemu.
  if (exe.ends_with(" (deleted)")) exe.resize(exe.size() - 10);
  auto cmdline = read_regular_file(proc + "/cmdline", 1 << 20);
  // A vm.json of an older labctl records no binary: then any qemu-system-* of ours.
  const bool is_qemu = info->qemu.empty()
                           ? fs::path(exe).filename().string().starts_with("qemu-system-")
                           : exe == info->qemu;
  if (!is_qemu || !owned_only_by(g.pid, ::geteuid()) || !cmdline ||
      cmdline->find(dir + "/port0.sock") == std::string::npos)
    return std::nullopt;
  // Checked last: while the pidfd's process lives, its pid cannot have been reused, so
  // everything read above was about it.
  if (!alive(g.pidfd.get())) return std::nullopt;
  return g;
}

bool stop_guest(const std::string& dir, int grace_ms) {
  auto g = running_guest(dir);
  if (!g) return false;
  auto wait_exit = [&](int ms) {
    pollfd p{g->pidfd.get(), POLLIN, 0};
    while (::poll(&p, 1, ms) < 0 && errno == EINTR) {
    }
    ::waitpid(g->pid, nullptr, WNOHANG);  // when qemu is our own child
    return !alive(g->pidfd.get());
  };
  ::syscall(SYS_pidfd_send_signal, g->pidfd.get(), SIGTERM, nullptr, 0);
  if (!wait_exit(grace_ms)) {
    ::syscall(SYS_pidfd_send_signal, g->pidfd.get(), SIGKILL, nullptr, 0);
    wait_exit(2000);
  }
  return true;
}

std::vector<RelayPort> guest_ports(const std::string& dir) {
  std::vector<RelayPort> out;
  for (int i = 0; i < kRelayPorts; ++i)
    out.push_back({fmt::format("{}/port{}.sock", dir, i), fmt::format("{}/port{}.lock", dir, i)});
  return out;
}

std::string guest_log_tail(const std::string& dir, size_t n) {
  // Bounded, and never a FIFO: the guest's root writes these files.
  auto tail = [](const std::string& path) {
    return read_regular_file(path, 16u << 20).value_or("");
  };
  return last_lines(tail(dir + "/qemu.log"), 5, "qemu| ") +
         last_lines(tail(dir + "/console.log"), n, "console| ") +
         last_lines(tail(dir + "/io/stderr"), 5, "serve| ");
}

Result<GuestInfo> read_guest_info(const std::string& dir) {
  auto text = read_regular_file(dir + "/vm.json", 1 << 16);
  if (!text) return tl::unexpected(text.error());
  try {
    auto j = nlohmann::json::parse(*text);
    GuestInfo g;
    g.pid = j.at("pid").get<pid_t>();
    g.kernel_version = j.at("kernel").get<std::string>();
    g.qemu = j.value("qemu", "");
    g.boot_s = j.value("boot_s", 0.0);
    g.dir = dir;
    return g;
  } catch (const nlohmann::json::exception& e) {
    return fail("read " + dir + "/vm.json: " + e.what());
  }
}

Result<GuestInfo> boot_guest(const GuestOptions& o) {
  const auto start = Clock::now();
  std::string qemu = find_program(o.qemu.empty() ? "qemu-system-x86_64" : o.qemu);
  if (qemu.empty())
    return fail("qemu-system-x86_64 not found",
                "install the package qemu-system-x86 (scripts/setup.sh does)");
  // What /proc/PID/exe will show: running_guest recognizes the guest by it.
  std::error_code canon_ec;
  const std::string canonical = fs::canonical(qemu, canon_ec).string();
  if (canon_ec) return fail("resolve " + qemu + ": " + canon_ec.message());
  qemu = canonical;
  // virtio_console carries the relay ports; the rest as for `labctl vm exec`.
  std::vector<std::string> preload = VmOptions{}.preload;
  preload.insert(preload.begin(), "virtio_console");
  TRY_ASSIGN(VmKernel kernel, resolve_vm_kernel(o.kernel));
  TRY_ASSIGN(std::string initramfs, prepare_initramfs(kernel, preload));
  for (const auto& p : guest_ports(o.dir))
    if (p.socket.size() >= 108)
      return fail("the relay socket path " + p.socket + " is too long for a unix socket",
                  "use a shorter LABCTL_STATE_DIR");

  if (::mkdir(o.dir.c_str(), 0700) != 0) return fail_errno("create " + o.dir, errno);
  const std::string io = o.dir + "/io";
  // 0700 is enough: qemu runs as us, and with 9p's security_model=none it acts as us for
  // the guest's root too.
  if (::mkdir(io.c_str(), 0700) != 0) return fail_errno("create " + io, errno);
  Fd dirfd(::open(o.dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  Fd iofd(::open(io.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!dirfd || !iofd) return fail_errno("open " + io, errno);
  {
    TRY_ASSIGN(Fd cmd, create_file_at(iofd.get(), "cmd.sh"));
    TRY(write_all(cmd.get(),
                  command_script({o.self_exe, "vm", "serve", "--ready",
                                  std::string(kGuestIoDir) + "/ready"},
                                 "/", o.env),
                  io + "/cmd.sh"));
    TRY_ASSIGN(Fd console, create_file_at(dirfd.get(), "console.log"));
  }
  TRY_ASSIGN(Fd log, create_file_at(dirfd.get(), "qemu.log"));

  QemuConfig qc{qemu, kernel.image, initramfs, io, o.dir + "/console.log", o.memory_mib, o.kvm, false};
  std::vector<std::string> argv = qemu_argv(qc);
  argv.insert(argv.end(), {"-name", o.name, "-device", "virtio-serial-pci,id=relay"});
  for (int i = 0; i < kRelayPorts; ++i) {
    argv.insert(argv.end(),
                {"-chardev",
                 fmt::format("socket,id=relay{},path={},server=on,wait=off", i,
                             qemu_escape(fmt::format("{}/port{}.sock", o.dir, i))),
                 "-device", fmt::format("virtserialport,bus=relay.0,chardev=relay{},name=labctl.{}", i, i)});
  }

  // Signals go through a signalfd while we wait, so ^C during the boot is ours to handle.
  sigset_t set, old;
  sigemptyset(&set);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&set, s);
  ::sigprocmask(SIG_BLOCK, &set, &old);
  struct Restore {
    sigset_t m;
    ~Restore() { ::sigprocmask(SIG_SETMASK, &m, nullptr); }
  } restore{old};
  Fd sfd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));

  TRY_ASSIGN(pid_t pid, spawn_detached(argv, log.get()));
  GuestInfo g{pid, qemu, kernel.version, o.dir, 0};
  auto record = [&] {
    nlohmann::json j = {{"pid", pid},
                        {"qemu", qemu},
                        {"kernel", kernel.version},
                        {"kernel_image", kernel.image},
                        {"memory_mib", o.memory_mib},
                        {"boot_s", g.boot_s},
                        {"ports", kRelayPorts}};
    return write_text(o.dir + "/vm.json", j.dump(2) + "\n");
  };
  auto kill_it = [&] {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  };
  if (Status st = record(); !st) {
    kill_it();
    return tl::unexpected(st.error());
  }
  const auto deadline = start + std::chrono::seconds(o.boot_timeout_s);
  auto last_progress = start;
  for (;;) {
    pollfd p{sfd.get(), POLLIN, 0};
    ::poll(&p, 1, 50);
    signalfd_siginfo si{};
    if (::read(sfd.get(), &si, sizeof si) == sizeof si) {
      kill_it();
      return fail_errno(fmt::format("interrupted by SIG{} while the micro-VM booted: it was stopped",
                                    sigabbrev_np(static_cast<int>(si.ssi_signo))),
                        EINTR);
    }
    if (::faccessat(iofd.get(), "ready", F_OK, AT_SYMLINK_NOFOLLOW) == 0) break;
    int st = 0;
    if (::waitpid(pid, &st, WNOHANG) == pid) {
      std::string why = read_regular_file(io + "/error", 4096).value_or("");
      while (!why.empty() && why.back() == '\n') why.pop_back();
      return fail(fmt::format("the micro-VM stopped while booting ({}){}",
                              why.empty() ? "qemu exited" : why, guest_log_tail(o.dir)),
                  "run `labctl vm exec --verbose -- true` to see the whole boot");
    }
    if (Clock::now() >= deadline) {
      kill_it();
      return fail_errno(fmt::format("the micro-VM did not boot within {} s and was stopped{}",
                                    o.boot_timeout_s, guest_log_tail(o.dir)),
                        ETIMEDOUT);
    }
    if (o.progress && Clock::now() - last_progress >= std::chrono::seconds(1)) {
      last_progress = Clock::now();
      o.progress(std::chrono::duration<double>(Clock::now() - start).count());
    }
  }
  g.boot_s = std::chrono::duration<double>(Clock::now() - start).count();
  if (Status st = record(); !st) {
    kill_it();
    return tl::unexpected(st.error());
  }
  return g;
}

}  // namespace labctl
