#include "labctl/lab/lifecycle.h"

#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "labctl/base/file.h"
#include "labctl/base/interrupt.h"
#include "labctl/kernel/netns.h"
#include "labctl/kernel/process.h"
#include "labctl/kernel/rtnl.h"
#include "labctl/lab/apply.h"
#include "labctl/lab/netlink_executor.h"
#include "labctl/lab/preflight.h"
#include "labctl/lab/state.h"
#include "labctl/plan/agent.h"
#include "labctl/plan/render.h"

namespace labctl {
namespace {

using namespace std::chrono_literals;
constexpr auto kStopGrace = 2s;

bool has_cap(const __user_cap_data_struct* d, int cap) {
  return d[cap / 32].effective & (1u << (cap % 32));
}

// A name under /run/netns that is an empty mode-000 file, not a mounted namespace: what a
// SIGKILL between "create the file" and "bind-mount the namespace" leaves (labctl's
// create_netns and iproute2's `ip netns add` both work that way). Not a namespace at all;
// `ip netns del` removes such files too.
bool is_unmounted_placeholder(const std::string& ns) {
  struct stat file{}, dir{};
  return ::lstat(netns_path(ns).c_str(), &file) == 0 && ::stat(kNetnsRunDir, &dir) == 0 &&
         file.st_dev == dir.st_dev && S_ISREG(file.st_mode) && file.st_size == 0 &&
         (file.st_mode & 07777) == 0;
}

// "dr-demo-rs1" is a name of lab "dr" (node "demo-rs1") and of lab "dr-demo" alike. A lab
// whose up is running holds its lock, so a placeholder one of the others may be making
// right now is left to it.
bool maybe_being_made_by_another_lab(const std::string& name, const std::string& lab) {
  for (std::size_t k = name.find('-'); k != std::string::npos; k = name.find('-', k + 1)) {
    const std::string owner = name.substr(0, k);
    if (owner != lab && LabLock::held_by_someone(owner)) return true;
  }
  return false;
}

// Removes the placeholders among the lab's names; the caller holds the lab's lock. One that
// is another tool's `ip netns add` in flight is mounted within microseconds, so only files
// still unmounted after a short pause go (the pause is paid only when there are some).
std::size_t remove_placeholders(const std::string& lab, const std::set<std::string>& journaled) {
  std::vector<std::string> found;
  for (const auto& ns : list_netns())
    if (ns.rfind(lab + "-", 0) == 0 && is_unmounted_placeholder(ns) &&
        (journaled.contains(ns) || !maybe_being_made_by_another_lab(ns, lab)))
      found.push_back(ns);
  if (found.empty()) return 0;
  std::this_thread::sleep_for(20ms);
  std::size_t removed = 0;
  for (const auto& ns : found)
    if (is_unmounted_placeholder(ns) && ::unlink(netns_path(ns).c_str()) == 0) ++removed;
  return removed;
}

std::set<std::string> journaled_netns(const std::string& lab) {
  std::set<std::string> out;
  for (const auto& e : Journal::read(lab))
    if (e.kind == "netns") out.insert(e.name);
  return out;
}

// A switch stretched across hosts has a VXLAN device whose VNI stays taken on this host until
// the kernel's deferred cleanup of its namespace has run, which an `up` right after a `down`
// (or `up --replace`) can beat: it then fails with EEXIST. Deleted first, synchronously, the
// VNI is free when down returns. Only a part of a lab across hosts has one; a lab whose state
// is gone may be one, so its namespaces are looked at too.
std::string delete_vxlan_devices(const std::string& lab, const std::vector<std::string>& namespaces) {
  std::error_code ec;
  if (std::filesystem::exists(state_dir(lab), ec) && !std::filesystem::exists(state_dir(lab) + "/part.json", ec))
    return {};
  std::string problems;
  for (const auto& ns : namespaces) {
    auto fd = open_netns(ns);
    if (!fd) continue;
    Status st = run_in_netns(fd->get(), [&]() -> Status {
      TRY_ASSIGN(Rtnl rtnl, Rtnl::open(ns));
      TRY_ASSIGN(auto links, rtnl.links());
      for (const auto& l : links)
        if (l.kind == "vxlan") TRY(rtnl.delete_link(l.name));
      return {};
    });
    if (!st) problems += "\n  " + st.error().str();
  }
  return problems;
}

Result<DownReport> down_locked(const std::string& lab) {
  DownReport report;
  std::error_code ec;
  report.had_state = std::filesystem::exists(state_dir(lab), ec) ||
                     std::filesystem::exists(script_dir(lab), ec);
  const auto namespaces = lab_namespaces(lab);
  std::vector<std::string> paths;
  for (const auto& ns : namespaces) paths.push_back(netns_path(ns));
  // Processes keep a namespace alive after it is unmounted: stop them all first.
  stop_processes_in_netns(paths, kStopGrace);
  std::string problems = delete_vxlan_devices(lab, namespaces);
  for (const auto& ns : namespaces) {
    if (Status st = delete_netns(ns); !st)
      problems += "\n  " + st.error().str();
    else
      ++report.namespaces;
  }
  report.placeholders = remove_placeholders(lab, journaled_netns(lab));
  report.unmarked = unmarked_namespaces(lab);
  if (Status st = remove_state_dir(lab); !st) problems += "\n  " + st.error().str();
  // The --dry-run script's agent pids and logs (plan.h): the lab's too, and gone with it.
  if (std::filesystem::remove_all(script_dir(lab), ec); ec)
    problems += "\n  remove " + script_dir(lab) + ": " + ec.message();
  if (!problems.empty()) return fail("down " + lab + " left something behind:" + problems);
  return report;
}

// Fails, before anything is made, when a namespace the plan would create exists already
// (another lab's, or one nobody marked): the kernel's bare EEXIST would say neither.
Status check_names_free(const Plan& plan) {
  std::vector<std::string> taken;
  for (const auto& s : plan.steps) {
    const auto* ns = std::get_if<step::CreateNetns>(&s.step);
    if (!ns || ::access(netns_path(ns->ns).c_str(), F_OK) != 0) continue;
    const auto owner = lab_of_mark(read_netns_mark(ns->ns));
    taken.push_back(ns->ns + (owner ? " (lab " + *owner + "'s)"
                                    : " (no labctl mark: made by hand or by a script)"));
  }
  if (taken.empty()) return {};
  std::string list;
  for (const auto& t : taken) list += "\n  " + t;
  return fail("lab " + plan.lab + " cannot be made: " + std::to_string(taken.size()) +
                  " of its namespaces exist already:" + list,
              "take that lab down, remove a leftover with `ip netns del NAME`, or give this "
              "lab another name");
}

}  // namespace

Status check_privileges() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capget, &hdr, data) != 0) return fail_errno("read capabilities", errno);
  if (!has_cap(data, CAP_NET_ADMIN) || !has_cap(data, CAP_SYS_ADMIN))
    return fail("labctl needs CAP_NET_ADMIN and CAP_SYS_ADMIN to build labs",
                "run it as root, e.g. `sudo labctl ...`");
  return {};
}

