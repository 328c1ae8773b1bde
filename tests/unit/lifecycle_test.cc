// A TCP connection's life from its segments: the three-way handshake, the request and the
// reply, the four-way close in the order it happened (who closed first, each FIN and its
// ACK, a FIN that also acknowledges), retransmissions, resets, and who holds TIME_WAIT.
#include "labctl/trace/lifecycle.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace labctl {
namespace {

using ::testing::HasSubstr;

constexpr uint8_t F = 0x01, S = 0x02, R = 0x04, P = 0x08, A = 0x10;
constexpr uint32_t kC = 1000, kS = 7000;  // the client's and the server's initial sequence numbers

struct Conn {
  std::vector<TcpSegment> segs;
  int64_t t = 0;
  void c(uint8_t flags, uint32_t seq, uint32_t ack, uint32_t len = 0) { segs.push_back({t += 10, Side::Client, flags, seq, ack, len}); }
  void s(uint8_t flags, uint32_t seq, uint32_t ack, uint32_t len = 0) { segs.push_back({t += 10, Side::Server, flags, seq, ack, len}); }
  // The handshake and a 78-byte request answered by 130 bytes, acknowledged.
  void open_and_exchange() {
    c(S, kC, 0);
    s(S | A, kS, kC + 1);
    c(A, kC + 1, kS + 1);
    c(P | A, kC + 1, kS + 1, 78);
    s(A, kS + 1, kC + 79);
    s(P | A, kS + 1, kC + 79, 130);
    c(A, kC + 79, kS + 131);
  }
};

// The http agent answers and closes: the server's FIN comes first, the client acknowledges
// it, closes too, and the server's last ACK ends it. The server holds TIME_WAIT.
TEST(Lifecycle, ServerClosesFirstInFourSegments) {
  Conn k;
  k.open_and_exchange();
  k.s(F | A, kS + 131, kC + 79);
  k.c(A, kC + 79, kS + 132);
  k.c(F | A, kC + 79, kS + 132);
  k.s(A, kS + 132, kC + 80);
  Lifecycle l = follow_connection(k.segs);
  ASSERT_EQ(l.steps.size(), 11u);
  EXPECT_EQ(l.steps[0].handshake, 1);
  EXPECT_EQ(l.steps[1].handshake, 2);
  EXPECT_EQ(l.steps[2].handshake, 3);
  EXPECT_TRUE(l.established);
  EXPECT_TRUE(l.steps[3].data);
  EXPECT_EQ(l.request_bytes, 78u);
  EXPECT_EQ(l.reply_bytes, 130u);
  EXPECT_EQ(l.steps[7].close, 1);
  EXPECT_EQ(l.steps[8].close_ack, 2);
  EXPECT_EQ(l.steps[9].close, 3);
  EXPECT_EQ(l.steps[9].close_ack, 0);  // its ACK number was already sent with step 2
  EXPECT_EQ(l.steps[10].close_ack, 4);
  EXPECT_EQ(l.closed_first, Side::Server);
  EXPECT_TRUE(l.closed);
  EXPECT_EQ(l.time_wait(), Side::Server);
  for (const auto& st : l.steps) EXPECT_FALSE(st.again);
  EXPECT_THAT(step_text(l.steps[7], "client", "rs1"),
              HasSubstr("four-way close 1/4: FIN: rs1 says it wants to close (it closes first)"));
  EXPECT_THAT(step_text(l.steps[8], "client", "rs1"),
              HasSubstr("four-way close 2/4: ACK: client acknowledges: it knows rs1 wants to close"));
  EXPECT_THAT(step_text(l.steps[10], "client", "rs1"), HasSubstr("rs1, which closed first, waits in TIME_WAIT"));
  EXPECT_THAT(step_text(l.steps[0], "client", "rs1"), HasSubstr("three-way handshake 1/3: SYN: client asks"));
  EXPECT_THAT(step_text(l.steps[3], "client", "rs1"), HasSubstr("request: 78 bytes, client -> rs1"));
}

// The client closes first, and the server's ACK rides on its own FIN (steps 2 and 3 in one
// segment); the reply's data carries the FIN of the server in another case below.
TEST(Lifecycle, ClientClosesFirstAndTheServerAcknowledgesWithItsFin) {
  Conn k;
  k.open_and_exchange();
  k.c(F | A, kC + 79, kS + 131);
  k.s(F | A, kS + 131, kC + 80);
  k.c(A, kC + 80, kS + 132);
  Lifecycle l = follow_connection(k.segs);
  ASSERT_EQ(l.steps.size(), 10u);
  EXPECT_EQ(l.steps[7].close, 1);
  EXPECT_EQ(l.steps[8].close, 3);
  EXPECT_EQ(l.steps[8].close_ack, 2);
  EXPECT_EQ(l.steps[9].close_ack, 4);
  EXPECT_EQ(l.closed_first, Side::Client);
  EXPECT_EQ(l.time_wait(), Side::Client);
  EXPECT_THAT(step_text(l.steps[8], "client", "rs1"),
              HasSubstr("2/4: ACK: rs1 acknowledges: it knows client wants to close; four-way close 3/4: FIN: rs1 "
                        "wants to close too"));
}

// Segments come in per capture handle, not in time order; a FIN can ride on the reply's
// data; a retransmitted request is marked and not counted twice.
TEST(Lifecycle, OrderRetransmissionsAndAFinOnTheData) {
  Conn k;
  k.c(S, kC, 0);
  k.s(S | A, kS, kC + 1);
  k.c(A, kC + 1, kS + 1);
  k.c(P | A, kC + 1, kS + 1, 78);
  k.c(P | A, kC + 1, kS + 1, 78);
  k.s(F | P | A, kS + 1, kC + 79, 130);
  k.c(A, kC + 79, kS + 132);
  k.c(F | A, kC + 79, kS + 132);
  k.s(A, kS + 132, kC + 80);
  std::vector<TcpSegment> shuffled(k.segs.rbegin(), k.segs.rend());
  Lifecycle l = follow_connection(shuffled);
  ASSERT_EQ(l.steps.size(), 9u);
  EXPECT_EQ(l.steps[0].handshake, 1);
  EXPECT_TRUE(l.steps[4].again);
  EXPECT_EQ(l.request_bytes, 78u);
  EXPECT_TRUE(l.steps[5].data);
  EXPECT_EQ(l.steps[5].close, 1);
  EXPECT_EQ(l.steps[6].close_ack, 2);
  EXPECT_EQ(l.steps[8].close_ack, 4);
  EXPECT_EQ(l.time_wait(), Side::Server);
  EXPECT_THAT(step_text(l.steps[4], "c", "s"), HasSubstr("(again: a retransmission)"));
}

// A reset is no close: nobody holds TIME_WAIT. A close not seen to its end names nobody either.
TEST(Lifecycle, AResetOrAnUnfinishedCloseHoldsNoTimeWait) {
  Conn k;
  k.open_and_exchange();
  k.c(R | A, kC + 79, kS + 131);
  Lifecycle l = follow_connection(k.segs);
  EXPECT_EQ(l.reset_by, Side::Client);
  EXPECT_FALSE(l.closed);
  EXPECT_FALSE(l.time_wait());
  EXPECT_THAT(step_text(l.steps.back(), "client", "rs1"), HasSubstr("RST: client tears the connection down"));

  Conn half;
  half.open_and_exchange();
  half.s(F | A, kS + 131, kC + 79);
  half.c(A, kC + 79, kS + 132);
  Lifecycle h = follow_connection(half.segs);
  EXPECT_EQ(h.closed_first, Side::Server);
  EXPECT_FALSE(h.closed);
  EXPECT_FALSE(h.time_wait());
}

// Sequence numbers wrap around 2^32 in the middle of the close.
TEST(Lifecycle, SequenceNumbersWrap) {
  Conn k;
  const uint32_t c0 = 0xFFFFFFF0u;
  k.c(S, c0, 0);
  k.s(S | A, kS, c0 + 1);
  k.c(A, c0 + 1, kS + 1);
  k.c(P | A, c0 + 1, kS + 1, 40);  // ends past 2^32
  k.c(F | A, c0 + 41, kS + 1);
  k.s(A, kS + 1, c0 + 42);
  k.s(F | A, kS + 1, c0 + 42);
  k.c(A, c0 + 42, kS + 2);
  Lifecycle l = follow_connection(k.segs);
  EXPECT_TRUE(l.closed);
  EXPECT_EQ(l.closed_first, Side::Client);
  EXPECT_EQ(l.time_wait(), Side::Client);
  EXPECT_EQ(l.steps[5].close_ack, 2);
  EXPECT_EQ(l.steps[7].close_ack, 4);
}

}  // namespace
}  // namespace labctl
