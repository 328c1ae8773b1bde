// labctl status [LAB] [--json]   and   labctl ls [--json]
#include <algorithm>
#include <cstdio>

#include "labctl/cli/command.h"
#include "labctl/cli/hosts_relay.h"
#include "labctl/cli/vm_lab.h"
#include "labctl/lab/lifecycle.h"
#include "labctl/lab/live_edit.h"
#include "labctl/lab/multihost.h"
#include "labctl/kernel/netns.h"
#include "labctl/kernel/process.h"
#include "labctl/lab/state.h"
#include "labctl/lab/status.h"

namespace labctl::cli {
namespace {

void print_json(const nlohmann::json& j) { std::printf("%s\n", json_text(j).c_str()); }

// Labs this kernel hosts itself (VM-hosted ones have host state, but no namespaces here).
std::vector<std::string> native_labs() {
  std::vector<std::string> out;
  for (const auto& l : running_labs())
    if (!vm_hosted(l)) out.push_back(l);
  return out;
}

// A VM-hosted lab's status: the guest's, marked as such. Returns false when its qemu is gone.
bool vm_status(const std::string& lab, bool json, nlohmann::json& all) {
  bool alive = false;
  const std::string summary = vm_summary(lab, &alive);
  std::string out;
  if (json && alive && relay_to_lab(lab, {"status", lab, "--json"}, &out, 60) == 0) {
    auto j = nlohmann::json::parse(out, nullptr, false);
    if (!j.is_discarded()) {
      j["vm"] = {{"running", true}, {"summary", summary}};
      all.push_back(j);
      return true;
    }
  }
  if (json) {
    all.push_back({{"lab", lab}, {"vm", {{"running", alive}, {"summary", summary}}}});
    return alive;
  }
  std::printf("lab %s: %s\n", lab.c_str(), summary.c_str());
  if (alive) {
    std::fflush(stdout);
    return relay_to_lab(lab, {"status", lab}) == 0;
  }
  return false;
}

void setup_status(CLI::App& app) {
  auto* cmd = app.add_subcommand("status", "Show running labs as the kernel sees them");
  cmd->footer(
      "For each node: interfaces with state and addresses, routes, IPVS services with their\n"
      "real servers and counters, its agents (running, exited (code N), killed (SIGx), with\n"
      "restarts; as their supervisors recorded them) and the processes running in it.\n"
      "Everything else is read back from the kernel, not from labctl's own records.");
  static std::string lab;
  static bool json = false, here = false;
  cmd->add_option("lab", lab, "Lab name (default: every running lab)");
  cmd->add_flag("--json", json, "Machine-readable output");
  cmd->add_flag("--here", here, "A lab across hosts: only this host's part of it");
  cmd->callback([] {
    if (!lab.empty())
      if (Status st = check_lab_name(lab); !st) die(st.error(), kExitInvalid);
    if (Status st = check_privileges(); !st) die(st.error());
    nlohmann::json all = nlohmann::json::array();
    bool vm_ok = true;
    std::vector<std::string> vm_labs = lab.empty() ? vm_hosted_labs() : std::vector<std::string>{};
    if (!lab.empty() && vm_hosted(lab)) vm_labs = {lab};
    for (const auto& l : vm_labs) vm_ok = vm_status(l, json, all) && vm_ok;
    std::vector<std::string> labs = lab.empty() ? native_labs() : std::vector<std::string>{lab};
    if (!vm_labs.empty() && !lab.empty()) labs.clear();
    bool hosts_ok = true;
    for (const auto& l : labs) {
      // A lab across hosts (docs/multihost.md): this host's part, then every other host's.
      auto rec = here ? std::nullopt : find_hosts_record(l);
      if (rec && !lab.empty()) {
        nlohmann::json parts = nlohmann::json::object();
        if (!rec->self.empty()) {
          auto s = lab_status(l);
          if (!s) die(s.error());
          if (json) parts[rec->self] = status_json(*s);
          else std::printf("host %s (this machine):\n%s", rec->self.c_str(), render_status(*s).c_str());
        }
        std::vector<std::string> args = {"status", "--here", l};
        if (json) args.emplace_back("--json");
        const std::string self = rec->self;
        for (const auto& h : run_on_hosts(
                 rec->remotes, [&](const RemoteHost& r) { return r.name == self ? std::vector<std::string>{} : args; },
                 std::chrono::minutes(2))) {
          const bool ok = h.exit_code == 0;
          hosts_ok = hosts_ok && ok;
          if (json) {
            auto j = nlohmann::json::parse(h.out, nullptr, false);
            parts[h.host] = ok && !j.is_discarded() ? j : nlohmann::json{{"error", what_it_said(h)}};
          } else {
            std::printf("\nhost %s:\n%s", h.host.c_str(), ok ? h.out.c_str() : "");
            if (!ok) std::fprintf(stderr, "labctl: error: host %s: %s\n", h.host.c_str(), what_it_said(h).c_str());
          }
        }
        if (json) all.push_back({{"lab", l}, {"hosts", parts}});
        continue;
      }
      if (rec && rec->self.empty()) {  // brought up from here, with no part here
        std::string hosts;
        for (const auto& h : rec->remotes) hosts += (hosts.empty() ? "" : ", ") + h.name;
        if (json) all.push_back({{"lab", l}, {"hosts", hosts}});
        else std::printf("lab %s: across hosts %s (`labctl status %s` shows each)\n", l.c_str(), hosts.c_str(), l.c_str());
        continue;
      }
      auto s = lab_status(l);
      if (!s) die(s.error());
      // Links cut, nodes crashed, impairments edited live (labctl link, labctl node).
      LiveState live;
      if (auto edits = recorded_live_edits(l)) live = fold_live_edits(*edits);
      if (json) {
        nlohmann::json j = status_json(*s);
        if (!live.empty()) j["live_edits"] = live_state_json(live);
        all.push_back(std::move(j));
      } else {
        std::printf("%s%s", render_status(*s).c_str(), render_live_state(live).c_str());
      }
    }
    if (json) print_json(lab.empty() ? all : all.at(0));
    else if (labs.empty() && vm_labs.empty()) std::printf("no labs are up\n");
    if (!vm_ok || !hosts_ok) throw ExitError{kExitFailure, {}};
  });
}

void setup_ls(CLI::App& app) {
  auto* cmd = app.add_subcommand("ls", "List running labs");
  static bool json = false;
  cmd->add_flag("--json", json, "Machine-readable output");
  cmd->callback([] {
    if (Status st = check_privileges(); !st) die(st.error());
    nlohmann::json all = nlohmann::json::array();
    if (!json) std::printf("%-20s %-11s %-7s %s\n", "LAB", "NAMESPACES", "PROCS", "STATE");
    for (const auto& l : vm_hosted_labs()) {
      bool alive = false;
      const std::string summary = vm_summary(l, &alive);
      nlohmann::json row = {{"lab", l}, {"vm", summary}, {"ok", false}};
      std::string out;
      if (alive && relay_to_lab(l, {"ls", "--json"}, &out, 60) == 0) {
        auto guest = nlohmann::json::parse(out, nullptr, false);
        if (guest.is_array())
          for (const auto& g : guest)
            if (g.value("lab", "") == l) row.update(g);
        row["vm"] = summary;
      }
      if (json) {
        all.push_back(row);
        continue;
      }
      std::string what = !alive ? summary
                         : row.value("ok", false) ? "ok (" + summary + ")"
                                                  : "not ok (" + summary + "); labctl status " + l;
      std::printf("%-20s %-11s %-7s %s\n", l.c_str(),
                  row.contains("namespaces") ? std::to_string(row["namespaces"].size()).c_str() : "-",
                  row.contains("processes") ? std::to_string(row["processes"].get<size_t>()).c_str() : "-",
                  what.c_str());
    }
    for (const auto& l : native_labs()) {
      auto nss = lab_namespaces(l);
      // A lab across hosts brought up from here, with no part here.
      if (auto rec = find_hosts_record(l); rec && rec->self.empty() && nss.empty()) {
        std::string hosts;
        for (const auto& h : rec->remotes) hosts += (hosts.empty() ? "" : ", ") + h.name;
        if (json)
          all.push_back({{"lab", l}, {"hosts", hosts}, {"namespaces", nss}, {"processes", 0}, {"ok", true}});
        else
          std::printf("%-20s %-11s %-7s %s\n", l.c_str(), "-", "-",
                      ("across hosts " + hosts + " (labctl status " + l + ")").c_str());
        continue;
      }
      size_t procs = 0;
      for (const auto& ns : nss) procs += pids_in_netns(netns_path(ns)).size();
      auto st = labs_with_state();
      bool state = std::find(st.begin(), st.end(), l) != st.end();
      // An agent that exited or was killed makes the lab not ok (status says more).
      std::vector<std::string> failed;
      if (auto s = lab_status(l)) failed = failed_agents(*s);
      if (json) {
        all.push_back({{"lab", l}, {"namespaces", nss}, {"processes", procs}, {"state", state},
                       {"ok", !nss.empty() && failed.empty()}, {"failed_agents", failed}});
        continue;
      }
      std::string what = nss.empty() ? "stale state only (labctl down cleans it up)"
                         : !failed.empty()
                             ? "agent " + failed.front() +
                                   (failed.size() > 1 ? " (+" + std::to_string(failed.size() - 1) + " more)" : "") +
                                   "; labctl status " + l
                         : state ? "ok"
                                 : "no state (labctl down still finds it)";
      std::printf("%-20s %-11zu %-7zu %s\n", l.c_str(), nss.size(), procs, what.c_str());
    }
    if (json) print_json(all);
  });
}

LABCTL_COMMAND(50, setup_status);
LABCTL_COMMAND(51, setup_ls);

}  // namespace
}  // namespace labctl::cli
