#include "labctl/cli/vm_lab.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "labctl/base/file.h"
#include "labctl/cli/command.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/lab/state.h"
#include "labctl/model/rules.h"
#include "labctl/vm/guest.h"
#include "labctl/vm/initramfs.h"
#include "labctl/vm/qemu.h"

extern char** environ;

namespace labctl::cli {
namespace fs = std::filesystem;
namespace {

std::string self_exe() {
  std::error_code ec;
  return fs::read_symlink("/proc/self/exe", ec).string();
}

// The guest runs this labctl (and its labagent beside it), installed or not.
std::vector<std::string> guest_env() {
  std::vector<std::string> env;
  // The guest keeps its lab state in its own fresh /run/labctl, never in a host folder
  // it would see (read-only below its overlay) through LABCTL_STATE_DIR.
  for (char** e = environ; *e; ++e)
    if (!std::string_view(*e).starts_with("LABCTL_STATE_DIR=")) env.emplace_back(*e);
  const std::string dir = fs::path(self_exe()).parent_path().string();
  auto it = std::find_if(env.begin(), env.end(), [](const std::string& e) { return e.starts_with("PATH="); });
  const std::string rest = it == env.end() ? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
                                           : it->substr(5);
  if (it != env.end()) env.erase(it);
  env.push_back("PATH=" + dir + ":" + rest);
  return env;
}

std::string cwd_for_guest() {
  std::error_code ec;
  std::string cwd = fs::current_path(ec).string();
  return ec || hidden_in_guest(cwd) ? "/" : cwd;
}

// Commands that handle VM-hosted labs themselves, or are about no running lab.
bool handles_vm_itself(const std::string& cmd) {
  static const std::set<std::string> own = {"up",      "down",     "status",     "ls",
                                            "vm",      "list",     "validate",   "explain",
                                            "graph",   "doctor",   "completion", "__complete", "test"};
  return own.contains(cmd) || cmd.starts_with("-");
}

}  // namespace

std::string lab_vm_dir(const std::string& lab) { return state_dir(lab) + "/vm"; }

bool inside_vm() {
  const char* v = std::getenv("LABCTL_IN_VM");
  return v && *v;
}

bool vm_hosted(const std::string& lab) {
  if (inside_vm() || topo::bad_lab_name(lab)) return false;
  std::error_code ec;
  return fs::is_directory(lab_vm_dir(lab), ec);
}

std::vector<std::string> vm_hosted_labs() {
  std::vector<std::string> out;
  if (inside_vm()) return out;
  for (const auto& l : labs_with_state())
    if (vm_hosted(l)) out.push_back(l);
  return out;
}

int relay_to_lab(const std::string& lab, const std::vector<std::string>& args, std::string* capture,
                 int timeout_s, bool with_stdin) {
  RelayRequest req;
  req.argv = args;
  req.cwd = cwd_for_guest();
  req.env = guest_env();
  req.tty = with_stdin && !capture && ::isatty(STDIN_FILENO) == 1 && ::isatty(STDOUT_FILENO) == 1;
  RelayIo io;
  io.in = with_stdin ? STDIN_FILENO : -1;
  io.capture = capture;
  io.timeout_s = timeout_s;
  auto r = relay_run(guest_ports(lab_vm_dir(lab)), req, io);
  if (!r) {
    Error e = r.error();
    e.context("lab " + lab + " (in its micro-VM)");
    if (e.errnum == ECONNRESET || e.errnum == ECONNREFUSED || e.errnum == ENOENT)
      e.hint = "its micro-VM is not running: `labctl down " + lab + "` removes what is left";
    std::fprintf(stderr, "labctl: error: %s\n", e.str().c_str());
    return e.errnum == EINTR ? 130 : kExitFailure;
  }
  return *r;
}

namespace {
std::vector<std::string>& saved_args() {
  static std::vector<std::string> args;
  return args;
}
}  // namespace

const std::vector<std::string>& command_line_args() { return saved_args(); }

std::optional<std::string> lab_argument(const CLI::App& app, const std::vector<std::string>& args) {
  if (args.empty()) return std::nullopt;
  const CLI::App* cmd = nullptr;
  try {
    cmd = app.get_subcommand(args[0]);
  } catch (const CLI::OptionNotFound&) {
    return std::nullopt;
  }
  // Every command that acts on a running lab takes it as its first positional argument.
  for (size_t i = 1; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--") break;
    if (!a.starts_with("-") || a == "-") return a;
    if (a.find('=') != std::string::npos) continue;  // --opt=value
    const CLI::Option* opt = cmd->get_option_no_throw(a);
    if (opt && opt->get_items_expected_max() > 0)
      i += static_cast<size_t>(std::max(1, opt->get_items_expected_min()));
  }
  return std::nullopt;
}

namespace {

// `labctl measure LAB ... --svg FILE` of a lab in its micro-VM: what the guest writes is gone
// at its power-off (its root is an overlay on a tmpfs), so the picture is drawn in the
// guest under a name in its /tmp and copied out over the relay (`exec LAB NODE -- cat`) to
// FILE here, written as any file labctl writes (base/file.h). Without gnuplot the guest
// leaves the data and the script instead: those are copied to FILE.dat and FILE.gp, the
// script's paths changed to them.
int relay_measure_with_svg(const std::string& lab, std::vector<std::string> args, size_t value_at,
                           const std::string& file) {
  char tag[17];
  std::snprintf(tag, sizeof tag, "%08x%08x", static_cast<unsigned>(std::rand()), static_cast<unsigned>(::getpid()));
  const std::string guest = std::string("/tmp/labctl-measure-") + tag + ".svg";
  args[value_at] = args[value_at].starts_with("--svg=") ? "--svg=" + guest : guest;
  args.push_back("--svg-shown-as=" + file);
  const int rc = relay_to_lab(lab, args, nullptr, 0, true);
  std::string status;
  if (relay_to_lab(lab, {"status", lab, "--json"}, &status, 60) != 0) return rc ? rc : kExitFailure;
  std::string node;
  try {
    auto j = nlohmann::json::parse(status);
    if (!j["nodes"].empty()) node = j["nodes"][0]["name"].get<std::string>();
  } catch (const nlohmann::json::exception&) {
  }
  if (node.empty()) return rc ? rc : kExitFailure;
  auto fetch = [&](const std::string& from, std::string& text) {
    return relay_to_lab(lab, {"exec", lab, node, "--", "cat", from}, &text, 60) == 0;
  };
  auto put = [&](const std::string& to, const std::string& text) {
    if (Status st = write_text(to, text, output_file_mode(to)); !st) {
      std::fprintf(stderr, "labctl: error: %s\n", st.error().str().c_str());
      return false;
    }
    return true;
  };
  std::string svg, data, script;
  bool ok = true;
  if (fetch(guest, svg)) {
    ok = put(file, svg);
  } else if (fetch(guest + ".dat", data) && fetch(guest + ".gp", script)) {
    for (size_t at = script.find(guest); at != std::string::npos; at = script.find(guest, at + file.size()))
      script.replace(at, guest.size(), file);
    ok = put(file + ".dat", data) && put(file + ".gp", script);
  }
  (void)relay_to_lab(lab, {"exec", lab, node, "--", "rm", "-f", guest, guest + ".dat", guest + ".gp"}, &data, 60);
  return rc ? rc : ok ? 0 : kExitFailure;
}

// `labctl capture LAB NODE IF -w FILE` of a lab in its micro-VM: the guest writes the pcap
// to its standard output (`-w -`), which comes back over the relay and is written to FILE
// here (the guest's own files vanish at its power-off).
int relay_capture_to_file(const std::string& lab, std::vector<std::string> args, size_t value_at,
                          const std::string& file) {
  const std::string& a = args[value_at];
  args[value_at] = a.starts_with("--write=") ? "--write=-" : a.starts_with("-w") && a.size() > 2 ? "-w-" : "-";
  std::string pcap;
  const int rc = relay_to_lab(lab, args, &pcap, 0, false);
  if (pcap.empty()) return rc;
  if (Status st = write_text(file, pcap, output_file_mode(file)); !st) {
    std::fprintf(stderr, "labctl: error: %s\n", st.error().str().c_str());
    return kExitFailure;
  }
  return rc;
}

}  // namespace

std::optional<int> relay_if_vm_hosted(const CLI::App& app, int argc, char** argv) {
  if (argc > 1) saved_args().assign(argv + 1, argv + argc);
  if (argc < 3 || inside_vm() || handles_vm_itself(argv[1])) return std::nullopt;
  for (int i = 2; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--") break;
    if (a == "-h" || a == "--help") return std::nullopt;
  }
  auto lab = lab_argument(app, saved_args());
  if (!lab || !vm_hosted(*lab)) return std::nullopt;
  const auto& args = saved_args();
  if (args[0] == "measure")
    for (size_t i = 1; i < args.size() && args[i] != "--"; ++i) {
      if (args[i] == "--svg" && i + 1 < args.size()) return relay_measure_with_svg(*lab, args, i + 1, args[i + 1]);
      if (args[i].starts_with("--svg=")) return relay_measure_with_svg(*lab, args, i, args[i].substr(6));
    }
  if (args[0] == "capture")
    for (size_t i = 1; i < args.size() && args[i] != "--"; ++i) {
      const std::string& a = args[i];
      if ((a == "-w" || a == "--write") && i + 1 < args.size() && args[i + 1] != "-")
        return relay_capture_to_file(*lab, args, i + 1, args[i + 1]);
      if (a.starts_with("--write=") && a != "--write=-") return relay_capture_to_file(*lab, args, i, a.substr(8));
      if (a.starts_with("-w") && !a.starts_with("--") && a.size() > 2 && a != "-w-")
        return relay_capture_to_file(*lab, args, i, a.substr(2));
    }
  return relay_to_lab(*lab, args, nullptr, 0, true);
}

std::optional<std::string> vm_unavailable() {
  if (find_program("qemu-system-x86_64").empty())
    return "qemu-system-x86_64 is not installed (package qemu-system-x86)";
  if (auto k = resolve_vm_kernel(kernel_query_from_env()); !k) return k.error().message;
  if (Status st = check_static_busybox("/bin/busybox"); !st) return st.error().message;
  return std::nullopt;
}

std::string vm_summary(const std::string& lab, bool* alive) {
  const std::string dir = lab_vm_dir(lab);
  auto info = read_guest_info(dir);
  const bool running = running_guest(dir).has_value();
  if (alive) *alive = running;
  if (!info) return running ? "micro-VM booting" : "micro-VM never finished booting";
  if (!running)
    return fmt::format("micro-VM (qemu pid {}) is not running any more: `labctl down {}` cleans up",
                       info->pid, lab);
  return fmt::format("micro-VM, guest kernel {}, qemu pid {}", info->kernel_version, info->pid);
}

int up_in_vm(const Topology& t, const std::vector<std::string>& args, bool replace,
             const std::string& why) {
  const std::string& lab = t.name;
  if (Status st = check_privileges(); !st) die(st.error());
  if (!lab_namespaces(lab).empty()) {
    if (!replace)
      die(Error{"lab " + lab + " is already up (on this kernel)", 0, {},
                "`labctl down " + lab + "` first, or up --replace"});
    if (auto r = lab_down(lab); !r) die(r.error());
  }
  auto lock = LabLock::acquire(lab);
  if (!lock) die(lock.error());
  if (vm_hosted(lab)) {
    if (!replace)
      die(Error{"lab " + lab + " is already up (in its micro-VM)", 0, {},
                "`labctl down " + lab + "` first, or up --replace"});
    lock = tl::unexpected(Error{});  // down_vm takes the lock itself
    bool failed = false;
    down_vm(lab, failed);
    if (failed) throw ExitError{kExitFailure, {}};
    lock = LabLock::acquire(lab);
    if (!lock) die(lock.error());
  }
  if (!why.empty()) std::fprintf(stderr, "labctl: %s: lab %s runs in a micro-VM (docs/vm.md)\n", why.c_str(), lab.c_str());
  if (Status st = make_state_dir(lab); !st) die(st.error());
  const std::string dir = lab_vm_dir(lab);
  auto cleanup = [&] {
    stop_guest(dir);
    (void)remove_state_dir(lab);
    lock->remove();
  };
  GuestOptions o;
  o.dir = dir;
  o.name = "labctl-lab-" + lab;
  o.self_exe = self_exe();
  o.env = guest_env();
  o.kernel = kernel_query_from_env();
  const bool tty = ::isatty(STDERR_FILENO) == 1;
  std::fprintf(stderr, "labctl: booting the micro-VM for %s%s", lab.c_str(), tty ? "" : "\n");
  o.progress = [&](double s) {
    if (tty) std::fprintf(stderr, "\rlabctl: booting the micro-VM for %s ... %.0f s", lab.c_str(), s);
  };
  auto g = boot_guest(o);
  if (tty) std::fprintf(stderr, "\n");
  if (!g) {
    cleanup();
    die(g.error(), g.error().errnum == EINTR ? 130 : kExitFailure);
  }
  std::fprintf(stderr, "labctl: micro-VM up in %.1f s (guest kernel %s, qemu pid %d)\n", g->boot_s,
               g->kernel_version.c_str(), g->pid);
  std::fflush(stderr);
  int rc = relay_to_lab(lab, args, nullptr, 0, true);
  if (rc != 0) {
    // up --check fails with the lab up; a failed up leaves no lab and so no guest.
    std::string out;
    if (relay_to_lab(lab, {"status", lab, "--json"}, &out, 60) != 0) {
      cleanup();
      std::fprintf(stderr, "labctl: the micro-VM of %s was stopped: the lab did not come up\n",
                   lab.c_str());
    }
  }
  return rc;
}

bool down_vm(const std::string& lab, bool& failed) {
  const std::string dir = lab_vm_dir(lab);
  auto lock = LabLock::acquire(lab);
  if (!lock) {
    std::fprintf(stderr, "labctl: error: %s\n", lock.error().str().c_str());
    failed = true;
    return true;
  }
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return false;
  auto info = read_guest_info(dir);
  if (running_guest(dir)) {
    // The guest's down, so its output reads as a native one; the guest goes anyway.
    int rc = relay_to_lab(lab, {"down", lab}, nullptr, 120);
    if (rc != 0) {
      std::fprintf(stderr, "labctl: the guest's down of %s failed (%d); stopping its micro-VM anyway\n",
                   lab.c_str(), rc);
      failed = true;
    }
  }
  const bool stopped = stop_guest(dir);
  if (running_guest(dir)) {
    std::fprintf(stderr, "labctl: error: the micro-VM of %s (qemu) would not stop; its state is kept\n",
                 lab.c_str());
    failed = true;
    return true;
  }
  if (Status st = remove_state_dir(lab); !st) {
    std::fprintf(stderr, "labctl: error: %s\n", st.error().str().c_str());
    failed = true;
  }
  lock->remove();
  if (stopped)
    std::printf("micro-VM of lab %s stopped\n", lab.c_str());
  else
    std::printf("lab %s: its micro-VM%s had already stopped; removed what it left on this host\n",
                lab.c_str(), info ? fmt::format(" (qemu pid {})", info->pid).c_str() : "");
  return true;
}

}  // namespace labctl::cli
