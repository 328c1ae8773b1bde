// labctl check LAB [CHECK...] [--json] [--junit FILE] [--timeout SECONDS]
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "labctl/checks/checks.h"
#include "labctl/checks/junit.h"
#include "labctl/base/file.h"
#include "labctl/cli/check_run.h"
#include "labctl/cli/command.h"
#include "labctl/cli/load.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/lab/multihost.h"
#include "labctl/lab/state.h"
#include "labctl/model/hosts.h"
#include "labctl/model/check_spec.h"
#include "labctl/plan/exercise.h"

namespace labctl::cli {
namespace {

using std::chrono::milliseconds;

// Shows a check that runs longer than a second: on a terminal one line rewritten in place,
// in a pipe (CI logs) a plain line now and then.
class Progress {
 public:
  explicit Progress(bool enabled) : enabled_(enabled), tty_(::isatty(STDOUT_FILENO) == 1) {}
  void update(const Check& c, const std::string& what, milliseconds elapsed) {
    if (!enabled_ || elapsed < milliseconds{1000}) return;
    std::lock_guard lock(mu_);
    const double s = static_cast<double>(elapsed.count()) / 1000;
    if (tty_) {
      std::printf("\r\033[K  ....  %s (%s): %s [%.1f s]", c.name.c_str(), c.kind.c_str(), what.c_str(), s);
      shown_ = true;
    } else {
      auto& next = next_[c.name];
      if (elapsed < next) return;
      std::printf("  ....  %s (%s): %s [%.1f s]\n", c.name.c_str(), c.kind.c_str(), what.c_str(), s);
      next = elapsed + milliseconds{2000};
    }
    std::fflush(stdout);
  }
  void verdict(const CheckResult& r) {
    std::lock_guard lock(mu_);
    if (!enabled_) return;
    if (shown_) std::printf("\r\033[K");
    shown_ = false;
    std::fputs(render_check(r).c_str(), stdout);
    std::fflush(stdout);
  }

