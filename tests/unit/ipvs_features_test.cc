// Unit tier: the IPVS features a topology can ask for (SCTP, port 0, netmask, scheduler
// flags, one-packet, local delivery, marks) from TOML to request bytes, nft text and the
// dry-run script, without a kernel.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/genetlink.h>
#include <linux/ip_vs.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "labctl/kernel/ipvs.h"
#include "labctl/kernel/nft.h"
#include "labctl/model/load.h"
#include "labctl/plan/nft.h"
#include "labctl/plan/plan.h"
#include "labctl/plan/planner.h"
#include "labctl/plan/render.h"
#include "tests/unit/nl_test_util.h"

namespace labctl {
namespace {

using test::nested;
using test::payload;

constexpr uint16_t kFamily = 0x2a;

Topology features() {
  auto loaded = load_topology(LABCTL_TEST_DATA "/ipvs-features.toml");
  std::string diags;
  for (const auto& d : loaded.diagnostics) diags += format_diagnostic(d) + "\n";
  EXPECT_TRUE(loaded.ok()) << diags;
  EXPECT_TRUE(loaded.diagnostics.empty()) << diags;
  return loaded.topology ? *loaded.topology : Topology{};
}

const VirtualService& svc(const Topology& t, const std::string& name) {
  for (const auto& s : t.node("director")->services)
    if (s.name == name) return s;
  ADD_FAILURE() << "no service " << name;
  static VirtualService none;
  return none;
}

test::Attrs service_attrs(const Request& r) {
  return nested(test::attrs_of(r.header(), sizeof(genlmsghdr))[IPVS_CMD_ATTR_SERVICE]);
}

ip_vs_flags flags_of(test::Attrs& s) {
  ip_vs_flags f{};
  std::memcpy(&f, mnl_attr_get_payload(s[IPVS_SVC_ATTR_FLAGS]), sizeof f);
  return f;
}

TEST(IpvsFeaturesModel, EveryKeyIsLoadedAsWritten) {
  Topology t = features();
  ASSERT_NE(t.node("director"), nullptr);
  EXPECT_EQ(svc(t, "assoc").proto, Proto::Sctp);
  const auto& any = svc(t, "any");
  EXPECT_EQ(any.port, 0);
  EXPECT_EQ(any.persistence, 60u);
  EXPECT_EQ(any.netmask, 24) << "\"255.255.255.0\" is a /24";
  EXPECT_EQ(svc(t, "web6").netmask, 64);
  EXPECT_EQ(svc(t, "hash").sched_flags, (std::vector<std::string>{"sh-fallback", "sh-port"}));
  EXPECT_TRUE(svc(t, "dns").one_packet);
  const auto& self = svc(t, "self");
  ASSERT_EQ(self.real_servers.size(), 2u);
  EXPECT_EQ(self.real_servers[0].method, FwdMethod::Local);
  EXPECT_EQ(self.real_servers[0].node, "director");
  EXPECT_EQ(self.real_servers[0].addr.str(), "10.60.0.100")
      << "a local real server defaults to the VIP";
  const auto& marks = t.node("director")->marks;
  ASSERT_EQ(marks.size(), 2u);
  EXPECT_EQ(marks[0].proto, Proto::Tcp);
  EXPECT_EQ(marks[0].dst->str(), "10.60.0.100/32");
  EXPECT_EQ(marks[0].dport, (std::vector<uint16_t>{80, 443}));
  EXPECT_EQ(marks[0].mark, 1u);
  EXPECT_EQ(marks[1].dst->str(), "fd60::100/128");
}

TEST(IpvsFeaturesEncode, FlagsNetmaskSctpAndPortZero) {
  Topology t = features();
  auto hash = ipvs::new_service(kFamily, svc(t, "hash"));
  ASSERT_TRUE(hash) << hash.error().str();
  auto h = service_attrs(*hash);
  EXPECT_EQ(flags_of(h).flags,
            static_cast<uint32_t>(IP_VS_SVC_F_SCHED_SH_FALLBACK | IP_VS_SVC_F_SCHED_SH_PORT));
  EXPECT_EQ(flags_of(h).mask, 0xffffffffu);

  auto dns = ipvs::new_service(kFamily, svc(t, "dns"));
  ASSERT_TRUE(dns);
  auto d = service_attrs(*dns);
  EXPECT_EQ(flags_of(d).flags, static_cast<uint32_t>(IP_VS_SVC_F_ONEPACKET));
  EXPECT_EQ(mnl_attr_get_u16(d[IPVS_SVC_ATTR_PROTOCOL]), IPPROTO_UDP);

  auto any = ipvs::new_service(kFamily, svc(t, "any"));
  ASSERT_TRUE(any);
  auto a = service_attrs(*any);
  EXPECT_EQ(flags_of(a).flags, static_cast<uint32_t>(IP_VS_SVC_F_PERSISTENT));
  EXPECT_EQ(payload(a[IPVS_SVC_ATTR_PORT]), (std::vector<uint8_t>{0, 0}));
  EXPECT_EQ(mnl_attr_get_u32(a[IPVS_SVC_ATTR_TIMEOUT]), 60u);
  EXPECT_EQ(payload(a[IPVS_SVC_ATTR_NETMASK]), (std::vector<uint8_t>{0xff, 0xff, 0xff, 0x00}))
      << "IPv4: the mask's bits in network order";

  auto web6 = ipvs::new_service(kFamily, svc(t, "web6"));
  ASSERT_TRUE(web6);
  auto w = service_attrs(*web6);
  EXPECT_EQ(mnl_attr_get_u16(w[IPVS_SVC_ATTR_AF]), AF_INET6);
  EXPECT_EQ(mnl_attr_get_u32(w[IPVS_SVC_ATTR_FWMARK]), 2u);
  EXPECT_EQ(mnl_attr_get_u32(w[IPVS_SVC_ATTR_NETMASK]), 64u) << "IPv6: a prefix length";
  EXPECT_EQ(flags_of(w).flags, static_cast<uint32_t>(IP_VS_SVC_F_PERSISTENT | IP_VS_SVC_F_SCHED2));

  auto sctp = ipvs::new_service(kFamily, svc(t, "assoc"));
  ASSERT_TRUE(sctp);
  auto s = service_attrs(*sctp);
  EXPECT_EQ(mnl_attr_get_u16(s[IPVS_SVC_ATTR_PROTOCOL]), IPPROTO_SCTP);
  EXPECT_EQ(sctp->what, "add virtual service sctp 10.60.0.100:5000 (scheduler rr)");
}

TEST(IpvsFeaturesEncode, LocalRealServerIsTheKernelsLocalNode) {
  Topology t = features();
  const auto& self = svc(t, "self");
  auto r = ipvs::new_dest(kFamily, self, self.real_servers[0]);
  ASSERT_TRUE(r) << r.error().str();
  auto dest = nested(test::attrs_of(r->header(), sizeof(genlmsghdr))[IPVS_CMD_ATTR_DEST]);
  EXPECT_EQ(mnl_attr_get_u32(dest[IPVS_DEST_ATTR_FWD_METHOD]),
            static_cast<uint32_t>(IP_VS_CONN_F_LOCALNODE));
  EXPECT_EQ(payload(dest[IPVS_DEST_ATTR_PORT]), (std::vector<uint8_t>{0x1f, 0x90}));
}

TEST(NftRuleset, MarksRenderAsOneTableInPrerouting) {
  Topology t = features();
  EXPECT_EQ(nft_mark_ruleset(*t.node("director")),
            "table inet labctl {\n"
            "  chain prerouting {\n"
            "    type filter hook prerouting priority mangle; policy accept;\n"
            "    ip daddr 10.60.0.100 tcp dport { 80, 443 } meta mark set 1\n"
            "    ip6 daddr fd60::100 tcp dport 80 meta mark set 2\n"
            "  }\n"
            "}\n");
  EXPECT_EQ(nft_mark_ruleset(*t.node("rs1")), "") << "no marks, no table";
}

TEST(NftRuleset, EveryFieldOfARule) {
  MarkRule m;
  m.mark = 0xffffffff;
  EXPECT_EQ(nft_rule(m), "meta mark set 4294967295") << "no match: every packet";
  m.proto = Proto::Udp;
  EXPECT_EQ(nft_rule(m), "meta l4proto udp meta mark set 4294967295") << "a protocol without ports";
  m.iif = "eth1";
  m.src = IpPrefix::parse("10.1.0.0/16");
  m.dst = IpPrefix::parse("10.2.0.7/32");
  m.sport = {1024};
  m.dport = {53, 5353};
  m.mark = 9;
  EXPECT_EQ(nft_rule(m),
            "iifname \"eth1\" ip saddr 10.1.0.0/16 ip daddr 10.2.0.7 udp sport 1024 udp dport { "
            "53, 5353 } "
            "meta mark set 9");
  MarkRule s;
  s.proto = Proto::Sctp;
  s.dst = IpPrefix::parse("fd00::/64");
  s.dport = {5000};
  s.mark = 3;
  EXPECT_EQ(nft_rule(s), "ip6 daddr fd00::/64 sctp dport 5000 meta mark set 3");
}

TEST(NftRuleset, ErrorsGetAHint) {
  EXPECT_NE(nft_hint("Error: Could not process rule: Operation not supported").find("nf_tables"),
            std::string::npos);
  EXPECT_NE(
      nft_hint("Error: Could not process rule: Operation not permitted").find("CAP_NET_ADMIN"),
      std::string::npos);
  EXPECT_NE(nft_hint("Error: syntax error, unexpected junk").find("--dry-run"), std::string::npos);
  EXPECT_EQ(nft_hint(""), "");
}

TEST(IpvsFeaturesPlan, MarksComeBeforeServicesAndRenderAsNftHeredoc) {
  Topology t = features();
  Plan p = make_plan(t);
  auto first = [&](auto pred) {
    return std::find_if(p.steps.begin(), p.steps.end(),
                        [&](const PlannedStep& s) { return pred(s.step); }) -
           p.steps.begin();
  };
  auto nft = first([](const Step& s) { return std::holds_alternative<step::ApplyNftRules>(s); });
  auto ipvs = first([](const Step& s) { return std::holds_alternative<step::AddIpvsService>(s); });
  ASSERT_LT(nft, static_cast<long>(p.steps.size()));
  EXPECT_LT(nft, ipvs) << "a fwmark service must never see the lab's packets unmarked";
  const Step& step = p.steps[nft].step;
  EXPECT_EQ(step_netns(step), "ipvsx-director");
  EXPECT_EQ(step_type(step), "apply-nft");
  const std::string ruleset = nft_mark_ruleset(*t.node("director"));
  EXPECT_EQ(shell_command(step),
            "ip netns exec ipvsx-director nft -f - <<'EOF'\n" + ruleset + "EOF");
  EXPECT_EQ(undo_command(step), "ip netns exec ipvsx-director nft delete table inet labctl");
  EXPECT_EQ(describe(step), "load packet rules (nft table inet labctl) in ipvsx-director");
  const std::string script = render_script(p);
  EXPECT_NE(script.find("ip netns exec ipvsx-director nft -f - <<'EOF'\n" + ruleset + "EOF\n"),
            std::string::npos)
      << script;
  EXPECT_NE(script.find("command -v nft >/dev/null"), std::string::npos);
  auto json = plan_json(p);
  EXPECT_EQ(json["steps"][static_cast<std::size_t>(nft)]["fields"]["ruleset"], ruleset);
}

TEST(IpvsFeaturesPlan, IpvsadmSpellsEveryOption) {
  Topology t = features();
  auto add = [&](const std::string& name) {
    return shell_command(step::AddIpvsService{"d", svc(t, name)});
  };
  EXPECT_EQ(add("hash"),
            "ip netns exec d ipvsadm -A -t 10.60.0.100:81 -s sh -b sh-fallback,sh-port");
  EXPECT_EQ(add("dns"), "ip netns exec d ipvsadm -A -u 10.60.0.100:53 -s wlc -o");
  EXPECT_EQ(add("any"), "ip netns exec d ipvsadm -A -t 10.60.0.101:0 -s wlc -p 60 -M 255.255.255.0")
      << "ipvsadm reads -M 24 as the mask 0.0.0.24: IPv4 masks go dotted";
  EXPECT_EQ(add("web6"), "ip netns exec d ipvsadm -A -f 2 -6 -s mh -p 60 -M 64 -b mh-port");
  EXPECT_EQ(add("assoc"), "ip netns exec d ipvsadm -A --sctp-service 10.60.0.100:5000 -s rr");
  const auto& web6 = svc(t, "web6");
  EXPECT_EQ(shell_command(step::AddIpvsDest{"d", web6, web6.real_servers[0]}),
            "ip netns exec d ipvsadm -a -f 2 -6 -r fd60::11 -g -w 1")
      << "ipvsadm refuses a bracketed IPv6 address without a port";
  const auto& any = svc(t, "any");
  EXPECT_EQ(shell_command(step::AddIpvsDest{"d", any, any.real_servers[0]}),
            "ip netns exec d ipvsadm -a -t 10.60.0.101:0 -r 10.60.0.11 -g -w 1");
  const auto& self = svc(t, "self");
  EXPECT_EQ(shell_command(step::AddIpvsDest{"d", self, self.real_servers[0]}),
            "ip netns exec d ipvsadm -a -t 10.60.0.100:8080 -r 10.60.0.100:8080 -g -w 1");
}

// The VIP-on-lo rule used to reject a fwmark DR lab (the VIP belonged to no service); the
// marked address is the fwmark service's VIP now.
TEST(IpvsFeaturesModel, FwmarkDrLabLoadsWithoutWarnings) {
  auto loaded = load_topology(LABCTL_TEST_DATA "/fwmark-dr.toml");
  std::string diags;
  for (const auto& d : loaded.diagnostics) diags += format_diagnostic(d) + "\n";
  ASSERT_TRUE(loaded.ok()) << diags;
  EXPECT_TRUE(loaded.diagnostics.empty()) << diags;
}

// The marked address is the VIP a DR real server must hold, as for any VIP.
TEST(IpvsFeaturesModel, FwmarkDrRealServerWithoutTheMarkedVipIsWarned) {
  std::ifstream in(LABCTL_TEST_DATA "/fwmark-dr.toml");
  std::stringstream text;
  text << in.rdbuf();
  std::string s = text.str();
  const std::string rs2_lo = "[nodes.rs2]\ninterfaces.eth0 = { switch = \"lan\", addresses = [\"10.50.0.12/24\"] }\n"
                             "lo = [\"10.50.0.100/32\"]\n";
  ASSERT_NE(s.find(rs2_lo), std::string::npos);
  s.replace(s.find(rs2_lo), rs2_lo.size(),
            "[nodes.rs2]\ninterfaces.eth0 = { switch = \"lan\", addresses = [\"10.50.0.12/24\"] }\n");
  auto loaded = parse_topology(s, "fwmark-dr.toml");
  ASSERT_TRUE(loaded.ok());
  std::string all;
  for (const auto& d : loaded.diagnostics) all += format_diagnostic(d) + "\n";
  EXPECT_NE(all.find("warning: DR real server rs2 does not have VIP 10.50.0.100 on lo"), std::string::npos) << all;
  EXPECT_EQ(all.find("rs1 does not have"), std::string::npos) << all;
}

TEST(IpvsFeaturesModel, FwmarkServiceWithoutMarksIsAWarning) {
  const std::string path = "/tmp/labctl-unit-fwmark-nomarks.toml";
  std::ofstream(path) << R"(version = 1
name = "t"
[switches.lan]
[nodes.d]
interfaces.eth0 = { switch = "lan", addresses = ["10.0.0.2/24"] }
[nodes.d.services.m]
fwmark = 5
real_servers = [{ node = "r" }]
[[nodes.d.marks]]
proto = "udp"
dport = 53
mark = 6
[nodes.r]
interfaces.eth0 = { switch = "lan", addresses = ["10.0.0.11/24"] }
)";
  auto loaded = load_topology(path);
  std::remove(path.c_str());
  ASSERT_TRUE(loaded.ok());
  std::string all;
  for (const auto& d : loaded.diagnostics) all += format_diagnostic(d) + "\n";
  EXPECT_NE(all.find(":7:10: warning: fwmark service m on d waits for packets with mark 5"),
            std::string::npos)
      << all;
  EXPECT_NE(
      all.find("warning: mark rule 1 of node d sets mark 6, but node d has no fwmark service"),
      std::string::npos)
      << all;
}

}  // namespace
}  // namespace labctl
