// Unit tier: the director-bytes check's model half (its bounds, their defaults from the
// service's method, the services it refuses; tests/data/bad holds its malformed keys) and
// its pure judgement of what a run saw (the kernel tier runs it on nat-vs-dr).
#include <stdexcept>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "labctl/checks/director_bytes.h"
#include "labctl/model/load.h"
#include "tests/unit/diagnostics_text.h"

namespace labctl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A director with a NAT service (nat1) and a DR one (dr1) on one switch; `checks` appended.
std::string lab(const std::string& checks) {
  return R"(
version = 1
name = "db"
[switches.lan]
[switches.internal]
[nodes.client]
interfaces.eth0 = { switch = "lan", addresses = ["10.0.0.10/24"] }
[nodes.director]
interfaces.eth0 = { switch = "lan", addresses = ["10.0.0.2/24", "10.0.0.100/32", "10.0.0.200/32"] }
interfaces.eth1 = { switch = "internal", addresses = ["10.1.0.1/24"] }
sysctl.net.ipv4.ip_forward = 1
[nodes.director.services.nat]
vip = "10.0.0.100"
port = 80
method = "nat"
real_servers = [{ node = "nat1" }]
[nodes.director.services.dr]
vip = "10.0.0.200"
port = 80
method = "dr"
real_servers = [{ node = "dr1" }]
[nodes.nat1]
interfaces.eth0 = { switch = "internal", addresses = ["10.1.0.11/24"] }
routes = [{ to = "default", via = "10.1.0.1" }]
agents.web = { kind = "http", size = 1048576 }
[nodes.dr1]
interfaces.eth0 = { switch = "lan", addresses = ["10.0.0.21/24"] }
lo = ["10.0.0.200/32"]
sysctl = { "net.ipv4.conf.all.arp_ignore" = 1, "net.ipv4.conf.eth0.arp_ignore" = 1, "net.ipv4.conf.all.arp_announce" = 2, "net.ipv4.conf.eth0.arp_announce" = 2 }
agents.web = { kind = "http", size = 1048576 }
)" + checks;
}

const Check& named(const Topology& t, const std::string& name) {
  for (const auto& c : t.checks)
    if (c.name == name) return c;
  throw std::runtime_error("no check " + name);
}

using test::diagnostics_text;

TEST(DirectorBytes, EachBoundLeftOutComesFromTheServicesMethod) {
  auto r = parse_topology(lab(R"(
[checks.nat]
kind = "director-bytes"
from = "client"
service = "nat"
[checks.dr]
kind = "director-bytes"
from = "client"
service = "dr"
[checks.dr-given]
kind = "director-bytes"
from = "client"
service = "dr"
out = ">= 95%"
requests = 2
path = "/big"
)"),
                          "t.toml");
  ASSERT_TRUE(r.ok()) << diagnostics_text(r);
  EXPECT_TRUE(r.diagnostics.empty()) << diagnostics_text(r);
  const Check& nat = named(*r.topology, "nat");
  EXPECT_EQ(nat.params.text("out"), ">= 95%");
  EXPECT_FALSE(nat.params.has("in")) << "NAT's requests and ACKs are no lesson: no bound on them";
  EXPECT_EQ(nat.params.integer("requests"), 4);
  EXPECT_EQ(nat.params.text("path"), "/");
  EXPECT_EQ(nat.port, 80);
  EXPECT_EQ(nat.to_text, "10.0.0.100");
  const Check& dr = named(*r.topology, "dr");
  EXPECT_EQ(dr.params.text("out"), "<= 0%");
  EXPECT_EQ(dr.params.text("in"), "<= 5%");
  // What the file says wins; what it leaves out is still the method's.
  const Check& given = named(*r.topology, "dr-given");
  EXPECT_EQ(given.params.text("out"), ">= 95%");
  EXPECT_EQ(given.params.text("in"), "<= 5%");
  EXPECT_EQ(given.params.integer("requests"), 2);
  EXPECT_EQ(given.params.text("path"), "/big");
}

TEST(DirectorBytes, AServiceOfMixedMethodsNeedsABoundOfItsOwn) {
  std::string text = lab("");
  text.replace(text.find(R"(real_servers = [{ node = "dr1" }])"), 33,
               R"(real_servers = [{ node = "dr1" }, { node = "nat1", method = "nat" }])");
  const std::string check = "[checks.mixed]\nkind = \"director-bytes\"\nfrom = \"client\"\nservice = \"dr\"\n";
  auto bare = parse_topology(text + check, "t.toml");
  EXPECT_FALSE(bare.ok());
  EXPECT_THAT(diagnostics_text(bare), HasSubstr("service dr mixes forwarding methods"));
  auto given = parse_topology(text + check + "out = \">= 40%\"\n", "t.toml");
  ASSERT_TRUE(given.ok()) << diagnostics_text(given);
  EXPECT_EQ(named(*given.topology, "mixed").params.text("out"), ">= 40%");
  EXPECT_FALSE(named(*given.topology, "mixed").params.has("in"));
}

