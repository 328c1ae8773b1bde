// Kernel tier: agents behind a real LVS-DR VIP. The UDP echo must answer from the VIP (the
// address the datagram was sent to), not from the real server's own address, or a client
// with a connected socket never sees the reply.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "labctl/lab/lifecycle.h"
#include "labctl/lab/state.h"
#include "labctl/model/builtins.h"
#include "labctl/model/load.h"
#include "labctl/plan/planner.h"
#include "tests/kernel/kernel_test.h"

namespace labctl {
namespace {

// dr-demo under a fresh name, plus a UDP service on port 7 and a UDP echo agent on each
// real server.
std::string dr_udp_lab(const std::string& name) {
  const BuiltinTopology* dr = find_builtin("dr-demo");
  std::string t(dr ? dr->text : "");
  t.replace(t.find("name = \"dr-demo\""), std::string("name = \"dr-demo\"").size(),
            "name = \"" + name + "\"");
  const std::string web = "agents.web = { kind = \"http\", port = 80 }\n";
  for (size_t at = t.find(web); at != std::string::npos; at = t.find(web, at + 1))
    t.insert(at + web.size(), "agents.echo = { kind = \"echo\", port = 7, proto = \"udp\" }\n");
  t += "\n[nodes.director.services.echo]\nvip = \"10.10.0.100\"\nport = 7\nproto = \"udp\"\n"
       "method = \"dr\"\nreal_servers = [{ node = \"rs1\" }, { node = \"rs2\" }]\n";
  return t;
}

TEST(KernelAgents, UdpEchoThroughADrVipAnswersFromTheVip) {
  if (::geteuid() != 0) GTEST_SKIP() << "kernel tier needs root";
  if (Status ipvs = test::ipvs_available(); !ipvs) LABCTL_KERNEL_SKIP() << ipvs.error().str();
  const std::string name = "agudp" + std::to_string(std::random_device{}() % 100000);
  auto r = parse_topology(dr_udp_lab(name), "dr-udp.toml");
  ASSERT_TRUE(r.ok()) << (r.diagnostics.empty() ? "" : format_diagnostic(r.diagnostics[0]));
  Status up = lab_up(*r.topology, make_plan(*r.topology), {});
  ASSERT_TRUE(up) << up.error().str();
  auto client = open_netns(netns_name(name, "client"));
  ASSERT_TRUE(client);
  // Several source ports, so the round-robin scheduler sends them to both real servers.
  int answered = 0;
  for (int i = 0; i < 4; ++i) {
    Status st = run_in_netns(client->get(), [&]() -> Status {
      Fd s(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_port = htons(7);
      ::inet_pton(AF_INET, "10.10.0.100", &sa.sin_addr);
      if (::connect(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
        return fail_errno("connect", errno);
      timeval tv{3, 0};
      ::setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      if (::send(s.get(), "ping", 4, 0) != 4) return fail_errno("send", errno);
      char buf[16];
      ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
      if (n != 4) return fail_errno("no echo from the VIP on a connected socket", errno);
      ++answered;
      return {};
    });
    EXPECT_TRUE(st) << st.error().str();
  }
  EXPECT_EQ(answered, 4);
  EXPECT_TRUE(lab_down(name));
  for (const auto& ns : list_netns()) EXPECT_NE(ns.rfind(name + "-", 0), 0u) << ns;
  EXPECT_FALSE(std::filesystem::exists(state_dir(name)));
}

}  // namespace
}  // namespace labctl
