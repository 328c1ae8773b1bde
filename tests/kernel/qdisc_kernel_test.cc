// Kernel tier: netem impairments (kernel/qdisc.h) on a kernel that has sch_netem (the
// micro-VM). Two namespaces of the test's own joined by a veth: netem set with every key and
// read back, replaced by less (nothing of the old one stays), by tbf and back, cleared; the
// --dry-run line run by tc makes the same qdisc; and the delay and the loss are real on the
// wire. Skips (fails where the kernel tier is required) when the kernel has no netem.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <optional>

#include "labctl/base/fd.h"
#include "labctl/kernel/features.h"
#include "labctl/kernel/netns.h"
#include "labctl/kernel/probe.h"
#include "labctl/kernel/qdisc.h"
#include "tests/host/host_test.h"
#include "tests/kernel/kernel_test.h"
#include "tests/support/impair_print.h"

namespace labctl {
namespace {

using namespace std::chrono_literals;

Impairment everything() {
  Impairment i;
  i.rate = 1250000;
  i.delay = 20ms;
  i.jitter = 5ms;
  i.loss = Probability::from_percent(1);
  i.duplicate = Probability::from_percent(0.1);
  i.corrupt = Probability::from_percent(0.1);
  i.reorder = Probability::from_percent(25);
  i.limit = 500;
  return i;
}

class KernelQdisc : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "kernel tier needs root";
    if (Status st = probe_netem(); !st) LABCTL_KERNEL_SKIP() << st.error().str();
    a_ = test::unique_name("kq-a");
    b_ = test::unique_name("kq-b");
    ASSERT_TRUE(create_netns(a_));
    made_a_ = true;
    ASSERT_TRUE(create_netns(b_));
    made_b_ = true;
    ra_ = open_in(a_);
    rb_ = open_in(b_);
    ASSERT_TRUE(ra_ && rb_);
    auto bfd = open_netns(b_);
    ASSERT_TRUE(bfd);
    Status st =
        ra_->apply([&](RtnlBatch& b) { return b.create_veth("a0", "b0", bfd->get(), 0, "", ""); });
    ASSERT_TRUE(st) << st.error().str();
    for (auto [r, dev, addr] :
         {std::tuple{&ra_, "a0", "10.99.0.1/24"}, std::tuple{&rb_, "b0", "10.99.0.2/24"}}) {
      RtnlBatch b = (*r)->batch();
      ASSERT_TRUE(b.link_up("lo"));
      ASSERT_TRUE(b.link_up(dev));
      ASSERT_TRUE(b.add_address(dev, *IpPrefix::parse(addr)));
      st = b.commit();
      ASSERT_TRUE(st) << st.error().str();
    }
  }
  void TearDown() override {
    ra_.reset();
    rb_.reset();
    if (made_a_) {
      EXPECT_TRUE(delete_netns(a_));
    }
    if (made_b_) {
      EXPECT_TRUE(delete_netns(b_));
    }
  }

  static std::optional<Rtnl> open_in(const std::string& ns) {
    std::optional<Rtnl> out;
    auto fd = open_netns(ns);
    if (!fd) return out;
    Status st = run_in_netns(fd->get(), [&]() -> Status {
      TRY_ASSIGN(Rtnl r, Rtnl::open(ns));
      out.emplace(std::move(r));
      return {};
    });
    EXPECT_TRUE(st) << st.error().str();
    return out;
  }

  Impairment read_back(const std::string& kind) {
    auto q = root_qdisc(*ra_, "a0");
    EXPECT_TRUE(q) << q.error().str();
    if (!q) return {};
    EXPECT_EQ(q->kind, kind);
    EXPECT_TRUE(q->impairment) << q->kind;
    return q->impairment.value_or(Impairment{});
  }

  std::string a_, b_;
  bool made_a_ = false, made_b_ = false;
  std::optional<Rtnl> ra_, rb_;
};