 private:
  bool enabled_, tty_;
  bool shown_ = false;
  std::mutex mu_;
  std::map<std::string, milliseconds> next_;
};

}  // namespace

void add_check_flags(CLI::App* cmd, CheckRunFlags& f) {
  cmd->add_flag("--json", f.json, "Machine-readable output (all results at the end)");
  cmd->add_option("--junit", f.junit,
                  "Also write the results as JUnit XML to FILE (one testcase per check); mode 0600, or\n"
                  "that of the file already there")
      ->type_name("FILE");
  cmd->add_option("--timeout", f.timeout_s,
                  "Give every check this deadline in seconds instead of its own (its `timeout` "
                  "key, else its kind's default)")
      ->type_name("SECONDS")
      ->check(CLI::Range(0.1, 600.0));
}

namespace {

// A lab across hosts (docs/multihost.md): each check runs on the host of its `from` node,
// where that node's namespace is: this host's in this process, every other host's at once
// over ssh (`labctl check LAB NAMES --json` there), the verdicts merged in the lab's order.
Result<CheckReport> run_checks_across_hosts(const Topology& t, const HostsRecord& rec, CheckOptions o,
                                            const CheckRunFlags& f, Progress& progress) {
  std::map<std::string, std::vector<std::string>> by_host;
  for (const auto& c : t.checks) {
    if (!o.only.empty() && std::find(o.only.begin(), o.only.end(), c.name) == o.only.end()) continue;
    const Node* from = t.node(c.from);
    by_host[from ? host_of(t, *from) : rec.self].push_back(c.name);
  }
  std::map<std::string, CheckResult> results;
  std::mutex mu;
  auto failed_all = [&](const std::string& host, const std::vector<std::string>& names, const std::string& why) {
    std::lock_guard lock(mu);
    for (const auto& name : names) {
      CheckResult r;
      r.name = name;
      for (const auto& c : t.checks)
        if (c.name == name) r.kind = c.kind;
      r.detail = "could not run on host " + host + ": " + why;
      results[name] = r;
    }
  };
  // The machine the lab was brought up from has no ssh destination: seen from another host,
  // its checks cannot run.
  if (rec.local_part && rec.local != rec.self)
    if (auto it = by_host.find(rec.local); it != by_host.end())
      failed_all(rec.local, it->second,
                 "it is the machine the lab was brought up from, which has no ssh destination in [hosts]: run "
                 "`labctl check " + t.name + "` there");
  auto args_for = [&](const RemoteHost& h) {
    auto it = by_host.find(h.name);
    if (h.name == rec.self || it == by_host.end()) return std::vector<std::string>{};
    std::vector<std::string> args = {"check", t.name};
    args.insert(args.end(), it->second.begin(), it->second.end());
    args.emplace_back("--json");
    if (f.timeout_s > 0) args.push_back(fmt::format("--timeout={}", f.timeout_s));
    return args;
  };
  // Every other host at once, on a thread of its own while this host runs its own checks.
  std::jthread remote([&] {
    for (const auto& run : run_on_hosts(rec.remotes, args_for, std::chrono::hours(1))) {
      const auto& names = by_host.at(run.host);
      auto j = nlohmann::json::parse(run.out, nullptr, false);
      auto rep = j.is_discarded() ? Result<CheckReport>(fail("no JSON")) : check_report_from_json(j);
      if (!rep) {
        failed_all(run.host, names, what_it_said(run));
        continue;
      }
      for (auto& r : rep->results) {
        r.detail += " [on host " + run.host + "]";
        progress.verdict(r);
        std::lock_guard lock(mu);
        results[r.name] = r;
      }
    }
  });
  if (auto mine = by_host.find(rec.self); mine != by_host.end()) {
    o.only = mine->second;
    auto rep = run_checks(t, o);
    if (!rep) return rep;
    std::lock_guard lock(mu);
    for (auto& r : rep->results) results[r.name] = r;
  }
  remote.join();
  CheckReport merged;
  merged.lab = t.name;
  for (const auto& c : t.checks)
    if (auto it = results.find(c.name); it != results.end()) merged.results.push_back(it->second);
  return merged;
}

// How a check here reads a node of another host: `labctl ARGS...` there, over one ssh
// connection per host, opened when first needed and closed when the run is done.
std::function<Result<std::string>(const std::string&, const std::vector<std::string>&)> reach_hosts(
    const HostsRecord& rec) {
  struct Sessions {
    std::mutex mu;
    std::map<std::string, std::unique_ptr<SshSession>> open;
  };
  auto sessions = std::make_shared<Sessions>();
  return [sessions, rec](const std::string& host, const std::vector<std::string>& args) -> Result<std::string> {
    auto r = std::find_if(rec.remotes.begin(), rec.remotes.end(), [&](const RemoteHost& h) { return h.name == host; });
    if (r == rec.remotes.end())
      return fail("host " + host + " has no ssh destination in [hosts] (the machine the lab was brought up from)",
                  "give the check a `from` node on that host, or run it there");
    SshSession* session = nullptr;
    {
      std::lock_guard lock(sessions->mu);
      auto& s = sessions->open[host];
      if (!s) {
        TRY_ASSIGN(s, SshSession::open(*r));
      }
      session = s.get();
    }
    TRY_ASSIGN(Captured ran, session->labctl(args, {}, std::chrono::steady_clock::now() + std::chrono::minutes(1)));
    if (ran.exit_code != 0) return fail(what_it_said(HostRun{host, ran.exit_code, ran.out, ran.err}));
    return ran.out;
  };
}

}  // namespace

int run_and_print_checks(const Topology& t, const std::vector<std::string>& only,
                         const CheckRunFlags& f) {
  if (Status st = check_names_known(t, only); !st) die(st.error(), kExitInvalid);
  if (!f.junit.empty()) {
    // Found out now, not after the checks have run.
    namespace fs = std::filesystem;
    const fs::path p(f.junit);
    const fs::path dir = p.parent_path().empty() ? fs::path(".") : p.parent_path();
    std::error_code ec;
    if (fs::is_directory(p, ec) || ::access(dir.c_str(), W_OK) != 0 ||
        (fs::exists(p, ec) && ::access(p.c_str(), W_OK) != 0))
      die(Error{"cannot write the JUnit file " + f.junit, errno, {}, "give a writable file path"},
          kExitInvalid);
  }
  Progress progress(!f.json);
  CheckOptions o;
  o.only = only;
  if (f.timeout_s > 0) o.timeout = milliseconds{static_cast<int64_t>(f.timeout_s * 1000)};
  o.on_result = [&](const CheckResult& r) { progress.verdict(r); };
  o.on_progress = [&](const Check& c, const std::string& what, milliseconds elapsed) {
    progress.update(c, what, elapsed);
  };
  auto rec = multi_host(t) ? find_hosts_record(t.name) : std::nullopt;
  if (rec) o.on_host = reach_hosts(*rec);
  auto rep = rec ? run_checks_across_hosts(t, *rec, o, f, progress) : run_checks(t, o);
  if (!rep) die(rep.error());
  if (f.json) std::printf("%s\n", json_text(checks_json(*rep)).c_str());
  else std::printf("%s", render_summary(*rep).c_str());
  // Only a run of every check can say the exercise is repaired.
  if (std::string done = exercise_repaired(t, rep->passed() && only.empty()); !done.empty() && !f.json)
    std::printf("%s\n", done.c_str());
  if (!f.junit.empty())
    if (Status st = write_file_atomically(f.junit, checks_junit({*rep}), output_file_mode(f.junit)); !st) die(st.error(), kExitInvalid);
  return rep->passed() ? 0 : kExitFailure;
}

namespace {

void setup(CLI::App& app) {
  auto* cmd = app.add_subcommand("check", "Run a running lab's checks");
  // The kinds from their registry, so the list is never behind it.
  std::string kinds;
  size_t col = 0;
  for (const auto& k : topo::check_kinds()) {
    const std::string word = (kinds.empty() ? "" : ", ") + k.name;
    if (col + word.size() > 86) {
      kinds += ",\n  ";
      col = 2;
      kinds += k.name;
      col += k.name.size();
      continue;
    }
    kinds += word;
    col += word.size();
  }
  cmd->footer(std::string(
      "Checks are the assertions in the topology's [checks] tables. Kinds (docs/checks.md says\n"
      "what each proves and how it decides):\n  ") + kinds + ".\n"
      "Each runs under a deadline (docs/checks.md) and its verdict is printed as soon as it\n"
      "is reached; a failed check names the cause found in the lab and the topology line\n"
      "that fixes it.\n" +
      kCheckExitHelp +
      "\nExamples: labctl check dr-demo\n"
      "          labctl check dr-demo balanced --junit report.xml --timeout 5");
  static std::string lab;
  static std::vector<std::string> only;
  static CheckRunFlags flags;
  cmd->add_option("lab", lab, "Running lab (or a built-in name / file that is up)")->required();
  cmd->add_option("checks", only, "Run only these checks (by name)");
  add_check_flags(cmd, flags);
  cmd->callback([] {
    if (Status st = check_privileges(); !st) die(st.error());
    Topology t = running_or_load_or_die(lab);
    if (Status st = check_names_known(t, only); !st) die(st.error(), kExitInvalid);
    if (lab_namespaces(t.name).empty() && !find_hosts_record(t.name))
      die(Error{"lab " + t.name + " is not up", 0, {}, "`labctl up " + lab + "` first"});
    int rc = run_and_print_checks(t, only, flags);
    if (rc) throw ExitError{rc, {}};
  });
}

LABCTL_COMMAND(45, setup);

}  // namespace
}  // namespace labctl::cli
