// labctl test [--junit FILE] [--json] [--jobs N] [--timeout S] [--keep-failed] [--vm MODE]
//             FILE|DIR|BUILTIN...
// A set of labs as one test suite, for CI: each lab brought up, checked and always taken
// down, by labctl's own `up`, `check --json` and `down` run as children (so a lab's crash,
// timeout or Ctrl-C is contained in its own processes, and --jobs runs labs side by side).
#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "labctl/base/display.h"
#include "labctl/base/file.h"
#include "labctl/base/interrupt.h"
#include "labctl/checks/checks.h"
#include "labctl/checks/junit.h"
#include "labctl/cli/command.h"
#include "labctl/cli/vm_lab.h"
#include "labctl/kernel/process.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/lab/multihost.h"
#include "labctl/lab/preflight.h"
#include "labctl/model/builtins.h"
#include "labctl/model/diag.h"
#include "labctl/model/hosts.h"
#include "labctl/model/load.h"
#include "labctl/plan/planner.h"

namespace labctl::cli {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct Lab {
  std::string source;  ///< What `up` is given: a file path or a built-in name.
  std::string name;
  std::string skip;  ///< Why it is not run (a kernel feature missing with --vm=never).
  bool in_vm = false;  ///< Runs in the run's one micro-VM (this kernel cannot build it).
};

/// What became of one lab.
struct Outcome {
  std::string status = "not run";  ///< passed, failed, skipped, timeout, interrupted, not run
  std::string output;              ///< up's and check's output, down's when it failed.
  double up_ms = 0, total_ms = 0;
  bool up_ok = false;
  std::optional<CheckReport> report;
  std::string left_up;  ///< --keep-failed: how to enter and remove it.
};

std::string self_exe() {
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("labctl") : p.string();
}

// Every argument as labs: a folder gives its *.toml files (sorted; not its subfolders),
// a file itself, else a built-in name. Unknown names end the run before anything starts.
std::vector<std::string> sources_of(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (const auto& a : args) {
    std::error_code ec;
    if (fs::is_directory(a, ec)) {
      std::vector<std::string> files;
      for (const auto& e : fs::directory_iterator(a, ec))
        if (e.path().extension() == ".toml" && e.is_regular_file(ec)) files.push_back(e.path().string());
      if (files.empty())
        die(Error{"folder " + shown(a) + " holds no .toml file", 0, {}, "give lab files, a folder of them, or built-in names"},
            kExitInvalid);
      std::sort(files.begin(), files.end());
      out.insert(out.end(), files.begin(), files.end());
    } else if (fs::exists(a, ec) || a.find('/') != std::string::npos || a.ends_with(".toml") ||
               find_builtin(a)) {
      out.push_back(a);  // load_topology says what is wrong with it
    } else {
      std::vector<std::string> names;
      for (const auto& b : builtin_topologies()) names.emplace_back(b.name);
      die(Error{"no file, folder or built-in lab named " + shown(a), 0, {},
                topo::did_you_mean(a, names, "built-in labs: " + fmt::format("{}", fmt::join(names, ", ")))},
          kExitInvalid);
    }
  }
  return out;
}

// Loads every lab and says everything wrong at once: invalid files, two labs of one name,
// a lab already up. Exit 2 before anything runs.
std::vector<Lab> load_all(const std::vector<std::string>& sources, const std::string& vm_mode) {
  std::vector<Lab> labs;
  std::map<std::string, std::string> seen;
  bool bad = false;
  for (const auto& src : sources) {
    LoadResult r = load_topology(src);
    for (const auto& d : r.diagnostics)
      if (d.severity == Diagnostic::Severity::Error) std::fprintf(stderr, "%s\n", format_diagnostic(d).c_str());
    if (!r.ok()) {
      bad = true;
      continue;
    }
    const Topology& t = *r.topology;
    if (auto [it, fresh] = seen.emplace(t.name, src); !fresh) {
      std::fprintf(stderr, "labctl: error: %s and %s are both lab %s\n  hint: labs of one run need distinct names\n",
                   shown(it->second).c_str(), shown(src).c_str(), shown(t.name).c_str());
      bad = true;
      continue;
    }
    if (!lab_namespaces(t.name).empty() || vm_hosted(t.name) || find_hosts_record(t.name)) {
      std::fprintf(stderr, "labctl: error: lab %s (%s) is already up\n  hint: labctl test brings each lab up itself: `labctl down %s` first\n",
                   t.name.c_str(), shown(src).c_str(), t.name.c_str());
      bad = true;
      continue;
    }
    Lab lab{src, t.name, {}, false};
    // A lab across hosts is built by its hosts, each checking its own kernel before anything
    // is made (docs/multihost.md): never this machine's micro-VM.
    if (!inside_vm() && !multi_host(t)) {
      if (vm_mode == "always") {
        lab.in_vm = true;
      } else if (Status st = check_kernel_can_build(make_plan(t)); !st) {
        if (vm_mode == "never")
          lab.skip = st.error().message;
        else if (auto no = vm_unavailable())
          lab.skip = st.error().message + "; and the micro-VM cannot stand in: " + *no;
        else
          lab.in_vm = true;
      }
    }
    labs.push_back(std::move(lab));
  }
  if (bad) throw ExitError{kExitInvalid, {}};
  return labs;
}

struct Flags {
  std::string junit, vm_mode = "auto";
  bool json = false, keep_failed = false;
  int jobs = 0;
  double timeout_s = 600;
};

Outcome run_lab(const Lab& lab, const Flags& f, const std::atomic<bool>* stop) {
  Outcome o;
  if (!lab.skip.empty()) {
    o.status = "skipped";
    o.output = lab.skip + "\n";
    return o;
  }
  const std::string self = self_exe();
  const auto start = Clock::now();
  const auto until = start + std::chrono::milliseconds(static_cast<int64_t>(f.timeout_s * 1000));
  auto ms_since = [](Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
  };
  auto ended = [&](const Captured& c) {
    if (c.timed_out) {
      o.status = "timeout";
      o.output += fmt::format("stopped: the lab's {} s (--timeout) ran out\n", f.timeout_s);
    }
    if (c.stopped) {
      o.status = "interrupted";
      o.output += "stopped: interrupted\n";
    }
    return c.timed_out || c.stopped;
  };
  auto up = run_captured({self, "up", "--vm=" + f.vm_mode, lab.source}, until, stop);
  o.up_ms = ms_since(start);
  if (!up) {
    o.status = "failed";
    o.output = up.error().str() + "\n";
  } else {
    o.output = up->out + up->err;
    o.up_ok = up->exit_code == 0 && !up->timed_out && !up->stopped;
    if (!ended(*up) && !o.up_ok) o.status = "failed";
  }
  if (o.up_ok) {
    auto check = run_captured({self, "check", "--json", lab.name}, until, stop);
    if (!check) {
      o.status = "failed";
      o.output += check.error().str() + "\n";
    } else if (ended(*check)) {
      o.output += check->err;
    } else {
      o.output += check->err;
      auto j = nlohmann::json::parse(check->out, nullptr, false);
      auto rep = check_report_from_json(j);
      if (rep) {
        o.output += render_checks(*rep);
        o.report = std::move(*rep);
        o.status = o.report->passed() ? "passed" : "failed";
      } else {
        o.status = "failed";
        o.output += "labctl check gave no report (" + rep.error().message + "): " + check->out + "\n";
      }
    }
  }
  const bool failed = o.status != "passed";
  if (f.keep_failed && failed && o.up_ok && o.status != "interrupted") {
    o.left_up = "left up for inspection: labctl status " + lab.name + "; labctl exec " + lab.name +
                " NODE; remove it with labctl down " + lab.name;
  } else {
    // Always, also after a failed, timed-out or interrupted up (down is idempotent and finds
    // what a killed up left by its marks); never cut short by Ctrl-C.
    auto down = run_captured({self, "down", lab.name}, Clock::now() + std::chrono::minutes(2));
    if (!down || down->exit_code != 0) {
      o.output += "labctl down " + lab.name + " failed: " + (down ? down->out + down->err : down.error().str() + "\n");
      o.status = "failed";
    }
  }
  o.total_ms = ms_since(start);
  return o;
}

// Every lab this kernel cannot build, in one micro-VM for the whole run (one boot, not one
// per lab): `labctl vm exec -- labctl test --vm=never --json ...` there, its JSON read back
// into each lab's outcome. The guest's labs go with the guest.
void run_in_one_vm(const std::vector<const Lab*>& labs, const Flags& f, int jobs, const std::atomic<bool>* stop,
                   std::map<std::string, Outcome>& out) {
  std::vector<std::string> argv = {self_exe(), "vm", "exec", "--", self_exe(), "test", "--vm=never", "--json",
                                   "--jobs", std::to_string(jobs), "--timeout", fmt::format("{}", f.timeout_s)};
  std::vector<std::string> sources;
  for (const Lab* l : labs) {
    std::error_code ec;
    // The guest sees this machine's files at the same paths, from its working directory.
    argv.push_back(fs::exists(l->source, ec) ? fs::absolute(l->source, ec).string() : l->source);
  }
  const double batches = std::ceil(static_cast<double>(labs.size()) / jobs);
  const auto until = Clock::now() + std::chrono::seconds(120) +
                     std::chrono::milliseconds(static_cast<int64_t>(f.timeout_s * 1000 * batches));
  auto c = run_captured(argv, until, stop);
  std::string why;
  if (!c)
    why = c.error().str();
  else if (c->timed_out)
    why = "the micro-VM ran out of time";
  else if (c->stopped)
    why = "interrupted";
  nlohmann::json j = c ? nlohmann::json::parse(c->out, nullptr, false) : nlohmann::json();
  if (why.empty() && (!j.is_object() || !j.contains("labs") || !j["labs"].is_array()))
    why = "the micro-VM gave no report (exit " + std::to_string(c->exit_code) + "): " + c->err;
  for (const Lab* l : labs) {
    Outcome& o = out[l->name];
    o.output = "(in the run's micro-VM)\n";
    if (!why.empty()) {
      o.status = c && c->timed_out ? "timeout" : c && c->stopped ? "interrupted" : "failed";
      o.output += why + "\n";
      continue;
    }
    for (const auto& x : j["labs"]) {
      if (x.value("lab", "") != l->name) continue;
      o.status = x.value("status", "failed");
      o.output += x.value("output", "");
      o.up_ok = x.value("up", false);
      o.up_ms = x.value("up_ms", 0.0);
      o.total_ms = x.value("ms", 0.0);
      if (auto rep = check_report_from_json({{"lab", l->name}, {"checks", x.value("checks", nlohmann::json::array())}}))
        if (o.up_ok) o.report = std::move(*rep);
    }
  }
}

// The `up` of a lab as a test case of its own, so a lab that did not come up is a failed
// case, not a missing one.
CheckReport junit_report(const Lab& lab, const Outcome& o, double timeout_s) {
  CheckReport r;
  r.lab = lab.name;
  CheckResult up;
  up.name = "up";
  up.kind = "up";
  up.expected = "the lab comes up";
  up.passed = o.up_ok;
  up.ms = o.up_ms;
  up.deadline_ms = timeout_s * 1000;
  up.detail = o.up_ok ? "up in " + fmt::format("{:.0f}", o.up_ms) + " ms"
                      : o.status + ": " + o.output.substr(0, 4000);
  r.results.push_back(up);
  if (o.report)
    for (const auto& c : o.report->results) r.results.push_back(c);
  return r;
}

nlohmann::json outcome_json(const Lab& lab, const Outcome& o) {
  nlohmann::json j = {{"lab", lab.name},         {"source", lab.source}, {"status", o.status},
                      {"up", o.up_ok},           {"up_ms", o.up_ms},     {"ms", o.total_ms},
                      {"output", o.output}};
  j["checks"] = o.report ? checks_json(*o.report)["checks"] : nlohmann::json::array();
  if (!o.left_up.empty()) j["left_up"] = o.left_up;
  return j;
}

void setup(CLI::App& app) {
  auto* cmd = app.add_subcommand("test", "Run labs as one test suite: up, check, down each (for CI)");
  cmd->footer(
      "Each lab is brought up, its checks run, and it is always taken down again, also when\n"
      "it fails, times out (--timeout) or the run is interrupted (Ctrl-C): nothing is left\n"
      "unless --keep-failed asks for it. A FOLDER means its *.toml files. Labs run as\n"
      "labctl's own up, check --json and down; each lab's output is printed in one piece\n"
      "when it is done (to stderr with --json, whose document is stdout's only content).\n"
      "Labs needing a kernel feature this host lacks (IPVS, IPIP, netem) all run in one\n"
      "micro-VM for the whole run (--vm=auto); with --vm=never they are reported as\n"
      "skipped, with the reason.\n"
      "Exit status: 0 when every lab that ran passed (skipped ones are named, not failed),\n"
      "1 when any failed, timed out or was interrupted, 2 for invalid input (a bad file, two\n"
      "labs of one name, a lab already up), found before anything runs.\n"
      "Examples: labctl test dr-demo nat-demo tun-demo\n"
      "          labctl test labs/ --junit report.xml --jobs 2");
  static std::vector<std::string> args;
  static Flags f;
  cmd->add_option("labs", args, "Lab files, folders of them, or built-in names")->required();
  cmd->add_option("--junit", f.junit, "Also write a JUnit XML report: a testsuite per lab, a testcase for its up and each check")
      ->type_name("FILE");
  cmd->add_flag("--json", f.json, "Print the whole run as JSON on stdout");
  cmd->add_option("--jobs", f.jobs, "Labs run at once (default: this machine's cores, at most 4)")
      ->check(CLI::Range(1, 64));
  cmd->add_option("--timeout", f.timeout_s, "Seconds each lab may take, up to down (default 600)")
      ->check(CLI::Range(1.0, 86400.0))
      ->type_name("SECONDS");
  cmd->add_flag("--keep-failed", f.keep_failed, "Leave a lab whose checks failed up, and say how to enter and remove it");
  cmd->add_option("--vm", f.vm_mode, "auto, always or never, as for `labctl up`; never: labs this kernel cannot build are skipped")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->capture_default_str();
  cmd->callback([] {
    if (::geteuid() != 0)
      die(Error{"labctl test brings labs up, which needs root", EPERM, {}, "run it as root, e.g. `sudo labctl test ...`"},
          kExitInvalid);
    if (!f.junit.empty()) {
      const fs::path p(f.junit);
      const fs::path dir = p.parent_path().empty() ? fs::path(".") : p.parent_path();
      std::error_code ec;
      if (fs::is_directory(p, ec) || ::access(dir.c_str(), W_OK) != 0)
        die(Error{"cannot write the JUnit file " + f.junit, errno, {}, "give a writable file path"}, kExitInvalid);
    }
    const std::vector<Lab> labs = load_all(sources_of(args), f.vm_mode);
    const int jobs = f.jobs ? f.jobs
                            : static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 4u));
    InterruptGuard interrupt;
    std::vector<Outcome> outcomes(labs.size());
    std::atomic<size_t> next{0};
    std::mutex print;
    FILE* human = f.json ? stderr : stdout;
    const auto start = Clock::now();
    auto show = [&](size_t i) {
      const Outcome& o = outcomes[i];
      std::lock_guard lock(print);
      std::fprintf(human, "== %s (%s) ==\n%s", labs[i].name.c_str(), labs[i].source.c_str(), o.output.c_str());
      if (!o.output.empty() && o.output.back() != '\n') std::fputc('\n', human);
      if (!o.left_up.empty()) std::fprintf(human, "%s\n", o.left_up.c_str());
      const char* verdict = o.status == "passed" ? "PASS" : o.status == "skipped" ? "SKIP" : "FAIL";
      const std::string why = o.status == "timeout" || o.status == "interrupted" ? " (" + o.status + ")" : "";
      std::fprintf(human, "%s %s%s in %.1f s\n\n", verdict, labs[i].name.c_str(), why.c_str(), o.total_ms / 1000);
      std::fflush(human);
    };
    std::vector<size_t> here;
    std::vector<const Lab*> vm_labs;
    for (size_t i = 0; i < labs.size(); ++i)
      labs[i].in_vm ? vm_labs.push_back(&labs[i]) : here.push_back(i);
    auto worker = [&] {
      for (size_t k; (k = next++) < here.size();) {
        const size_t i = here[k];
        if (interrupt.flag()->load()) {
          outcomes[i].status = "interrupted";
          continue;
        }
        outcomes[i] = run_lab(labs[i], f, interrupt.flag());
        show(i);
      }
    };
    std::vector<std::thread> threads;
    if (!vm_labs.empty())
      threads.emplace_back([&] {
        std::map<std::string, Outcome> got;
        run_in_one_vm(vm_labs, f, jobs, interrupt.flag(), got);
        for (size_t i = 0; i < labs.size(); ++i)
          if (labs[i].in_vm) {
            outcomes[i] = got[labs[i].name];
            show(i);
          }
      });
    for (int k = 0; k < std::min<int>(jobs, static_cast<int>(here.size())); ++k) threads.emplace_back(worker);
    for (auto& t : threads) t.join();
    const double secs = std::chrono::duration<double>(Clock::now() - start).count();

    std::map<std::string, int> counts;
    for (const auto& o : outcomes) ++counts[o.status];
    const int bad = static_cast<int>(labs.size()) - counts["passed"] - counts["skipped"];
    std::string summary = fmt::format("labctl test: {} lab{}: {} passed, {} failed, {} skipped", labs.size(),
                                      labs.size() == 1 ? "" : "s", counts["passed"], bad, counts["skipped"]);
    for (const char* s : {"timeout", "interrupted"})
      if (counts[s]) summary += fmt::format(" ({} {})", counts[s], s == std::string("timeout") ? "timed out" : s);
    summary += fmt::format(" in {:.1f} s", secs);
    std::fprintf(human, "%s\n", summary.c_str());
    if (!f.junit.empty()) {
      std::vector<CheckReport> reports;
      for (size_t i = 0; i < labs.size(); ++i)
        if (outcomes[i].status != "skipped") reports.push_back(junit_report(labs[i], outcomes[i], f.timeout_s));
      if (Status st = write_file_atomically(f.junit, checks_junit(reports, "labctl test"), output_file_mode(f.junit)); !st)
        die(st.error(), kExitInvalid);
    }
    if (f.json) {
      nlohmann::json j = {{"passed", bad == 0}, {"seconds", secs}, {"labs", nlohmann::json::array()}};
      for (size_t i = 0; i < labs.size(); ++i) j["labs"].push_back(outcome_json(labs[i], outcomes[i]));
      std::printf("%s\n", json_text(j).c_str());
    }
    if (interrupt.flag()->load()) throw ExitError{130, {}};
    if (bad) throw ExitError{kExitFailure, {}};
  });
}

LABCTL_COMMAND(27, setup);

}  // namespace
}  // namespace labctl::cli
