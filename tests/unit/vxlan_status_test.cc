// Unit tier: `labctl status` of a switch stretched across hosts shows each VXLAN device's
// VNI, local address, port and the remotes of its all-zero entries, in text and in --json.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "labctl/lab/status.h"

namespace labctl {
namespace {

IpAddr A(const char* text) { return *IpAddr::parse(text); }

TEST(VxlanStatus, ShowsVniLocalPortAndRemotes) {
  LabStatus s;
  s.lab = "l";
  s.has_state = true;
  NetnsStatus n;
  n.ns = "l-lan";
  n.member = "lan";
  LinkInfo br;
  br.name = "lan";
  br.index = 2;
  br.kind = "bridge";
  br.up = true;
  br.mtu = 1500;
  LinkInfo vx;
  vx.name = "vx-lan";
  vx.index = 3;
  vx.kind = "vxlan";
  vx.mtu = 1450;
  vx.master = 2;
  vx.vxlan = VxlanInfo{4242, A("192.168.77.1"), 4789};
  n.links = {br, vx};
  for (const char* r : {"192.168.77.2", "192.168.77.3"}) {
    FdbEntry e;
    e.dev = "vx-lan";
    e.index = 3;
    e.mac = "00:00:00:00:00:00";
    e.dst = A(r);
    n.vxlan_remotes.push_back(e);
  }
  s.namespaces.push_back(n);
  const std::string text = render_status(s);
  EXPECT_NE(text.find("  vx-lan     vxlan  DOWN  mtu 1450  master lan  vni 4242 local 192.168.77.1 port "
                      "4789 remotes 192.168.77.2,192.168.77.3\n"),
            std::string::npos)
      << text;
  EXPECT_EQ(link_vxlan(n, br), std::nullopt);
  nlohmann::json j = status_json(s);
  EXPECT_EQ(j["nodes"][0]["links"][1]["vxlan"],
            (nlohmann::json{{"vni", 4242}, {"local", "192.168.77.1"}, {"port", 4789},
                            {"remotes", {"192.168.77.2", "192.168.77.3"}}}));
  EXPECT_FALSE(j["nodes"][0]["links"][0].contains("vxlan"));
}

}  // namespace
}  // namespace labctl