// ---- the judgement, on what nat-vs-dr's runs saw in the micro-VM ----

Check bytes_check(const std::string& out, const std::string& in = "") {
  Check c;
  c.name = "b";
  c.kind = "director-bytes";
  c.from = "client";
  c.to_text = "10.30.0.100";
  c.port = 80;
  c.params.set("path", std::string("/"));
  if (!out.empty()) c.params.set("out", out);
  if (!in.empty()) c.params.set("in", in);
  return c;
}

check_kind::DirectorBytesSeen seen(uint64_t body, uint64_t out, uint64_t in) {
  check_kind::DirectorBytesSeen s;
  s.planned = s.answered = 4;
  s.body = body;
  s.moved.conns = 4;
  s.moved.outbytes = out;
  s.moved.outpkts = out ? 157 : 0;
  s.moved.inbytes = in;
  s.moved.inpkts = 148;
  return s;
}

constexpr uint64_t kMiB = 1 << 20;

TEST(DirectorBytesJudge, NatRepliesCrossTheDirector) {
  auto r = check_kind::judge_director_bytes(bytes_check(">= 95%"), seen(4 * kMiB, 4 * kMiB + 12000, 7874));
  EXPECT_TRUE(r.passed) << r.detail;
  EXPECT_EQ(r.detail,
            "GET http://10.30.0.100:80/ x4 from client: 4 MiB of bodies; the director's IPVS (exact per-cpu totals) "
            "scheduled 4 connections and counted 4.01 MiB out in 157 packets and 7.69 KiB in in 148 packets: out "
            "100%, in 0.188% of the body bytes: every reply crossed the director");
}

TEST(DirectorBytesJudge, DrRepliesBypassItAndNatBoundsSaySo) {
  auto dr = seen(4 * kMiB, 0, 5900);
  EXPECT_TRUE(check_kind::judge_director_bytes(bytes_check("<= 0%", "<= 5%"), dr).passed);
  auto r = check_kind::judge_director_bytes(bytes_check(">= 95%", "<= 0.1%"), dr);
  EXPECT_FALSE(r.passed);
  EXPECT_THAT(r.detail, HasSubstr("0 bytes out in 0 packets"));
  EXPECT_THAT(r.detail, HasSubstr(": the replies bypassed the director (what went in: the requests and the "
                                  "client's ACKs); out 0% is not >= 95%; in 0.141% is not <= 0.1%"));
  EXPECT_THAT(r.detail, Not(HasSubstr("size = "))) << "1 MiB bodies outweigh their headers";
}

TEST(DirectorBytesJudge, TinyBodiesAreNamedWhenTheyBreakABound) {
  auto s = seen(4 * 5, 0, 4 * 400);  // "rs1\n" each: the requests outweigh the pages
  auto r = check_kind::judge_director_bytes(bytes_check("<= 0%", "<= 5%"), s);
  EXPECT_FALSE(r.passed);
  EXPECT_THAT(r.detail, HasSubstr("in 8e+03% is not <= 5% (bodies of 5 bytes each weigh less than their TCP/IP "
                                  "and HTTP headers: give the real servers' http agents a size, e.g. size = "
                                  "1048576)"));
}

TEST(DirectorBytesJudge, AFailedGetOrNoBodyFailsWithWhatWasCounted) {
  auto s = seen(2 * kMiB + 1000, 2 * kMiB, 3000);
  s.answered = 2;
  s.error = "connect to 10.30.0.100:80: timed out";
  auto r = check_kind::judge_director_bytes(bytes_check(">= 95%"), s);
  EXPECT_FALSE(r.passed);
  EXPECT_THAT(r.detail, HasSubstr("counted 2 MiB out in 157 packets"));
  EXPECT_THAT(r.detail, HasSubstr("; GET 3 failed: connect to 10.30.0.100:80: timed out"));
  auto none = check_kind::judge_director_bytes(bytes_check(">= 95%"), seen(0, 0, 0));
  EXPECT_FALSE(none.passed);
  EXPECT_THAT(none.detail, HasSubstr("no body bytes arrived"));
}

}  // namespace
}  // namespace labctl
