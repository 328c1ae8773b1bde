// Kernel tier: the IPVS features a topology can ask for, in one lab (tests/data/
// ipvs-features.toml) brought up once: IPv6, SCTP, port 0 with a persistence netmask,
// one-packet UDP, scheduler flags, fwmark services for IPv4 and IPv6 fed by nftables
// marks, and a director that is one of its own real servers. The table is read back with
// ipvsadm and the marks with nft, the tools an administrator would use, and compared with
// the topology; then traffic shows what the settings are for. One test case, so ctest
// (a process per case) builds the lab once.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <set>
#include <string>

#include "labctl/lab/lifecycle.h"
#include "labctl/model/load.h"
#include "labctl/plan/nft.h"
#include "labctl/plan/planner.h"
#include "tests/kernel/kernel_test.h"
#include "tests/support/kill_sweep.h"

namespace labctl {
namespace {

std::string bracket(const IpAddr& a) { return a.v6() ? "[" + a.str() + "]" : a.str(); }

/// The service's line in `ipvsadm -Ln`, as ipvsadm prints it (libipvs's print_service_entry):
/// "TCP  10.0.0.1:80 sh (sh-fallback,sh-port) persistent 60 mask 255.255.255.0".
std::string ipvsadm_line(const VirtualService& s) {
  std::string out;
  if (s.fwmark)
    out = "FWM  " + std::to_string(s.fwmark) + (s.vip.v6() ? " IPv6" : "");
  else
    out = std::string(s.proto == Proto::Tcp   ? "TCP "
                      : s.proto == Proto::Udp ? "UDP "
                                              : "SCTP") +
          " " + bracket(s.vip) + ":" + std::to_string(s.port);
  out += " " + s.scheduler;
  if (!s.sched_flags.empty()) {
    out += " (";
    // ipvsadm prints the flags in bit order: fallback (SCHED1) before port (SCHED2).
    std::string sched = s.scheduler;
    bool first = true;
    for (const char* f : {"-fallback", "-port"})
      for (const auto& g : s.sched_flags)
        if (g == sched + f) {
          out += (first ? "" : ",") + g;
          first = false;
        }
    out += ")";
  }
  if (s.persistence) {
    out += " persistent " + std::to_string(s.persistence);
    if (s.netmask) {
      if (s.vip.v6()) {
        out += " mask " + std::to_string(*s.netmask);
      } else {
        IpAddr m{AF_INET, {}};
        for (int i = 0; i < *s.netmask; ++i)
          m.bytes[i / 8] |= static_cast<uint8_t>(0x80 >> (i % 8));
        out += " mask " + m.str();
      }
    }
  }
  if (s.one_packet) out += " ops";
  return out;
}

/// "  -> 10.0.0.11:80    Route   1", the destination's line up to its weight.
std::string dest_words(const VirtualService& s, const RealServer& d) {
  uint16_t port = d.port ? d.port : s.port;
  const char* fwd = d.method == FwdMethod::Local ? "Local"
                    : d.method == FwdMethod::Nat ? "Masq"
                    : d.method == FwdMethod::Tun ? "Tunnel"
                                                 : "Route";
  return bracket(d.addr) + ":" + std::to_string(port) + " " + fwd + " " + std::to_string(d.weight);
}

std::string squeeze(const std::string& text) {
  std::string out;
  for (char c : text)
    if (c != ' ' || (!out.empty() && out.back() != ' ')) out += c;
  return out;
}

class KernelIpvsFeatures : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "kernel tier needs root";
    if (Status ipvs = test::ipvs_available(); !ipvs) LABCTL_KERNEL_SKIP() << ipvs.error().str();
    auto loaded = load_topology(LABCTL_TEST_DATA "/ipvs-features.toml");
    std::string diags;
    for (const auto& d : loaded.diagnostics) diags += format_diagnostic(d) + "\n";
    ASSERT_TRUE(loaded.ok()) << diags;
    EXPECT_TRUE(loaded.diagnostics.empty()) << "the features lab should load without warnings:\n"
                                            << diags;
    topo_ = *loaded.topology;
    Status st = lab_up(topo_, make_plan(topo_), {});
    ASSERT_TRUE(st) << st.error().str();
    up_ = true;
  }
  void TearDown() override {
    if (up_) {
      EXPECT_TRUE(lab_down(topo_.name));
    }
  }
  std::string in(const std::string& node, const std::string& cmd) {
    return test::run_capture("ip netns exec " + netns_name(topo_.name, node) + " " + cmd);
  }
  /// The last line of an HTTP GET from the client: the name of the node that answered.
  std::string get(const std::string& url) {
    std::string body = in("client", "curl -sS -m 3 -g '" + url + "' 2>&1");
    while (!body.empty() && body.back() == '\n') body.pop_back();
    return body;
  }
  Topology topo_;
  bool up_ = false;
};

