#include "labctl/plan/plan.h"

#include <sys/socket.h>

#include <set>

#include <gtest/gtest.h>

#include "labctl/base/shell_quote.h"
#include "tests/unit/demo_labs.h"

namespace labctl {
namespace {

using test::A;
using test::P;

TEST(ShellQuote, LeavesPlainWordsAndQuotesTheRest) {
  EXPECT_EQ(shell_quote("dr-demo-rs1"), "dr-demo-rs1");
  EXPECT_EQ(shell_quote("10.0.0.1/24"), "10.0.0.1/24");
  EXPECT_EQ(shell_quote("net.ipv4.conf.all.arp_ignore=1"), "net.ipv4.conf.all.arp_ignore=1");
  EXPECT_EQ(shell_quote(""), "''");
  EXPECT_EQ(shell_quote("a b"), "'a b'");
  EXPECT_EQ(shell_quote("[2001:db8::1]:80"), "'[2001:db8::1]:80'");  // globbing brackets
  EXPECT_EQ(shell_quote("it's $HOME"), "'it'\\''s $HOME'");
  EXPECT_EQ(shell_join({"echo", "a b", "c"}), "echo 'a b' c");
}

TEST(NetnsMark, NamesItsLabAndNothingElseIsAMark) {
  EXPECT_EQ(netns_mark("dr-demo"), "labctl:dr-demo");
  EXPECT_EQ(lab_of_mark(netns_mark("dr-demo")), "dr-demo");
  EXPECT_EQ(lab_of_mark(""), std::nullopt);
  EXPECT_EQ(lab_of_mark("my lo"), std::nullopt);
  EXPECT_EQ(lab_of_mark("labctl"), std::nullopt);
}

TEST(StepShell, NamespaceBridgeVethMaster) {
  // Marked as `up` marks it (two commands, so `set -e` stops at a failing add).
  EXPECT_EQ(shell_command(step::CreateNetns{"lab-a", "lab", "a"}),
            "ip netns add lab-a; ip -n lab-a link set dev lo alias labctl:lab");
  EXPECT_EQ(undo_command(step::CreateNetns{"lab-a", "lab", "a"}), "ip netns del lab-a");
  EXPECT_EQ(shell_command(step::CreateBridge{"lab-sw", "sw", 9000}),
            "ip -n lab-sw link add name sw mtu 9000 type bridge mcast_snooping 0");
  step::CreateVeth v{"lab-a", "eth0", "lab-sw", "a-eth0", 1400, "02:00:00:00:00:01", ""};
  EXPECT_EQ(shell_command(v),
            "ip -n lab-a link add name eth0 mtu 1400 address 02:00:00:00:00:01 numtxqueues 1 "
            "numrxqueues 1 type veth peer name a-eth0 netns lab-sw mtu 1400 numtxqueues 1 "
            "numrxqueues 1");
  EXPECT_EQ(undo_command(v), "ip -n lab-a link del dev eth0");
  EXPECT_EQ(describe(v), "create veth eth0 in lab-a (peer a-eth0 in lab-sw)");
  EXPECT_EQ(shell_command(step::SetMaster{"lab-sw", "a-eth0", "sw"}),
            "ip -n lab-sw link set dev a-eth0 master sw");
  EXPECT_EQ(undo_command(step::SetMaster{"lab-sw", "a-eth0", "sw"}),
            "ip -n lab-sw link set dev a-eth0 nomaster");
  EXPECT_EQ(shell_command(step::LinkUp{"lab-a", "lo"}), "ip -n lab-a link set dev lo up");
}

// ip reads a bare "a" or "b" after "link add" as an abbreviation of "address".
TEST(StepShell, DeviceNamesAreNeverMistakenForKeywords) {
  EXPECT_EQ(shell_command(step::CreateBridge{"n", "a", 0}),
            "ip -n n link add name a type bridge mcast_snooping 0");
  EXPECT_EQ(shell_command(step::LinkUp{"n", "b"}), "ip -n n link set dev b up");
  EXPECT_EQ(undo_command(step::CreateBridge{"n", "a", 0}), "ip -n n link del dev a");
}

TEST(StepShell, AddressesAndRoutesIncludingV6) {
  EXPECT_EQ(shell_command(step::AddAddress{"n", "eth0", P("10.0.0.1/24")}),
            "ip -n n addr add 10.0.0.1/24 dev eth0");
  EXPECT_EQ(shell_command(step::AddAddress{"n", "eth0", P("2001:db8::1/64")}),
            "ip -n n addr add 2001:db8::1/64 dev eth0 nodad");
  EXPECT_EQ(undo_command(step::AddAddress{"n", "lo", P("10.0.0.100/32")}),
            "ip -n n addr del 10.0.0.100/32 dev lo");
  EXPECT_EQ(shell_command(step::AddRoute{"n", test::default_via("10.0.0.1")}),
            "ip -n n route add default via 10.0.0.1");
  Route r;
  r.to = P("10.2.0.7/24");  // host bits are cleared: ip refuses them in a route
  r.dev = "eth1";
  EXPECT_EQ(shell_command(step::AddRoute{"n", r}), "ip -n n route add 10.2.0.0/24 dev eth1");
  EXPECT_EQ(undo_command(step::AddRoute{"n", r}), "ip -n n route del 10.2.0.0/24 dev eth1");
  Route v6;
  v6.family = AF_INET6;
  v6.via = A("fe80::1");
  v6.dev = "eth0";
  EXPECT_EQ(shell_command(step::AddRoute{"n", v6}),
            "ip -6 -n n route add default via fe80::1 dev eth0");
}

TEST(StepShell, SysctlAndIpip) {
  step::SetSysctl s{"n", "net.ipv4.conf.all.arp_ignore", "1"};
  EXPECT_EQ(shell_command(s), "ip netns exec n sysctl -qw net.ipv4.conf.all.arp_ignore=1");
  EXPECT_EQ(undo_command(s), "");
  EXPECT_EQ(shell_command(step::EnableIpip{"n"}),
            "modprobe ipip && ip -n n link show dev tunl0 >/dev/null");
  Tunnel t;
  t.name = "tun1";
  t.local = A("10.0.0.1");
  t.remote = A("10.0.0.2");
  t.ttl = 32;
  t.dev = "eth0";
  EXPECT_EQ(shell_command(step::CreateIpip{"n", t}),
            "ip -n n link add name tun1 type ipip local 10.0.0.1 remote 10.0.0.2 ttl 32 dev eth0");
  EXPECT_EQ(undo_command(step::CreateIpip{"n", t}), "ip -n n link del dev tun1");
}

TEST(StepShell, IpvsServicesAndDestsByEveryIdentity) {
  auto svc = test::service("10.0.0.100", 80, FwdMethod::Dr, {"10.0.0.11"});
  svc.persistence = 300;
  EXPECT_EQ(shell_command(step::AddIpvsService{"d", svc}),
            "ip netns exec d ipvsadm -A -t 10.0.0.100:80 -s rr -p 300");
  EXPECT_EQ(undo_command(step::AddIpvsService{"d", svc}),
            "ip netns exec d ipvsadm -D -t 10.0.0.100:80");
  RealServer rs = svc.real_servers[0];
  rs.weight = 3;
  rs.u_thresh = 100;
  rs.l_thresh = 10;
  EXPECT_EQ(shell_command(step::AddIpvsDest{"d", svc, rs}),
            "ip netns exec d ipvsadm -a -t 10.0.0.100:80 -r 10.0.0.11:80 -g -w 3 -x 100 -y 10");
  EXPECT_EQ(undo_command(step::AddIpvsDest{"d", svc, rs}),
            "ip netns exec d ipvsadm -d -t 10.0.0.100:80 -r 10.0.0.11:80");

  auto udp = test::service("10.0.0.100", 53, FwdMethod::Nat, {"10.1.0.11"}, 5353);
  udp.proto = Proto::Udp;
  udp.scheduler = "wlc";
  EXPECT_EQ(shell_command(step::AddIpvsDest{"d", udp, udp.real_servers[0]}),
            "ip netns exec d ipvsadm -a -u 10.0.0.100:53 -r 10.1.0.11:5353 -m -w 1");

  auto mark = test::service("0.0.0.0", 0, FwdMethod::Tun, {"10.2.0.11"});
  mark.fwmark = 7;
  EXPECT_EQ(shell_command(step::AddIpvsService{"d", mark}), "ip netns exec d ipvsadm -A -f 7 -s rr");
  EXPECT_EQ(shell_command(step::AddIpvsDest{"d", mark, mark.real_servers[0]}),
            "ip netns exec d ipvsadm -a -f 7 -r 10.2.0.11 -i -w 1");

  auto v6 = test::service("2001:db8::100", 80, FwdMethod::Dr, {"2001:db8::11"});
  EXPECT_EQ(shell_command(step::AddIpvsDest{"d", v6, v6.real_servers[0]}),
            "ip netns exec d ipvsadm -a -t '[2001:db8::100]:80' -r '[2001:db8::11]:80' -g -w 1");
  EXPECT_EQ(describe(step::AddIpvsDest{"d", v6, v6.real_servers[0]}),
            "add real server 2001:db8::11 (dr) to tcp [2001:db8::100]:80 in d");
}

TEST(StepShell, AgentsRunInTheBackgroundWithPidAndLog) {
  step::StartAgent http{"lab-rs1", "lab", "rs1", test::http_agent(80)};
  EXPECT_EQ(agent_argv(http),
            (std::vector<std::string>{"labagent", "http", "--port", "80", "--name", "rs1"}));
  EXPECT_EQ(shell_command(http),
            "(umask 077 && mkdir -p /run/labctl-script/lab/rs1) && { ip netns exec lab-rs1 labagent http --port 80 --name "
            "rs1 </dev/null >/run/labctl-script/lab/rs1/web.log 2>&1 & echo $! "
            ">/run/labctl-script/lab/rs1/web.pid; }");
  EXPECT_EQ(undo_command(http),
            "kill \"$(cat /run/labctl-script/lab/rs1/web.pid)\" && rm -f /run/labctl-script/lab/rs1/web.pid");

  Agent cmd;
  cmd.name = "talk";
  cmd.kind = "command";
  cmd.argv = {"sh", "-c", "echo 'hi there' > /tmp/x"};
  step::StartAgent c{"lab-c", "lab", "c", cmd};
  EXPECT_NE(shell_command(c).find("ip netns exec lab-c sh -c 'echo '\\''hi there'\\'' > /tmp/x'"),
            std::string::npos)
      << shell_command(c);

  Agent load;
  load.name = "ab";
  load.kind = "load";
  load.params = {{"target", "10.0.0.100:80"}, {"count", "50"}};
  EXPECT_EQ(agent_argv(step::StartAgent{"n", "lab", "client", load}),
            (std::vector<std::string>{"labagent", "load", "--target", "10.0.0.100:80", "--count",
                                      "50"}));
  Agent echo;
  echo.name = "e";
  echo.kind = "echo";
  echo.port = 7;
  echo.params = {{"proto", "udp"}};
  EXPECT_EQ(agent_argv(step::StartAgent{"n", "lab", "rs", echo}),
            (std::vector<std::string>{"labagent", "echo", "--port", "7", "--udp"}));
}

TEST(Step, NetnsAndTypeOfEveryAlternative) {
  Tunnel t;
  std::vector<Step> all = {step::CreateNetns{"a", "l", "m"},
                           step::CreateBridge{"b", "br", 0},
                           step::CreateVeth{"c", "e", "p", "pe", 0, "", ""},
                           step::SetMaster{"d", "x", "br"},
                           step::LinkUp{"e", "x"},
                           step::AddAddress{"f", "x", P("10.0.0.1/24")},
                           step::AddRoute{"g", test::default_via("10.0.0.1")},
                           step::SetSysctl{"h", "k", "v"},
                           step::EnableIpip{"i"},
                           step::CreateIpip{"j", t},
                           step::AddIpvsService{"k", {}},
                           step::AddIpvsDest{"l", {}, {}},
                           step::StartAgent{"m", "l", "n", {}},
                           step::ApplyNftRules{"n", "table inet labctl {}\n"},
                           step::CreateVxlan{"o", "vx", 1, IpAddr{}, {}, 4789, 0, "", "br"}};
  std::set<std::string> types;
  for (std::size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(step_netns(all[i]), std::string(1, static_cast<char>('a' + i)));
    types.insert(step_type(all[i]));
    EXPECT_FALSE(describe(all[i]).empty());
  }
  EXPECT_EQ(types.size(), all.size());
}

}  // namespace
}  // namespace labctl