TEST_F(KernelQdisc, NetemSetReadBackReplaceClear) {
  Status st = set_impairment(*ra_, "a0", everything(), QdiscChange::Add);
  ASSERT_TRUE(st) << st.error().str();
  EXPECT_EQ(read_back("netem"), canonical(everything()));

  // Less than before: a fresh qdisc, so no reorder, corrupt, rate or jitter of the old one stays.
  Impairment delay;
  delay.delay = 10ms;
  st = set_impairment(*ra_, "a0", delay);
  ASSERT_TRUE(st) << st.error().str();
  EXPECT_EQ(read_back("netem"), delay);

  // What libnl alone cannot say: nanoseconds, and a rate over 2^32 bytes/s.
  Impairment exact;
  exact.delay = 1us;  // libnl's 64 ns ticks would say 960 ns
  exact.jitter = 3us;
  exact.rate = 12500000000;
  exact.limit = 2000;
  st = set_impairment(*ra_, "a0", exact);
  ASSERT_TRUE(st) << st.error().str();
  EXPECT_EQ(read_back("netem"), exact);

  // netem to tbf and back, each a replacement of the other.
  Impairment rate;
  rate.rate = 1250000;
  st = set_impairment(*ra_, "a0", rate);
  ASSERT_TRUE(st) << st.error().str();
  EXPECT_EQ(read_back("tbf"), rate);
  st = set_impairment(*ra_, "a0", delay);
  ASSERT_TRUE(st) << st.error().str();
  EXPECT_EQ(read_back("netem"), delay);

  st = set_impairment(*ra_, "a0", delay, QdiscChange::Add);
  ASSERT_FALSE(st);
  EXPECT_EQ(st.error().errnum, EEXIST);

  ASSERT_TRUE(clear_impairment(*ra_, "a0"));
  auto q = root_qdisc(*ra_, "a0");
  ASSERT_TRUE(q);
  EXPECT_EQ(q->kind, "noqueue");
  EXPECT_FALSE(q->impairment);
}

TEST_F(KernelQdisc, TheDryRunLineMakesTheSameNetem) {
  // Debian 12's tc (iproute2 6.1) sends delays as 64 ns ticks: times that are whole ticks
  // (8 us and up) come out exact.
  Impairment exact;
  exact.delay = 1ms;
  exact.jitter = 8us;
  exact.rate = 12500000000;
  Impairment loss;
  loss.loss = Probability::from_percent(0.5);
  for (const Impairment& i : {everything(), exact, loss}) {
    const std::string line = tc_command(a_, "a0", i);
    ASSERT_EQ(std::system((line + " >/dev/null 2>&1").c_str()), 0) << line;
    EXPECT_EQ(read_back("netem"), canonical(i)) << line;
    ASSERT_TRUE(clear_impairment(*ra_, "a0"));
  }
}

TEST_F(KernelQdisc, DelayAndLossAreReal) {
  const IpAddr to = *IpAddr::parse("10.99.0.2");
  constexpr uint16_t kPort = 8099;
  // A listener in b: the kernel answers the handshake, nobody needs to accept.
  Fd listener;
  auto bfd = open_netns(b_);
  ASSERT_TRUE(bfd);
  Status st = run_in_netns(bfd->get(), [&]() -> Status {
    listener = Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(kPort);
    if (!listener || ::bind(listener.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
        ::listen(listener.get(), 16) != 0)
      return fail_errno("listen on port 8099", errno);
    return {};
  });
  ASSERT_TRUE(st) << st.error().str();
  auto afd = open_netns(a_);
  ASSERT_TRUE(afd);
  // The quickest of `n` connects from a (each SYN leaves through a0), or an error.
  auto fastest_connect = [&](int n, Millis timeout) -> Result<Millis> {
    Millis best = Millis::max();
    Status s = run_in_netns(afd->get(), [&]() -> Status {
      for (int i = 0; i < n; ++i) {
        auto t0 = std::chrono::steady_clock::now();
        TRY(tcp_connect(to, kPort, timeout));
        best = std::min(best,
                        std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now() - t0));
      }
      return {};
    });
    if (!s) return tl::unexpected(s.error());
    return best;
  };

  Impairment delay;
  delay.delay = 50ms;
  ASSERT_TRUE(set_impairment(*ra_, "a0", delay));
  auto t = fastest_connect(3, 2000ms);
  ASSERT_TRUE(t) << t.error().str();
  // netem never delivers early; the micro-VM's emulation adds its own delay on top, so only
  // the quickest of three is held to 20 %.
  EXPECT_GE(t->count(), 50);
  EXPECT_LT(t->count(), 60);

  Impairment loss;
  loss.loss = Probability::from_percent(100);
  ASSERT_TRUE(set_impairment(*ra_, "a0", loss));
  EXPECT_FALSE(fastest_connect(1, 500ms)) << "every SYN is lost";

  ASSERT_TRUE(clear_impairment(*ra_, "a0"));
  t = fastest_connect(1, 2000ms);
  EXPECT_TRUE(t) << t.error().str();
}

}  // namespace
}  // namespace labctl