namespace {

// The marks of the named namespaces, read on two threads: each read enters the namespace
// and asks the kernel for lo (~0.1 ms), which adds up for a lab of a thousand nodes.
std::vector<std::string> read_marks(const std::vector<std::string>& names) {
  std::vector<std::string> marks(names.size());
  auto work = [&](size_t first) {
    for (size_t i = first; i < names.size(); i += 2) marks[i] = read_netns_mark(names[i]);
  };
  if (names.size() < 64) {
    work(0);
    work(1);
    return marks;
  }
  std::thread other(work, 1);
  work(0);
  other.join();
  return marks;
}

}  // namespace

std::vector<std::string> lab_namespaces(const std::string& lab) {
  const std::string prefix = lab + "-", mark = netns_mark(lab);
  std::vector<std::string> candidates, out;
  for (const auto& ns : list_netns())
    if (ns.rfind(prefix, 0) == 0) candidates.push_back(ns);
  const auto marks = read_marks(candidates);
  for (size_t i = 0; i < candidates.size(); ++i)
    if (marks[i] == mark) out.push_back(candidates[i]);
  return out;
}

std::vector<std::string> unmarked_namespaces(const std::string& lab) {
  const std::string prefix = lab + "-";
  std::vector<std::string> candidates, out;
  for (const auto& ns : list_netns())
    if (ns.rfind(prefix, 0) == 0 && !is_unmounted_placeholder(ns)) candidates.push_back(ns);
  const auto marks = read_marks(candidates);
  for (size_t i = 0; i < candidates.size(); ++i)
    if (!lab_of_mark(marks[i])) out.push_back(candidates[i]);
  return out;
}

