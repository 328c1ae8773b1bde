// Positions kept at parse time (model/located.h): each key of an object's table, and each
// element of a list, as the later checks blame them.
#include <gtest/gtest.h>

#include "labctl/model/load.h"
#include "labctl/model/located.h"

namespace labctl {
namespace {

TEST(KeyPositions, KeyAndElementOrFallback) {
  KeyPositions k;
  k.add("via", {3, 7});
  k.add("addresses", {4, 13}, {{4, 14}, {4, 30}});
  k.add("mtu", {0, 0});
  const Pos fb{1, 1};
  EXPECT_EQ(k.of("via", fb).line, 3);
  EXPECT_EQ(k.of("via", fb).col, 7);
  EXPECT_EQ(k.of("dev", fb).line, 1) << "an absent key falls back";
  EXPECT_EQ(k.of("mtu", fb).line, 1) << "a key without a position falls back";
  EXPECT_EQ(k.of("addresses", 1, fb).col, 30);
  EXPECT_EQ(k.of("addresses", 2, fb).line, 1) << "past the end falls back";
  EXPECT_EQ(k.of("via", 0, fb).line, 1) << "a value that is no list has no elements";
}

TEST(KeyPositions, ParseKeepsThePositionsOfAnObjectsKeys) {
  const char* text = R"(version = 1
name = "kp"
[nodes.a.interfaces.eth0]
switch = "s"
addresses = ["10.0.0.1/24",
             "10.0.0.2/24"]
[nodes.a]
routes = [{ to = "default", via = "10.0.0.254" }]
[switches.s]
)";
  LoadResult r = parse_topology(text, "kp.toml");
  ASSERT_TRUE(r.topology) << (r.diagnostics.empty() ? "" : r.diagnostics[0].message);
  const Node& a = *r.topology->node("a");
  const Interface& i = a.interfaces.at(0);
  EXPECT_EQ(i.keys.of("switch", {}).line, 4);
  EXPECT_EQ(i.keys.of("addresses", 1, {}).line, 6);
  EXPECT_EQ(i.keys.of("addresses", 1, {}).col, 14);
  EXPECT_EQ(a.routes.at(0).keys.of("via", {}).line, 8);
  EXPECT_EQ(a.routes.at(0).keys.of("via", {}).col, 35);
}

}  // namespace
}  // namespace labctl
