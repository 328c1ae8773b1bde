#include "labctl/lab/multihost.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "labctl/base/file.h"
#include "labctl/base/interrupt.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/lab/preflight.h"
#include "labctl/lab/state.h"
#include "labctl/model/hosts.h"
#include "labctl/plan/part.h"
#include "labctl/plan/planner.h"

namespace labctl {
namespace {

using Clock = std::chrono::steady_clock;

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// A remote labctl's own words for why it failed (what_it_said of its HostRun).
std::string what_it_said(const Captured& c) { return what_it_said(HostRun{"", c.exit_code, c.out, c.err}); }

// Runs fn(i) for every i in [0, n) at once, one thread each (hosts are few; each waits on ssh).
void for_each_at_once(size_t n, const std::function<void(size_t)>& fn) {
  std::vector<std::jthread> threads;
  threads.reserve(n);
  for (size_t i = 0; i < n; ++i) threads.emplace_back([&fn, i] { fn(i); });
}

Error host_error(const std::vector<std::pair<std::string, std::string>>& failures, const std::string& doing,
                 std::string hint) {
  std::string msg;
  if (failures.size() == 1) {
    msg = fmt::format("{} on host {}: {}", doing, failures[0].first, failures[0].second);
  } else {
    msg = fmt::format("{} on {} hosts:", doing, failures.size());
    for (const auto& [h, why] : failures) msg += fmt::format("\n  {}: {}", h, why);
  }
  return Error{msg, 0, {}, std::move(hint)};
}

}  // namespace

std::string to_json(const HostsRecord& r) {
  nlohmann::json j;
  j["lab"] = r.lab;
  j["self"] = r.self;
  j["local"] = r.local;
  j["local_part"] = r.local_part;
  j["remotes"] = nlohmann::json::array();
  for (const auto& h : r.remotes) j["remotes"].push_back({{"name", h.name}, {"ssh", h.destination}, {"labctl", h.labctl}});
  return j.dump(2) + "\n";
}

Result<HostsRecord> hosts_record_from_json(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return fail("the lab's hosts record is not JSON");
  HostsRecord r;
  r.lab = j.value("lab", "");
  r.self = j.value("self", "");
  r.local = j.value("local", "");
  r.local_part = j.value("local_part", false);
  if (auto it = j.find("remotes"); it != j.end() && it->is_array())
    for (const auto& h : *it)
      if (h.is_object()) r.remotes.push_back({h.value("name", ""), h.value("ssh", ""), h.value("labctl", "labctl")});
  if (Status st = check_lab_name(r.lab); !st) return tl::unexpected(st.error());
  for (const auto& h : r.remotes)
    if (h.name.empty() || h.destination.empty() || h.destination.front() == '-')
      return fail("the lab's hosts record names a host badly");
  return r;
}

HostsRecord hosts_record(const Topology& t, const std::string& self) {
  HostsRecord r;
  r.lab = t.name;
  r.local = local_host(t);
  const auto used = lab_hosts(t);
  r.local_part = std::find(used.begin(), used.end(), r.local) != used.end();
  r.self = self;
  for (const auto& name : used)
    if (const Host* h = t.find_host(name); h && !h->ssh.empty()) r.remotes.push_back({h->name, h->ssh, h->labctl});
  return r;
}

std::string part_record_path(const std::string& lab) { return state_dir(lab) + "/part.json"; }
std::string controller_record_path(const std::string& lab) { return state_root() + "/hosts/" + lab + ".json"; }
std::string controller_topology_path(const std::string& lab) { return state_root() + "/hosts/" + lab + ".toml"; }

std::optional<HostsRecord> find_hosts_record(const std::string& lab) {
  if (!check_lab_name(lab)) return std::nullopt;
  for (const auto& path : {controller_record_path(lab), part_record_path(lab)}) {
    auto text = read_regular_file(path, 1 << 20);
    if (!text) continue;
    if (auto r = hosts_record_from_json(*text); r && r->lab == lab) return *r;
  }
  return std::nullopt;
}

Status multihost_up(const Topology& t, const std::string& source_text, const MultiHostUpOptions& o) {
  TRY(check_privileges());
  InterruptGuard guard;
  const std::atomic<bool>* stop = guard.flag();
  HostsRecord record = hosts_record(t, "");
  if (record.local_part) record.self = record.local;
  const std::string local = record.self;
  const auto& remotes = record.remotes;
  auto say = [&](const std::string& host, bool err, std::string_view line) {
    if (o.on_line) o.on_line(host, err, line);
  };

  // 1. Every host reached, of our version, able to build its part; nothing made yet.
  std::vector<std::unique_ptr<SshSession>> sessions(remotes.size());
  std::vector<std::pair<std::string, std::string>> failures;
  std::mutex mu;
  auto failed = [&](const std::string& host, std::string why) {
    std::lock_guard lock(mu);
    failures.emplace_back(host, std::move(why));
  };
  const std::string& version = o.version;
  for_each_at_once(remotes.size(), [&](size_t i) {
    auto s = SshSession::open(remotes[i]);
    if (!s) return failed(remotes[i].name, s.error().str());
    sessions[i] = std::move(*s);
    auto v = sessions[i]->labctl({"--version"}, {}, Clock::now() + std::chrono::seconds(20), stop);
    if (!v) return failed(remotes[i].name, v.error().str());
    std::string got = v->out;
    while (!got.empty() && got.back() == '\n') got.pop_back();
    if (v->exit_code != 0)
      return failed(remotes[i].name, remotes[i].labctl + " --version failed there: " + what_it_said(*v));
    if (got != version)
      return failed(remotes[i].name, fmt::format("it runs {}, this is {}: every host needs the same labctl", got, version));
    CaptureIo io;
    io.input = source_text;
    auto pre = sessions[i]->labctl({"up", "--part", remotes[i].name, "--preflight-only", "-"}, io,
                                   Clock::now() + std::chrono::seconds(60), stop);
    if (!pre) return failed(remotes[i].name, pre.error().str());
    if (pre->exit_code != 0) return failed(remotes[i].name, what_it_said(*pre));
  });
  Plan local_plan;
  if (!local.empty()) {
    local_plan = plan_part(t, make_plan(t), local);
    if (Status st = check_kernel_can_build(local_plan); !st) failed(local + " (this machine)", st.error().str());
  }
  if (!failures.empty())
    return tl::unexpected(host_error(failures, "cannot build lab " + t.name, "nothing was made on any host"));
  if (*stop) return fail("interrupted", "nothing was made on any host");

  // 2. The controller's record first: from here on `labctl down` finds every host.
  TRY(make_private_dir(state_root()));
  TRY(make_private_dir(state_root() + "/hosts"));
  TRY(write_text(controller_record_path(t.name), to_json(record)));
  TRY(write_text(controller_topology_path(t.name), source_text));

  // 3. Every part at once.
  std::vector<std::jthread> threads;
  for (size_t i = 0; i < remotes.size(); ++i)
    threads.emplace_back([&, i] {
      std::vector<std::string> args = {"up", "--part", remotes[i].name, "--vm=never"};
      if (o.replace) args.emplace_back("--replace");
      if (o.verbose) args.emplace_back("--verbose");
      args.emplace_back("-");
      CaptureIo io;
      io.input = source_text;
      io.on_line = [&, i](bool err, std::string_view line) { say(remotes[i].name, err, line); };
      auto r = sessions[i]->labctl(args, io, Clock::time_point::max(), stop);
      if (!r) return failed(remotes[i].name, r.error().str());
      if (r->exit_code != 0) failed(remotes[i].name, what_it_said(*r));
    });
  if (!local.empty()) {
    UpOptions uo;
    uo.replace = o.replace;
    uo.source_text = source_text;
    uo.state_files.emplace_back("part.json", to_json(hosts_record(t, local)));
    if (o.verbose)
      uo.on_step = [&](size_t i, const PlannedStep& ps) {
        say(local, false, fmt::format("[{}/{}] {}", i + 1, local_plan.steps.size(), describe(ps.step)));
      };
    const auto start = Clock::now();
    if (Status st = lab_up(t, local_plan, uo); !st)
      failed(local, st.error().str());
    else
      say(local, false, fmt::format("up: {} steps in {:.0f} ms", local_plan.steps.size(),
                                    std::chrono::duration<double, std::milli>(Clock::now() - start).count()));
  }
  threads.clear();  // joins
  if (failures.empty() && !*stop) return {};

  // 4. All or nothing: every host rolled back, whatever state its part was left in.
  auto downs = multihost_down(record);
  std::string hint = "every host was rolled back";
  for (const auto& d : downs)
    if (!d.ok) hint = "rolling back host " + d.host + " failed too: " + d.said + "; run `labctl down " + t.name + "`";
  if (failures.empty()) return fail("interrupted", hint);
  return tl::unexpected(host_error(failures, "lab " + t.name + " failed", hint));
}

std::vector<HostRun> run_on_hosts(const std::vector<RemoteHost>& hosts,
                                  const std::function<std::vector<std::string>(const RemoteHost&)>& args_for,
                                  std::chrono::seconds limit) {
  std::vector<HostRun> out(hosts.size());
  std::vector<std::vector<std::string>> args(hosts.size());
  for (size_t i = 0; i < hosts.size(); ++i) {
    out[i].host = hosts[i].name;
    args[i] = args_for(hosts[i]);
  }
  for_each_at_once(hosts.size(), [&](size_t i) {
    if (args[i].empty()) return;
    auto s = SshSession::open(hosts[i]);
    if (!s) {
      out[i].err = s.error().str();
      return;
    }
    auto c = (*s)->labctl(args[i], {}, Clock::now() + limit);
    if (!c) {
      out[i].err = c.error().str();
      return;
    }
    out[i] = {hosts[i].name, c->exit_code, std::move(c->out), std::move(c->err)};
  });
  std::vector<HostRun> ran;
  for (size_t i = 0; i < hosts.size(); ++i)
    if (!args[i].empty()) ran.push_back(std::move(out[i]));
  return ran;
}

std::string what_it_said(const HostRun& r) {
  std::string s = trimmed(r.err.empty() ? r.out : r.err);
  if (s.starts_with("labctl: error: ")) s.erase(0, 15);
  if (s.empty()) s = r.exit_code < 0 ? "stopped by a signal" : "exit status " + std::to_string(r.exit_code);
  return s;
}

std::vector<HostDown> multihost_down(const HostsRecord& r) {
  std::vector<HostDown> out;
  for (auto& run : run_on_hosts(
           r.remotes,
           [&](const RemoteHost& h) {
             return h.name == r.self ? std::vector<std::string>{} : std::vector<std::string>{"down", "--here", r.lab};
           },
           std::chrono::minutes(2))) {
    const bool ok = run.exit_code == 0;
    out.push_back({run.host, ok, ok ? trimmed(run.out) : what_it_said(run)});
  }
  // The controller's machine, seen from another host: ssh has no way there.
  if (r.local_part && r.self != r.local)
    out.push_back({r.local, false,
                   "it is the machine the lab was brought up from, which has no ssh destination in [hosts]: run "
                   "`labctl down " + r.lab + "` there"});
  // This host's part, when it has one.
  if (!r.self.empty()) {
    HostDown here{r.self, true, ""};
    if (auto d = lab_down(r.lab); !d) {
      here.ok = false;
      here.said = d.error().str();
    } else {
      here.said = d->found_anything() ? fmt::format("removed {} namespaces", d->namespaces) : "nothing was up";
    }
    out.push_back(here);
  }
  bool all_ok = std::all_of(out.begin(), out.end(), [](const HostDown& d) { return d.ok; });
  if (all_ok) {
    std::error_code ec;
    std::filesystem::remove(controller_record_path(r.lab), ec);
    std::filesystem::remove(controller_topology_path(r.lab), ec);
  }
  return out;
}

}  // namespace labctl
