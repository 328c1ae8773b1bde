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
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

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
Result<pid_t> spawn_detached(const std::vector<std::string>& argv, const std::string& log) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  Fd out(::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!out) return fail_errno("create " + log, errno);
  pid_t pid = ::fork();
  if (pid < 0) return fail_errno("fork", errno);
  if (pid == 0) {
    ::setsid();
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    int null = ::open("/dev/null", O_RDWR);
    ::dup2(null, 0);
    ::dup2(out.get(), 1);
    ::dup2(out.get(), 2);
    // Nothing of labctl's may stay open in qemu (a caller's pipe would never see its end).
    ::syscall(SYS_close_range, 3U, ~0U, 0U);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return pid;
}

bool cmdline_names(pid_t pid, const std::string& needle) {
  std::string c = read_text("/proc/" + std::to_string(pid) + "/cmdline");
  return c.find(needle) != std::string::npos;
}

}  // namespace

std::vector<RelayPort> guest_ports(const std::string& dir) {
  std::vector<RelayPort> out;
  for (int i = 0; i < kRelayPorts; ++i)
    out.push_back({fmt::format("{}/port{}.sock", dir, i), fmt::format("{}/port{}.lock", dir, i)});
  return out;
}

std::vector<pid_t> guest_processes(const std::string& dir) {
  // Every socket path of ours is "DIR/portN.sock": a qemu naming it is DIR's guest.
  const std::string needle = dir + "/port0.sock";
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const std::string n = e.path().filename();
    if (n.empty() || n.find_first_not_of("0123456789") != std::string::npos) continue;
    pid_t pid = std::stoi(n);
    if (pid != ::getpid() && cmdline_names(pid, needle)) out.push_back(pid);
  }
  return out;
}

size_t stop_guest(const std::string& dir, int grace_ms) {
  auto pids = guest_processes(dir);
  for (pid_t p : pids) ::kill(p, SIGTERM);
  const auto until = Clock::now() + std::chrono::milliseconds(grace_ms);
  while (!guest_processes(dir).empty() && Clock::now() < until) {
    for (pid_t p : pids) ::waitpid(p, nullptr, WNOHANG);  // when qemu is our own child
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  for (pid_t p : guest_processes(dir)) {
    ::kill(p, SIGKILL);
    ::waitpid(p, nullptr, WNOHANG);
  }
  for (int i = 0; i < 40 && !guest_processes(dir).empty(); ++i) {
    for (pid_t p : pids) ::waitpid(p, nullptr, WNOHANG);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return pids.size();
}

std::string guest_log_tail(const std::string& dir, size_t n) {
  return last_lines(read_text(dir + "/qemu.log"), 5, "qemu| ") +
         last_lines(read_text(dir + "/console.log"), n, "console| ") +
         last_lines(read_text(dir + "/io/stderr"), 5, "serve| ");
}

Result<GuestInfo> read_guest_info(const std::string& dir) {
  std::string text = read_text(dir + "/vm.json");
  if (text.empty()) return fail("no " + dir + "/vm.json");
  try {
    auto j = nlohmann::json::parse(text);
    GuestInfo g;
    g.pid = j.at("pid").get<pid_t>();
    g.kernel_version = j.at("kernel").get<std::string>();
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
  if (::mkdir(io.c_str(), 0777) != 0) return fail_errno("create " + io, errno);
  ::chmod(io.c_str(), 0777);  // 9p with security_model=none acts as us
  TRY(write_text(io + "/cmd.sh",
                 command_script({o.self_exe, "vm", "serve", "--ready",
                                 std::string(kGuestIoDir) + "/ready"},
                                "/", o.env)));
  TRY(write_text(o.dir + "/console.log", ""));

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

  TRY_ASSIGN(pid_t pid, spawn_detached(argv, o.dir + "/qemu.log"));
  GuestInfo g{pid, kernel.version, o.dir, 0};
  auto record = [&] {
    nlohmann::json j = {{"pid", pid},
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
    if (fs::exists(io + "/ready")) break;
    int st = 0;
    if (::waitpid(pid, &st, WNOHANG) == pid) {
      std::string why = read_text(io + "/error");
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
