// `labctl up --dry-run` output is a working lab: for each demo the rendered bash script is
// run as is, the client fetches http://VIP/ and must get answers from the real servers
// (through IPVS in NAT, DR or TUN mode), and the teardown script must leave nothing.
#include <filesystem>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "tests/kernel/kernel_test.h"

#include "labctl/plan/planner.h"
#include "labctl/base/shell_quote.h"
#include "labctl/model/load.h"
#include "tests/host/host_test.h"
#include "tests/host/script_lab.h"

namespace labctl {
namespace {

/// Loads a kernel feature's module if it is one; true when the feature is then present.
bool have(const std::string& module, const std::string& marker) {
  (void)test::run_shell("modprobe " + module);
  return std::filesystem::exists(marker);
}

/// One HTTP GET with nothing but bash (/dev/tcp, as in the course notes), bounded in time;
/// prints the last line of the reply: the real server's name.
std::string http_get(const IpAddr& vip, uint16_t port) {
  std::string get = "exec 3<>/dev/tcp/" + vip.str() + "/" + std::to_string(port) +
                    " && printf \"GET / HTTP/1.0\\r\\n\\r\\n\" >&3 && tail -n1 <&3";
  return "timeout 3 bash -c " + shell_quote(get);
}

class DryRunDemo : public ::testing::TestWithParam<const char*> {};

TEST_P(DryRunDemo, ScriptBuildsALabWhoseVipAnswersFromEveryRealServer) {
  LABCTL_REQUIRE_ROOT();
  if (!have("ip_vs", "/proc/net/ip_vs"))
    LABCTL_KERNEL_SKIP() << "this kernel has no IPVS (CONFIG_IP_VS); run the kernel tier in the micro-VM";
  if (!have("ipip", "/sys/module/ipip"))
    LABCTL_KERNEL_SKIP() << "this kernel has no IPIP (CONFIG_NET_IPIP); run the kernel tier in the micro-VM";
  LoadResult loaded = load_topology(GetParam());
  ASSERT_TRUE(loaded.ok());
  const Topology& t = *loaded.topology;
  for (const auto& n : t.nodes)
    ASSERT_FALSE(std::filesystem::exists("/run/netns/" + netns_name(t.name, n.name)))
        << "a lab named " << t.name << " already exists here; not touching it";
  Plan plan = make_plan(t);

  const VirtualService* svc = nullptr;
  std::set<std::string> real_servers;
  for (const auto& n : t.nodes)
    for (const auto& s : n.services) svc = svc ? svc : &s;
  ASSERT_NE(svc, nullptr);
  for (const auto& n : t.nodes)
    for (const auto& i : n.interfaces)
      for (const auto& a : i.addresses)
        for (const auto& rs : svc->real_servers)
          if (a.addr == rs.addr) real_servers.insert(n.name);
  ASSERT_EQ(real_servers.size(), svc->real_servers.size());
  {
    test::ScriptLab lab(plan);
    auto up = lab.up();
    ASSERT_EQ(up.status, 0) << up.output;
    std::set<std::string> answered;
    for (int i = 0; i < 12 && answered.size() < real_servers.size(); ++i) {
      auto r = lab.exec_until_ok("client", http_get(svc->vip, svc->port));
      ASSERT_EQ(r.status, 0) << "GET http://" << svc->vip.str() << "/ from client: " << r.output;
      std::string name = r.output.substr(0, r.output.find('\n'));
      EXPECT_TRUE(real_servers.count(name)) << "unexpected answer: " << r.output;
      answered.insert(name);
    }
    EXPECT_EQ(answered, real_servers);
  }
  EXPECT_FALSE(test::any_netns_left(plan));
}

INSTANTIATE_TEST_SUITE_P(Demos, DryRunDemo, ::testing::Values("nat-demo", "dr-demo", "tun-demo"),
                         [](const auto& p) {
                           std::string n = p.param;
                           return n.substr(0, n.find('-'));
                         });

}  // namespace
}  // namespace labctl
