// Unit tier: a node's `nat` rules (issue 14) from TOML to the model, to nft text beside
// the marks, to the plan, dry-run and explain; and what the validator makes of them: a NAT
// director that masquerades towards real servers without a route back, real servers that
// take the VIP by redirect, clients behind a router. Malformed rules are in tests/data/bad
// (nat-*.toml) with their positions.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "labctl/model/load.h"
#include "labctl/plan/explain.h"
#include "labctl/plan/nft.h"
#include "labctl/plan/plan.h"
#include "labctl/plan/planner.h"
#include "labctl/plan/render.h"

namespace labctl {
namespace {

std::string text_of(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string diags_of(const LoadResult& r) {
  std::string all;
  for (const auto& d : r.diagnostics) all += format_diagnostic(d) + "\n";
  return all;
}

/// The fixture, loaded; it must be valid and, when `quiet`, without any warning.
Topology fixture(const std::string& name, bool quiet = true) {
  auto r = load_topology(std::string(LABCTL_TEST_DATA) + "/" + name);
  EXPECT_TRUE(r.ok()) << diags_of(r);
  if (quiet) {
    EXPECT_TRUE(r.diagnostics.empty()) << name << ":\n" << diags_of(r);
  }
  return r.topology ? *r.topology : Topology{};
}

/// The fixture's text with `from` replaced by `to` (which must be there), loaded.
LoadResult edited(const std::string& name, const std::string& from, const std::string& to) {
  std::string s = text_of(std::string(LABCTL_TEST_DATA) + "/" + name);
  auto at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return parse_topology(s, name);
}

TEST(NatRulesModel, EveryKeyIsLoadedAsWritten) {
  Topology t = fixture("host/nat.toml");
  const Node* router = t.node("router");
  ASSERT_NE(router, nullptr);
  ASSERT_EQ(router->nat.size(), 2u);
  const NatRule& masq = router->nat[0];
  EXPECT_EQ(masq.type, NatType::Masquerade);
  EXPECT_EQ(masq.oif, "eth1");
  EXPECT_EQ(masq.src->str(), "10.81.0.0/24");
  EXPECT_TRUE(masq.source_nat());
  const NatRule& dnat = router->nat[1];
  EXPECT_EQ(dnat.type, NatType::Dnat);
  EXPECT_EQ(dnat.iif, "eth1");
  EXPECT_EQ(dnat.proto, Proto::Tcp);
  EXPECT_EQ(dnat.dport, (std::vector<uint16_t>{8080}));
  EXPECT_EQ(dnat.to->str(), "10.81.0.10");
  EXPECT_EQ(dnat.to_port, 80);
  EXPECT_FALSE(dnat.source_nat());
  const NatRule& redir = t.node("server")->nat.at(0);
  EXPECT_EQ(redir.type, NatType::Redirect);
  EXPECT_FALSE(redir.to.has_value());
  EXPECT_EQ(redir.to_port, 8081);
}

TEST(NatRulesRender, EveryTypeAsNftWritesAndListsIt) {
  NatRule m;
  m.oif = "eth1";
  EXPECT_EQ(nft_nat_rule(m), "oifname \"eth1\" masquerade");
  NatRule s;
  s.type = NatType::Snat;
  s.iif = "eth0";
  s.oif = "eth1";
  s.src = IpPrefix::parse("10.99.0.0/24");
  s.to = IpAddr::parse("10.0.0.1");
  EXPECT_EQ(nft_nat_rule(s),
            "iifname \"eth0\" oifname \"eth1\" ip saddr 10.99.0.0/24 snat ip to 10.0.0.1");
  NatRule d;
  d.type = NatType::Dnat;
  d.proto = Proto::Udp;
  d.dst = IpPrefix::parse("10.0.0.102/32");
  d.to = IpAddr::parse("10.0.0.5");
  d.to_port = 53;
  EXPECT_EQ(nft_nat_rule(d), "ip daddr 10.0.0.102 meta l4proto udp dnat ip to 10.0.0.5:53");
  NatRule d6;
  d6.type = NatType::Dnat;
  d6.proto = Proto::Tcp;
  d6.dst = IpPrefix::parse("fd00::100/128");
  d6.dport = {80};
  d6.to = IpAddr::parse("fd00::5");
  d6.to_port = 8080;
  EXPECT_EQ(nft_nat_rule(d6), "ip6 daddr fd00::100 tcp dport 80 dnat ip6 to [fd00::5]:8080")
      << "an IPv6 address with a port is bracketed";
  NatRule r;
  r.type = NatType::Redirect;
  r.proto = Proto::Tcp;
  r.dst = IpPrefix::parse("10.0.0.100/32");
  r.dport = {80};
  EXPECT_EQ(nft_nat_rule(r), "ip daddr 10.0.0.100 tcp dport 80 redirect");
  r.to_port = 8080;
  EXPECT_EQ(nft_nat_rule(r), "ip daddr 10.0.0.100 tcp dport 80 redirect to :8080");
}

TEST(NatRulesRender, OneTableWithTheMarksAndANatChainPerHook) {
  Node n;
  MarkRule mk;
  mk.proto = Proto::Tcp;
  mk.dport = {80};
  mk.mark = 1;
  n.marks.push_back(mk);
  NatRule masq;
  masq.oif = "eth1";
  NatRule redir;
  redir.type = NatType::Redirect;
  redir.dst = IpPrefix::parse("10.0.0.100/32");
  n.nat = {masq, redir};
  EXPECT_EQ(nft_ruleset(n),
            "table inet labctl {\n"
            "  chain prerouting {\n"
            "    type filter hook prerouting priority mangle; policy accept;\n"
            "    tcp dport 80 meta mark set 1\n"
            "  }\n"
            "  chain nat_prerouting {\n"
            "    type nat hook prerouting priority dstnat; policy accept;\n"
            "    ip daddr 10.0.0.100 redirect\n"
            "  }\n"
            "  chain nat_postrouting {\n"
            "    type nat hook postrouting priority srcnat; policy accept;\n"
            "    oifname \"eth1\" masquerade\n"
            "  }\n"
            "}\n");
  n.nat.clear();
  EXPECT_EQ(nft_ruleset(n), nft_mark_ruleset(n)) << "marks alone: the table as before";
  n.marks.clear();
  EXPECT_EQ(nft_ruleset(n), "") << "no rules, no table";
  n.nat = {masq};
  EXPECT_EQ(nft_ruleset(n).find("nat_prerouting"), std::string::npos) << "no empty chains";
}

TEST(NatRulesPlan, DryRunAndExplainShowTheTableUpApplies) {
  Topology t = fixture("host/nat.toml");
  Plan p = make_plan(t);
  std::vector<const PlannedStep*> nft;
  for (const auto& s : p.steps)
    if (std::holds_alternative<step::ApplyNftRules>(s.step)) nft.push_back(&s);
  ASSERT_EQ(nft.size(), 2u)
      << "one transaction per node with rules (router, server), none for client";
  EXPECT_EQ(nft[0]->node, "router");
  const std::string ruleset = nft_ruleset(*t.node("router"));
  EXPECT_EQ(std::get<step::ApplyNftRules>(nft[0]->step).ruleset, ruleset);
  EXPECT_NE(ruleset.find("    oifname \"eth1\" ip saddr 10.81.0.0/24 masquerade\n"),
            std::string::npos)
      << ruleset;
  EXPECT_NE(
      ruleset.find(
          "    iifname \"eth1\" ip daddr 10.82.0.1 tcp dport 8080 dnat ip to 10.81.0.10:80\n"),
      std::string::npos)
      << ruleset;
  EXPECT_NE(nft[0]->why.find("source NAT rule"), std::string::npos) << nft[0]->why;
  EXPECT_NE(nft[0]->why.find("destination NAT rule"), std::string::npos) << nft[0]->why;
  const std::string script = render_script(p);
  EXPECT_NE(script.find("ip netns exec nat-router nft -f - <<'EOF'\n" + ruleset + "EOF\n"),
            std::string::npos)
      << script;
  EXPECT_NE(script.find("command -v nft >/dev/null"), std::string::npos);
  EXPECT_EQ(describe(nft[1]->step), "load packet rules (nft table inet labctl) in nat-server");
  const std::string explained = render_explain(t, p);
  EXPECT_NE(explained.find("    nat     ip daddr 10.82.0.100 tcp dport 80 redirect to :8081\n"),
            std::string::npos)
      << explained;
  EXPECT_NE(explained.find("nft -f -"), std::string::npos) << explained;
}

// Issue 14, false positive: real servers without a route back through the director, whose
// director masquerades towards them, were rejected by the nat-route rule.
TEST(NatRulesValidate, MasqueradingNatDirectorLoadsWithoutDiagnostics) {
  Topology t = fixture("nat-masq.toml");
  EXPECT_TRUE(t.node("rs1")->routes.empty());
  auto without = edited("nat-masq.toml",
                        "[[nodes.director.nat]]\ntype = \"masquerade\"\noif = \"eth1\"\n", "");
  EXPECT_FALSE(without.ok()) << "without the masquerade the real servers cannot answer";
  EXPECT_NE(diags_of(without).find(
                "error: NAT real server rs1 has no route back to the client side 192.168.91.0/24"),
            std::string::npos)
      << diags_of(without);
  // A masquerade limited to other destinations does not help the real servers.
  auto elsewhere = edited("nat-masq.toml", "type = \"masquerade\"\noif = \"eth1\"\n",
                          "type = \"masquerade\"\noif = \"eth1\"\ndst = \"10.92.0.200\"\n");
  EXPECT_FALSE(elsewhere.ok()) << diags_of(elsewhere);
}

// Issue 14, false negative: clients behind a router whose network the real servers do not
// route back; the masquerading router in nat-masq.toml makes them fine, without it the
// service is an error at its line.
TEST(NatRulesValidate, ClientsBehindARouterNeedARouteBackOrAMasquerade) {
  auto r = edited(
      "nat-masq.toml",
      "[[nodes.router.nat]]\ntype = \"masquerade\"\noif = \"eth1\"\nsrc = \"10.91.0.0/24\"\n", "");
  // Without its masquerade the router's clients arrive with 10.91.0.10, which the director
  // masquerades on towards the real servers, but has no route back to.
  EXPECT_NE(
      diags_of(r).find(
          "error: service web: director director has no route back to client client (10.91.0.10)"),
      std::string::npos)
      << diags_of(r);
  // Now without the director's masquerade, real servers route the director's subnets back
  // but not the clients'.
  std::string s = text_of(LABCTL_TEST_DATA "/nat-masq.toml");
  for (const std::string cut :
       {"[[nodes.router.nat]]\ntype = \"masquerade\"\noif = \"eth1\"\nsrc = \"10.91.0.0/24\"\n",
        "[[nodes.director.nat]]\ntype = \"masquerade\"\noif = \"eth1\"\n"})
    s.erase(s.find(cut), cut.size());
  s.replace(s.find("[nodes.rs1]\n"), 12,
            "[nodes.rs1]\nroutes = [{ to = \"192.168.91.0/24\", via = \"10.92.0.1\" }]\n");
  s.replace(s.find("[nodes.rs2]\n"), 12,
            "[nodes.rs2]\nroutes = [{ to = \"192.168.91.0/24\", via = \"10.92.0.1\" }]\n");
  s.replace(s.find("sysctl.net.ipv4.ip_forward = 1\n# IPVS"), 31,
            "sysctl.net.ipv4.ip_forward = 1\nroutes = [{ to = \"10.91.0.0/24\", via = "
            "\"192.168.91.1\" }]\n");
  auto bad = parse_topology(s, "nat-masq.toml");
  EXPECT_FALSE(bad.ok());
  const std::string all = diags_of(bad);
  const auto line =
      std::count(s.begin(), s.begin() + s.find("[nodes.director.services.web]"), '\n') + 1;
  EXPECT_NE(
      all.find(fmt::format(
          ":{}:26: error: service web: NAT real server rs1 has no route back to client client "
          "(10.91.0.10)",
          line)),
      std::string::npos)
      << all;
  // A route back for the clients' network makes it valid again.
  std::string fixed = s;
  for (const char* rs : {"[nodes.rs1]\nroutes = [", "[nodes.rs2]\nroutes = ["}) {
    auto at = fixed.find(rs) + std::string(rs).size();
    fixed.insert(at, "{ to = \"10.91.0.0/24\", via = \"10.92.0.1\" }, ");
  }
  auto good = parse_topology(fixed, "nat-masq.toml");
  EXPECT_TRUE(good.ok()) << diags_of(good);
}

// Issue 14, false positive: a DR real server that takes the VIP by redirect does not hold
// it, so neither the VIP-on-lo nor the ARP warnings apply.
TEST(NatRulesValidate, RedirectingDrRealServersGetNoVipOrArpWarnings) {
  fixture("redirect-dr.toml");
  // Without its redirect, rs1 gets all three warnings back.
  auto r = edited("redirect-dr.toml",
                  "[[nodes.rs1.nat]]\ntype = \"redirect\"\nproto = \"tcp\"\ndst = "
                  "\"10.93.0.100\"\ndport = 80\n",
                  "");
  ASSERT_TRUE(r.ok()) << diags_of(r);
  const std::string all = diags_of(r);
  EXPECT_NE(all.find("warning: DR real server rs1 does not have VIP 10.93.0.100 on lo"),
            std::string::npos)
      << all;
  EXPECT_NE(all.find("warning: DR real server rs1 would answer ARP"), std::string::npos) << all;
  EXPECT_EQ(all.find("rs2"), std::string::npos) << all;
  // A redirect of another port does not take the service's VIP.
  auto other = edited("redirect-dr.toml", "dst = \"10.93.0.100\"\ndport = 80\n\n[nodes.rs2]",
                      "dst = \"10.93.0.100\"\ndport = 81\n\n[nodes.rs2]");
  EXPECT_NE(diags_of(other).find("rs1 does not have VIP 10.93.0.100 on lo"), std::string::npos)
      << diags_of(other);
  // Nor does one on an interface the director does not reach it by.
  auto iif = edited("redirect-dr.toml", "iif = \"eth0\"", "iif = \"lo\"");
  EXPECT_NE(diags_of(iif).find("rs2 does not have VIP 10.93.0.100 on lo"), std::string::npos)
      << diags_of(iif);
}

TEST(NatRulesValidate, SnatToAForeignAddressIsAWarning) {
  auto r = edited("host/nat.toml", "type = \"masquerade\"\noif = \"eth1\"\n",
                  "type = \"snat\"\noif = \"eth1\"\nto = \"10.82.0.77\"\n");
  ASSERT_TRUE(r.ok()) << diags_of(r);
  EXPECT_NE(
      diags_of(r).find(
          "warning: nat rule 1 of node router rewrites sources to 10.82.0.77, which is not an "
          "address of node router"),
      std::string::npos)
      << diags_of(r);
}

}  // namespace
}  // namespace labctl