TEST_F(KernelIpvsFeatures, ReadBackWithIpvsadmAndNftThenServe) {
  const Node* director = topo_.node("director");
  ASSERT_NE(director, nullptr);

  // Every service and destination as ipvsadm shows it: proto (SCTP too), IPv6, port 0,
  // scheduler flags, persistence with its netmask, one-packet, and Local for the director.
  const std::string table = squeeze(in("director", "ipvsadm -Ln"));
  std::size_t services = 0;
  for (const auto& s : director->services) {
    SCOPED_TRACE("service " + s.name);
    const std::string want = squeeze(ipvsadm_line(s));
    EXPECT_TRUE(table.find("\n" + want + "\n") != std::string::npos ||
                table.find("\n" + want + " \n") != std::string::npos)
        << "want: " << want << "\ngot:\n"
        << table;
    for (const auto& d : s.real_servers)
      EXPECT_NE(table.find("-> " + dest_words(s, d) + " "), std::string::npos)
          << "want: -> " << dest_words(s, d) << "\ngot:\n"
          << table;
    ++services;
  }
  EXPECT_EQ(services, 8u);
  EXPECT_NE(table.find("-> 10.60.0.100:8080 Local 1"), std::string::npos) << table;
  EXPECT_NE(table.find("FWM 2 IPv6 mh (mh-port) persistent 60 mask 64"), std::string::npos)
      << table;

  // The marks as nft lists them back: the rules labctl rendered (nft prints marks in hex).
  const std::string rules = in("director", "nft list table inet labctl");
  for (const auto& m : director->marks) {
    std::string rule = nft_rule(m);
    rule = rule.substr(0, rule.rfind("meta mark set"));
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%08x", m.mark);
    EXPECT_NE(rules.find(rule + "meta mark set " + hex), std::string::npos)
        << "want: " << rule << "\n"
        << rules;
  }
  EXPECT_NE(rules.find("type filter hook prerouting priority mangle; policy accept;"),
            std::string::npos)
      << rules;

  // One fwmark service over ports 80 and 443 with persistence: one client keeps one real
  // server on both ports (round robin alone would alternate between rs1 and rs2).
  std::set<std::string> answered;
  for (const char* port : {"80", "443", "80", "443", "80", "443"})
    answered.insert(get(std::string("http://10.60.0.100:") + port + "/"));
  EXPECT_EQ(answered.size(), 1u) << "persistence across the marked ports broke: "
                                 << ::testing::PrintToString(answered);
  EXPECT_TRUE(answered.count("rs1") || answered.count("rs2")) << ::testing::PrintToString(answered);

  // The IPv6 fwmark service, marked by its ip6 rule.
  std::string v6 = get("http://[fd60::100]:80/");
  EXPECT_TRUE(v6 == "rs1" || v6 == "rs2") << v6;

  // The director is one of its own real servers: round robin over it and rs1.
  std::set<std::string> local;
  for (int i = 0; i < 4; ++i) local.insert(get("http://10.60.0.100:8080/"));
  EXPECT_EQ(local, (std::set<std::string>{"director", "rs1"}));
}

}  // namespace
}  // namespace labctl
