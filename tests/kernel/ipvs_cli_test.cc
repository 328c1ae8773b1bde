// Kernel tier: `labctl ipvs` against the real tool. For each demo its --json agrees field by
// field with `ipvsadm -Ln` (and --stats --exact) run in the director's namespace; every live
// edit is read back with ipvsadm and seen by the balance check; every scheduler the kernel
// ships can be set, read back and edited live; an unknown one is refused with the list of
// loadable ones and the table unchanged. Everything through the CLI, as a student runs it;
// one `up` per test.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "labctl/kernel/ipvs.h"
#include "labctl/kernel/ipvs_modules.h"
#include "tests/kernel/kernel_test.h"

namespace labctl {
namespace {

const std::string kLabctl = LABCTL_BINARY_DIR "/labctl/labctl";

struct Ran {
  int rc = -1;
  std::string out;
};

// `cmd` through the shell; stdout (and stderr when `with_stderr`).
Ran run(const std::string& cmd, bool with_stderr = false) {
  Ran r;
  FILE* p = ::popen((cmd + (with_stderr ? " 2>&1" : " 2>/dev/null")).c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = ::pclose(p);
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

Ran labctl(const std::string& args, bool with_stderr = false) {
  return run(kLabctl + " " + args, with_stderr);
}

nlohmann::json json_of(const Ran& r) {
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r.out;
  return j;
}

// One service of `ipvsadm -Ln` (or --stats --exact) as the tool printed it.
struct AdmDest {
  std::string addr_port, forward;
  long weight = -1, active = -1, inactive = -1;
  std::vector<unsigned long long> stats;
};
struct AdmService {
  std::string proto, addr_port, scheduler, rest;  ///< rest: flags, persistence, ops
  std::vector<unsigned long long> stats;
  std::vector<AdmDest> dests;
};

std::vector<AdmService> parse_ipvsadm(const std::string& text, bool stats) {
  std::vector<AdmService> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string first;
    if (!(f >> first) || first == "IP" || first == "Prot") continue;
    if (first == "->") {
      std::string ap;
      f >> ap;
      if (ap == "RemoteAddress:Port" || out.empty()) continue;
      AdmDest d;
      d.addr_port = ap;
      if (stats) {
        unsigned long long v;
        while (f >> v) d.stats.push_back(v);
      } else {
        f >> d.forward >> d.weight >> d.active >> d.inactive;
      }
      out.back().dests.push_back(d);
      continue;
    }
    AdmService s;
    s.proto = first;
    f >> s.addr_port;
    if (stats) {
      unsigned long long v;
      while (f >> v) s.stats.push_back(v);
    } else {
      f >> s.scheduler;
      std::getline(f, s.rest);
      if (!s.rest.empty() && s.rest.front() == ' ') s.rest.erase(0, 1);
    }
    out.push_back(s);
  }
  return out;
}

std::string ap_of(const nlohmann::json& x) {
  const std::string a = x["address"].get<std::string>();
  return (a.find(':') != std::string::npos ? "[" + a + "]" : a) + ":" +
         std::to_string(x["port"].get<int>());
}

// What ipvsadm prints after the scheduler, rebuilt from labctl's JSON.
std::string rest_of(const nlohmann::json& s) {
  std::string r;
  std::string sched_flags;
  for (const auto& f : s["flags"]) {
    const std::string n = f.get<std::string>();
    if (n != "persistent" && n != "ops") sched_flags += (sched_flags.empty() ? "" : ",") + n;
  }
  if (!sched_flags.empty()) r += "(" + sched_flags + ")";
  if (s["persistent"].get<bool>()) {
    r += (r.empty() ? "" : " ") + std::string("persistent ") + std::to_string(s["timeout"].get<int>());
    if (s["netmask"] != "255.255.255.255" && s["netmask"] != "128")
      r += " mask " + s["netmask"].get<std::string>();
  }
  for (const auto& f : s["flags"])
    if (f == "ops") r += (r.empty() ? "" : " ") + std::string("ops");
  return r;
}

void expect_agrees(const nlohmann::json& j, const std::vector<AdmService>& adm) {
  ASSERT_EQ(j["services"].size(), adm.size()) << j.dump(2);
  for (size_t i = 0; i < adm.size(); ++i) {
    const auto& s = j["services"][i];
    const auto& a = adm[i];
    SCOPED_TRACE(a.addr_port);
    EXPECT_EQ(s["protocol"].get<std::string>(), a.proto);
    EXPECT_EQ(ap_of(s), a.addr_port);
    EXPECT_EQ(s["scheduler"].get<std::string>(), a.scheduler);
    EXPECT_EQ(rest_of(s), a.rest);
    ASSERT_EQ(s["real_servers"].size(), a.dests.size());
    for (size_t k = 0; k < a.dests.size(); ++k) {
      const auto& d = s["real_servers"][k];
      const auto& ad = a.dests[k];
      EXPECT_EQ(ap_of(d), ad.addr_port);
      EXPECT_EQ(d["forward"].get<std::string>(), ad.forward);
      EXPECT_EQ(d["weight"].get<long>(), ad.weight);
      EXPECT_EQ(d["active_conns"].get<long>(), ad.active);
      EXPECT_EQ(d["inactive_conns"].get<long>(), ad.inactive);
    }
  }
}

std::vector<unsigned long long> stats_of(const nlohmann::json& st) {
  return {st["conns"].get<unsigned long long>(), st["inpkts"].get<unsigned long long>(),
          st["outpkts"].get<unsigned long long>(), st["inbytes"].get<unsigned long long>(),
          st["outbytes"].get<unsigned long long>()};
}

std::string ipvsadm(const std::string& lab, const std::string& args) {
  return labctl("exec " + lab + " director -- ipvsadm " + args).out;
}

class IpvsCli : public ::testing::Test {
 protected:
  void up(const std::string& lab, bool check = false) {
    if (::geteuid() != 0) GTEST_SKIP() << "kernel tier needs root";
    if (Status ipvs = test::ipvs_available(); !ipvs) LABCTL_KERNEL_SKIP() << ipvs.error().str();
    if (run("command -v ipvsadm").rc != 0) GTEST_SKIP() << "ipvsadm is not installed";
    lab_ = lab;
    const auto t0 = std::chrono::steady_clock::now();
    Ran r = labctl("up " + lab + (check ? " --check" : ""), true);
    ASSERT_EQ(r.rc, 0) << r.out;
    std::printf("[ipvs-cli] up%s %s: %.1f s\n", check ? " --check" : "", lab.c_str(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  void TearDown() override {
    if (!lab_.empty()) {
      EXPECT_EQ(labctl("down " + lab_).rc, 0);
    }
  }
  nlohmann::json table() { return json_of(labctl("ipvs " + lab_ + " --json")); }
  // Runs the balance check; returns its detail (the spread it saw and the weights it used).
  std::string balanced() {
    Ran r = labctl("check " + lab_ + " balanced --json");
    auto j = json_of(r);
    EXPECT_EQ(r.rc, 0) << r.out;
    if (!j.contains("checks") || j["checks"].empty()) return "";
    EXPECT_TRUE(j["checks"][0]["passed"].get<bool>()) << j["checks"][0]["detail"];
    return j["checks"][0]["detail"].get<std::string>();
  }
  std::string lab_;
};

class IpvsCliDemo : public IpvsCli, public ::testing::WithParamInterface<const char*> {};

TEST_P(IpvsCliDemo, JsonAgreesWithIpvsadmFieldByField) {
  up(GetParam(), /*check=*/true);  // its requests give the counters something to count
  if (HasFatalFailure() || IsSkipped()) return;
  // The list: identity, scheduler and flags, persistence, forward method, weight, conns.
  auto j = table();
  EXPECT_EQ(j["node"], "director");
  EXPECT_FALSE(j["services"][0]["name"].is_null());
  expect_agrees(j, parse_ipvsadm(ipvsadm(lab_, "-Ln"), false));
  // Text output names the same service in ipvsadm's own words.
  const std::string text = labctl("ipvs " + lab_).out;
  for (const auto& s : parse_ipvsadm(ipvsadm(lab_, "-Ln"), false))
    EXPECT_NE(text.find(s.proto + "  " + s.addr_port + " " + s.scheduler), std::string::npos) << text;

  // Counters: the estimator's copy settles within ~2 s of the last packet (up --check sent
  // them); once two reads 2.5 s apart agree, labctl and ipvsadm read the same numbers.
  nlohmann::json before = table();
  for (int i = 0; i < 6; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    nlohmann::json now = table();
    const bool settled = now["services"][0]["stats"] == before["services"][0]["stats"];
    before = now;
    if (settled) break;
  }
  auto adm = parse_ipvsadm(ipvsadm(lab_, "-Ln --stats --exact"), true);
  ASSERT_EQ(adm.size(), before["services"].size());
  for (size_t i = 0; i < adm.size(); ++i) {
    const auto& s = before["services"][i];
    EXPECT_EQ(stats_of(s["stats"]), adm[i].stats) << adm[i].addr_port;
    EXPECT_GT(s["stats"]["conns"].get<unsigned long long>(), 0u) << "up --check sent requests";
    ASSERT_EQ(s["real_servers"].size(), adm[i].dests.size());
    for (size_t k = 0; k < adm[i].dests.size(); ++k)
      EXPECT_EQ(stats_of(s["real_servers"][k]["stats"]), adm[i].dests[k].stats);
  }
  // The exact totals are at least what the estimator has seen.
  ASSERT_TRUE(before.contains("totals"));
  EXPECT_GE(before["totals"]["exact"]["inpkts"].get<unsigned long long>(),
            before["services"][0]["stats"]["inpkts"].get<unsigned long long>());

  // Timeouts and the connection table, each against ipvsadm's view.
  auto t = before["timeouts"];
  EXPECT_NE(ipvsadm(lab_, "-L --timeout")
                .find("Timeout (tcp tcpfin udp): " + std::to_string(t["tcp"].get<int>()) + " " +
                      std::to_string(t["tcpfin"].get<int>()) + " " +
                      std::to_string(t["udp"].get<int>())),
            std::string::npos);
  auto conns = json_of(labctl("ipvs " + lab_ + " --connections --json"))["connections"];
  std::istringstream lnc(ipvsadm(lab_, "-Lnc"));
  std::string line;
  size_t adm_conns = 0;
  while (std::getline(lnc, line))
    if (line.rfind("TCP ", 0) == 0 || line.rfind("UDP ", 0) == 0) ++adm_conns;
  EXPECT_GT(conns.size(), 0u);
  // Entries can expire between the two reads, never appear (no traffic now).
  EXPECT_LE(adm_conns, conns.size());
  EXPECT_GE(adm_conns + 2, conns.size());
}

INSTANTIATE_TEST_SUITE_P(Demos, IpvsCliDemo, ::testing::Values("dr-demo", "nat-demo", "tun-demo"),
                         [](const auto& p) {
                           std::string n = p.param;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

const AdmService& web_of(const std::vector<AdmService>& adm) {
  static const AdmService none;
  for (const auto& s : adm)
    if (s.addr_port == "10.10.0.100:80") return s;
  ADD_FAILURE() << "no 10.10.0.100:80 in ipvsadm -Ln";
  return none;
}

const AdmDest* dest_of(const AdmService& s, const std::string& ap) {
  for (const auto& d : s.dests)
    if (d.addr_port == ap) return &d;
  return nullptr;
}

TEST_F(IpvsCli, EveryLiveEditIsReadBackByIpvsadmAndSeenByTheBalanceCheck) {
  up("dr-demo");
  if (HasFatalFailure() || IsSkipped()) return;
  const auto t0 = std::chrono::steady_clock::now();
  auto adm = [&] { return web_of(parse_ipvsadm(ipvsadm(lab_, "-Ln"), false)); };
  // Each balance check below judges the table as edited, but a DR director keeps every
  // earlier request's entry in FIN_WAIT for 120 s, and under the default conn_reuse_mode (1)
  // a new connection whose client port one of them names goes where that entry points,
  // unscheduled: seen twice in CI, one answer of five from rs1 after persistence chose rs2.
  // Mode 3 reschedules over those entries, so every request below meets the edited table.
  Ran reuse = labctl("exec dr-demo director -- sysctl -qw net.ipv4.vs.conn_reuse_mode=3", true);
  ASSERT_EQ(reuse.rc, 0) << reuse.out;

  // set-scheduler and set-weight: wrr 3:1, and the balance check expects (and gets) 3:1.
  ASSERT_EQ(labctl("ipvs dr-demo set-scheduler web wrr", true).rc, 0);
  Ran w = labctl("ipvs dr-demo set-weight web rs1 3", true);
  ASSERT_EQ(w.rc, 0) << w.out;
  EXPECT_NE(w.out.find("weight 1 -> 3"), std::string::npos) << w.out;
  EXPECT_EQ(adm().scheduler, "wrr");
  ASSERT_TRUE(dest_of(adm(), "10.10.0.11:80"));
  EXPECT_EQ(dest_of(adm(), "10.10.0.11:80")->weight, 3);
  std::string detail = balanced();
  EXPECT_NE(detail.find("(wrr): rs1 3, rs2 1"), std::string::npos) << detail;
  EXPECT_NE(detail.find("within"), std::string::npos) << detail;
  // status shows the same table.
  auto st = json_of(labctl("status dr-demo --json"));
  for (const auto& n : st["nodes"])
    if (n["name"] == "director") {
      EXPECT_EQ(n["ipvs"][0]["scheduler"], "wrr");
      for (const auto& d : n["ipvs"][0]["real_servers"])
        EXPECT_EQ(d["weight"], d["address"] == "10.10.0.11" ? 3 : 1) << d;
      EXPECT_EQ(n["ipvs_counters"], "estimator, refreshed about every 2 s");
    }

  // drain: weight 0, and the drained server gets no request.
  ASSERT_EQ(labctl("ipvs dr-demo drain web 10.10.0.12", true).rc, 0);
  EXPECT_EQ(dest_of(adm(), "10.10.0.12:80")->weight, 0);
  detail = balanced();
  EXPECT_NE(detail.find("rs2 0"), std::string::npos) << detail;
  EXPECT_EQ(detail.find("rs2 has weight 0 but answered"), std::string::npos) << detail;

  // remove-server, then add-server back by node name with its own weight.
  ASSERT_EQ(labctl("ipvs dr-demo remove-server web rs2", true).rc, 0);
  EXPECT_EQ(dest_of(adm(), "10.10.0.12:80"), nullptr);
  detail = balanced();
  EXPECT_NE(detail.find("rs1 40 of 40"), std::string::npos) << detail;
  Ran add = labctl("ipvs dr-demo add-server web rs2 --weight 1", true);
  ASSERT_EQ(add.rc, 0) << add.out;
  ASSERT_TRUE(dest_of(adm(), "10.10.0.12:80"));
  EXPECT_EQ(dest_of(adm(), "10.10.0.12:80")->forward, "Route");
  EXPECT_EQ(dest_of(adm(), "10.10.0.12:80")->weight, 1);
  detail = balanced();
  EXPECT_NE(detail.find("rs1 3, rs2 1"), std::string::npos) << detail;

  // set-persistence: one client sticks to one server; and off again.
  ASSERT_EQ(labctl("ipvs dr-demo set-persistence web 30", true).rc, 0);
  EXPECT_EQ(adm().rest, "persistent 30");
  detail = balanced();
  EXPECT_NE(detail.find("one client sticks to one server"), std::string::npos)
      << detail << "\nthe director's connection table:\n" << ipvsadm("dr-demo", "-Lnc");
  ASSERT_EQ(labctl("ipvs dr-demo set-persistence web 0", true).rc, 0);
  EXPECT_EQ(adm().rest, "");

  // Timeouts: read back by ipvsadm; the connections the next balance check makes carry them
  // (entries made before keep the timers they had).
  std::set<unsigned> old_ports;
  const auto before = json_of(labctl("ipvs dr-demo --connections --json"));
  for (const auto& c : before["connections"]) old_ports.insert(c["client_port"].get<unsigned>());
  Ran to = labctl("ipvs dr-demo --set 31 20 33", true);
  ASSERT_EQ(to.rc, 0) << to.out;
  EXPECT_NE(ipvsadm(lab_, "-L --timeout").find("Timeout (tcp tcpfin udp): 31 20 33"),
            std::string::npos);
  balanced();
  auto conns = json_of(labctl("ipvs dr-demo --connections --json"))["connections"];
  size_t fresh = 0, bounded = 0;
  for (const auto& c : conns) {
    if (old_ports.count(c["client_port"].get<unsigned>()) || c["state"] == "NONE") continue;
    ++fresh;
    const std::string state = c["state"];
    if (c["expires"].get<unsigned>() <= (state == "FIN_WAIT" ? 20u : 31u)) ++bounded;
  }
  std::printf("[ipvs-cli] %zu of %zu new connection entries carry the new timeouts\n", bounded,
              fresh);
  EXPECT_GT(fresh, 0u) << conns.dump(1);
  EXPECT_EQ(bounded, fresh) << conns.dump(1);

  // The lab's state recorded every edit, so the kept topology `check` reads is the live one.
  auto edits = json_of(run("cat /run/labctl/labs/dr-demo/ipvs-edits.json"));
  EXPECT_EQ(edits.size(), 8u) << edits.dump(1);
  // Unknown names: exit 2, listing what exists, nothing changed.
  Ran bad = labctl("ipvs dr-demo set-weight web rs9 2", true);
  EXPECT_EQ(bad.rc, 2);
  EXPECT_NE(bad.out.find("rs1 (10.10.0.11:80), rs2 (10.10.0.12:80)"), std::string::npos) << bad.out;
  std::printf("[ipvs-cli] live edits with their checks: %.1f s\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

TEST_F(IpvsCli, EverySchedulerTheKernelShipsIsSetReadBackAndEditedLive) {
  up("dr-demo");
  if (HasFatalFailure() || IsSkipped()) return;
  const auto scheds = ipvs::loadable_schedulers();
  ASSERT_FALSE(scheds.empty()) << "no ip_vs_* scheduler modules under /lib/modules";
  std::string all;
  long i = 0;
  for (const auto& s : scheds) {
    const long weight = ++i % 5 + 2;
    SCOPED_TRACE(s);
    Ran set = labctl("ipvs dr-demo set-scheduler web " + s + " --json");
    ASSERT_EQ(set.rc, 0) << set.out;
    EXPECT_EQ(json_of(set)["table"]["services"][0]["scheduler"], s);
    // Edited live under this scheduler: a weight change reaches the kernel.
    ASSERT_EQ(labctl("ipvs dr-demo set-weight web rs2 " + std::to_string(weight)).rc, 0);
    auto adm = web_of(parse_ipvsadm(ipvsadm(lab_, "-Ln"), false));
    EXPECT_EQ(adm.scheduler, s);
    const AdmDest* d = dest_of(adm, "10.10.0.12:80");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->weight, weight);
    all += " " + s;
  }
  std::printf("[ipvs-cli] schedulers set, read back and edited:%s\n", all.c_str());

  // An unknown scheduler: the kernel's ENOENT, the list of loadable ones, nothing changed.
  const std::string before = ipvsadm(lab_, "-Ln");
  Ran bad = labctl("ipvs dr-demo set-scheduler web nosuch", true);
  EXPECT_EQ(bad.rc, 1) << bad.out;
  EXPECT_NE(bad.out.find("ip_vs_nosuch"), std::string::npos) << bad.out;
  EXPECT_NE(bad.out.find("this kernel can load:"), std::string::npos) << bad.out;
  for (const auto& s : scheds) EXPECT_NE(bad.out.find(" " + s), std::string::npos) << s;
  EXPECT_EQ(ipvsadm(lab_, "-Ln"), before);
  auto edits = json_of(run("cat /run/labctl/labs/dr-demo/ipvs-edits.json"));
  EXPECT_EQ(edits.size(), 2 * scheds.size()) << "the refused edit is not recorded";
}

}  // namespace
}  // namespace labctl
