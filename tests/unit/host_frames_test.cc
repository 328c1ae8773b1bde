// The lines a host of a lab across hosts sends a trace (trace/host_frames.h): what one side
// writes the other reads back exactly, and a garbled line is refused, naming it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "labctl/trace/host_frames.h"

namespace labctl {
namespace {

using ::testing::HasSubstr;

TEST(HostFrames, WhatOneHostWritesTheTraceReadsBack) {
  HostFrames got;
  ASSERT_TRUE(got.take(ifaces_line({{"rs1", "eth0", "02:00:00:00:00:01"}, {"rs1", "tunl0", ""}})));
  EXPECT_FALSE(got.ready);
  ASSERT_TRUE(got.take(kFramesReady));
  EXPECT_TRUE(got.ready);
  CapturedFrame f;
  f.iface = 1;
  f.dir = Direction::Out;
  f.t_ns = 1765000000123456789;
  f.link = LinkType::Raw;
  f.wire_len = 1500;
  f.data = {0x45, 0x00, 0xff, 0x0a, 0x10};
  ASSERT_TRUE(got.take(frame_line(f)));
  ASSERT_EQ(got.ifaces.size(), 2u);
  EXPECT_EQ(got.ifaces[0].node, "rs1");
  EXPECT_EQ(got.ifaces[0].mac, "02:00:00:00:00:01");
  EXPECT_EQ(got.ifaces[1].iface, "tunl0");
  ASSERT_EQ(got.frames.size(), 1u);
  const CapturedFrame& g = got.frames[0];
  EXPECT_EQ(g.iface, 1u);
  EXPECT_EQ(g.dir, Direction::Out);
  EXPECT_EQ(g.t_ns, f.t_ns);
  EXPECT_EQ(g.link, LinkType::Raw);
  EXPECT_EQ(g.wire_len, 1500u);
  EXPECT_EQ(g.data, f.data);
}

TEST(HostFrames, AGarbledLineIsRefusedNamingIt) {
  HostFrames got;
  ASSERT_TRUE(got.take(ifaces_line({{"rs1", "eth0", ""}})));
  auto refused = [&](const std::string& line, const std::string& why) {
    Status st = got.take(line);
    ASSERT_FALSE(st) << line;
    EXPECT_THAT(st.error().message, HasSubstr(why)) << st.error().message;
    EXPECT_THAT(st.error().message, HasSubstr(line.substr(0, 20)));
  };
  refused("labctl: error: no such lab", "not a JSON object");
  refused(R"({"i":3,"d":"in","t":1,"l":"eth","w":60,"x":"00"})", "interface 3 was never listed");
  refused(R"({"i":0,"d":"up","t":1,"l":"eth","w":60,"x":"00"})", "direction up");
  refused(R"({"i":0,"d":"in","t":1,"l":"ppp","w":60,"x":"00"})", "link type");
  refused(R"({"i":0,"d":"in","t":1,"l":"eth","w":60,"x":"0g"})", "not in hex");
  refused(R"({"i":0,"d":"in","t":1,"l":"eth","w":60,"x":"abc"})", "not in hex");
  refused(R"({"i":0,"d":"in","t":1,"l":"eth","w":60})", "x");
  EXPECT_TRUE(got.frames.empty());
}

}  // namespace
}  // namespace labctl
