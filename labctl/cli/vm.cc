// `labctl vm exec [options] -- CMD...`: the CLI side of labctl/vm/qemu.h.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <sstream>

#include "labctl/cli/command.h"
#include "labctl/vm/qemu.h"
#include "labctl/vm/guest.h"
#include "labctl/vm/relay.h"

extern char** environ;

namespace labctl::cli {
namespace {

inline constexpr int kExitTimeout = 124;     ///< as timeout(1)
inline constexpr int kExitInterrupted = 130;  ///< as a shell after ^C

// `labctl vm exec -- labctl up dr-demo` must run this labctl (and, next to it, its
// labagent) in the guest even when it is not installed: put its directory first on the
// guest's PATH unless PATH has it already.
void with_own_dir_on_path(std::vector<std::string>& env) {
  std::error_code ec;
  const std::string dir = std::filesystem::read_symlink("/proc/self/exe", ec).parent_path().string();
  if (ec || dir.empty()) return;
  auto it = std::find_if(env.begin(), env.end(), [](const std::string& e) { return e.starts_with("PATH="); });
  if (it == env.end()) {
    env.push_back("PATH=" + dir + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    return;
  }
  std::istringstream dirs(it->substr(5));
  for (std::string d; std::getline(dirs, d, ':');)
    if (d == dir) return;
  *it = "PATH=" + dir + ":" + it->substr(5);
}

void setup_vm(CLI::App& app) {
  auto* vm = app.add_subcommand("vm", "Run commands in a throwaway micro-VM whose kernel has "
                                      "IPVS and IPIP (see docs/vm.md)");
  vm->require_subcommand(1);
  auto* exec = vm->add_subcommand(
      "exec",
      "Run CMD as root in a QEMU guest booted over this machine's root file system\n"
      "(read-only, with a throwaway tmpfs overlay). CMD runs in the current directory with\n"
      "the current environment; its output streams back and its exit status becomes\n"
      "labctl's. Kernel: --kernel, else $LABCTL_VM_KERNEL, else the newest one\n"
      "scripts/fetch-vm-kernel.sh cached under /var/cache/labctl/kernel.");
  auto opts = std::make_shared<VmOptions>();
  exec->add_option("--kernel", opts->kernel.image,
                   "Kernel image (bzImage) to boot, e.g. /boot/vmlinuz-$(uname -r)");
  exec->add_option("--modules", opts->kernel.modules,
                   "That kernel's modules tree (/lib/modules/VERSION); inferred from the "
                   "kernel's version when omitted");
  exec->add_option("--timeout", opts->timeout_s,
                   "Kill the guest and fail (exit 124) after this many seconds; 0: no limit")
      ->check(CLI::NonNegativeNumber);
  exec->add_option("--memory", opts->memory_mib, "Guest memory in MiB (also bounds its tmpfs)")
      ->check(CLI::Range(128, 65536))
      ->capture_default_str();
  exec->add_flag("--kvm", opts->kvm,
                 "Use KVM instead of software emulation (fast where /dev/kvm works)");
  exec->add_flag("-v,--verbose", opts->verbose,
                 "Show the guest console (kernel log) and timings on stderr");
  exec->add_option("--preload", opts->preload,
                   "Modules to load before CMD runs (ip_vs, so /proc/net/ip_vs exists; lblc and lblcr,\n"
                   "whose on-demand loading can deadlock against namespace cleanup)")
      ->delimiter(',')
      ->capture_default_str();
  exec->add_option("cmd", opts->argv, "The command and its arguments (after --)")->required();
  exec->callback([opts] {
    VmOptions o = *opts;
    auto env_kernel = kernel_query_from_env();
    o.kernel.env_image = env_kernel.env_image;
    o.kernel.env_modules = env_kernel.env_modules;
    for (char** e = environ; *e; ++e) o.env.emplace_back(*e);
    with_own_dir_on_path(o.env);
    auto r = vm_exec(o);
    if (!r) {
      int code = r.error().errnum == ETIMEDOUT ? kExitTimeout
                 : r.error().errnum == EINTR   ? kExitInterrupted
                                               : kExitFailure;
      die(r.error(), code);
    }
    if (*r != 0) throw ExitError{*r, {}};
  });

  // The guest side of labs hosted in a micro-VM (vm/relay.h): the guest's init runs it.
  auto* serve = vm->add_subcommand("serve", "Serve the relay ports inside a lab's micro-VM");
  serve->group("");  // hidden: only the guest's init runs it
  static std::string ready;
  serve->add_option("--ready", ready, "File to create once every port is served");
  serve->callback([] {
    std::vector<std::string> ports;
    for (int i = 0; i < kRelayPorts; ++i) ports.push_back("labctl." + std::to_string(i));
    std::error_code ec;
    const std::string self = std::filesystem::read_symlink("/proc/self/exe", ec).string();
    if (Status st = serve_relay(ports, self, ready); !st) die(st.error());
  });
}

}  // namespace

LABCTL_COMMAND(80, setup_vm);

}  // namespace labctl::cli