std::vector<std::string> running_labs() {
  std::set<std::string> labs;
  for (const auto& l : labs_with_state()) labs.insert(l);
  // Labs across hosts brought up from here, whether or not this machine has a part.
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(state_root() + "/hosts", ec))
    if (e.path().extension() == ".json")
      if (std::string l = e.path().stem().string(); check_lab_name(l)) labs.insert(l);
  for (const auto& ns : list_netns()) {
    std::string mark = read_netns_mark(ns);
    if (auto owner = lab_of_mark(mark)) labs.insert(*owner);
  }
  return {labs.begin(), labs.end()};
}

namespace {

// Bring-up and teardown switch namespaces with NetnsGuard (cheap: no thread per step);
// they run on a thread of their own so the caller's thread never changes namespace.
Status on_own_thread(const std::function<Status()>& fn) {
  Status st;
  std::thread worker([&] { st = fn(); });
  worker.join();
  return st;
}

// `interrupted`: a signal arrived (InterruptGuard): stop between steps and roll back.
Status up_on_this_thread(const Topology& t, const Plan& plan, const UpOptions& opts,
                         const std::atomic<bool>& interrupted) {
  TRY_ASSIGN(LabLock lock, LabLock::acquire(t.name));
  if (!lab_namespaces(t.name).empty()) {
    if (!opts.replace)
      return fail("lab " + t.name + " is already up",
                  "`labctl down " + t.name + "` first, or `labctl up --replace`");
    TRY(down_locked(t.name));
  }
  // A SIGKILLed up of this lab may have left placeholders under its names.
  (void)remove_placeholders(t.name, journaled_netns(t.name));
  TRY(check_names_free(plan));
  // A kernel that cannot finish the lab (no IPVS, a scheduler or IPIP missing) is told so
  // before the first step, not after 47 of 52 and a rollback.
  if (opts.preflight) TRY(check_kernel_can_build(plan));
  // State left by an up that died before making anything is stale: start afresh.
  TRY(remove_state_dir(t.name));
  TRY(make_state_dir(t.name));
  TRY_ASSIGN(Journal journal, Journal::open(t.name));
  if (interrupted) {
    (void)remove_state_dir(t.name);
    return fail("interrupted", "nothing of the lab was left behind");
  }

  NetlinkExecutor real(t.name, &journal, find_labagent());
  std::unique_ptr<Executor> wrapped = opts.wrap_executor ? opts.wrap_executor(real) : nullptr;
  ApplyOptions ao;
  ao.cancel = &interrupted;
  ao.on_step = opts.on_step;
  // The source (which `labctl check` reads back) and the resolved lab (every step with its
  // namespace, fields and shell equivalent), written while the lab is built: rendering
  // the plan takes ~0.5 ms, as long as everything else before the first step together.
  Status written;
  std::jthread writer([&] {
    std::ostringstream json;
    write_plan_json(json, plan);
    written = write_text(state_dir(t.name) + "/topology.toml", opts.source_text);
    if (written) written = write_text(state_dir(t.name) + "/plan.json", json.str());
    for (const auto& [name, text] : opts.state_files)
      if (written) written = write_text(state_dir(t.name) + "/" + name, text);
  });
  Status st = apply_plan(plan, wrapped ? *wrapped : real, ao);
  writer.join();
  // A lab whose state cannot be kept could not be checked or edited later: roll it back too.
  if (st && !written) {
    (void)down_locked(t.name);
    st = written;
  }
  if (!st) {
    (void)remove_state_dir(t.name);
    lock.remove();
    return st;
  }
  return {};
}

}  // namespace

Status lab_up(const Topology& t, const Plan& plan, const UpOptions& opts) {
  TRY(check_lab_name(t.name));
  // From here on a signal means "roll back", never "die half-way".
  InterruptGuard guard;
  TRY(check_privileges());
  return on_own_thread([&] { return up_on_this_thread(t, plan, opts, *guard.flag()); });
}

Result<DownReport> lab_down(const std::string& lab) {
  TRY(check_lab_name(lab));
  TRY(check_privileges());
  Result<DownReport> report;
  Status st = on_own_thread([&]() -> Status {
    TRY_ASSIGN(LabLock lock, LabLock::acquire(lab));
    report = down_locked(lab);
    if (report) lock.remove();
    return {};
  });
  if (!st) return tl::unexpected(st.error());
  return report;
}

}  // namespace labctl
