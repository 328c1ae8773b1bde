// The relay's wire format (vm/relay_protocol.h): frames survive any cut of the byte stream,
// bad headers are refused, requests round-trip through JSON.
#include <sys/wait.h>

#include <gtest/gtest.h>

#include "labctl/vm/relay_protocol.h"

namespace labctl {
namespace {

TEST(RelayFrame, HeaderIsTypeThenBigEndianLength) {
  std::string f = encode_frame(FrameType::kStdout, "hi");
  ASSERT_EQ(f.size(), 7u);
  EXPECT_EQ(f[0], 'O');
  EXPECT_EQ(f.substr(1, 4), std::string("\0\0\0\2", 4));
  EXPECT_EQ(f.substr(5), "hi");
}

TEST(RelayFrame, DecodesFramesWhateverTheReadSizes) {
  std::string binary("a\0b\xff", 4);
  std::string stream = encode_frame(FrameType::kStdin, binary) + encode_frame(FrameType::kStdinEof, "") +
                       encode_frame(FrameType::kExit, encode_u32(7));
  for (size_t chunk : {1u, 2u, 5u, 100u}) {
    FrameDecoder d;
    std::vector<Frame> got;
    for (size_t i = 0; i < stream.size(); i += chunk) {
      d.feed(std::string_view(stream).substr(i, chunk));
      for (;;) {
        auto f = d.next();
        ASSERT_TRUE(f) << f.error().message;
        if (!*f) break;
        got.push_back(**f);
      }
    }
    ASSERT_EQ(got.size(), 3u) << "chunk " << chunk;
    EXPECT_EQ(got[0], (Frame{FrameType::kStdin, binary}));
    EXPECT_EQ(got[1], (Frame{FrameType::kStdinEof, ""}));
    EXPECT_EQ(got[2].type, FrameType::kExit);
    EXPECT_EQ(decode_u32(got[2].payload), 7u);
  }
}

TEST(RelayFrame, IncompleteFrameWaitsForMore) {
  FrameDecoder d;
  std::string f = encode_frame(FrameType::kStderr, "abc");
  d.feed(f.substr(0, 6));
  auto r = d.next();
  ASSERT_TRUE(r);
  EXPECT_FALSE(*r);
  d.feed(f.substr(6));
  r = d.next();
  ASSERT_TRUE(r && *r);
  EXPECT_EQ((*r)->payload, "abc");
}

TEST(RelayFrame, UnknownTypeAndOversizedLengthAreErrors) {
  FrameDecoder d;
  d.feed(std::string("Z\0\0\0\0", 5));
  auto r = d.next();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("unknown frame type 0x5a"), std::string::npos);
  FrameDecoder big;
  big.feed("O" + encode_u32(kMaxFramePayload + 1));
  auto b = big.next();
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message.find("bytes (limit"), std::string::npos);
}

TEST(RelayFrame, ManyFramesKeepTheBufferBounded) {
  FrameDecoder d;
  const std::string payload(1000, 'x');
  for (int i = 0; i < 1000; ++i) {
    d.feed(encode_frame(FrameType::kStdout, payload));
    auto f = d.next();
    ASSERT_TRUE(f && *f);
    EXPECT_EQ((*f)->payload.size(), 1000u);
  }
}

TEST(RelayFrame, ResetStartsAfreshAfterFramesWereRead) {
  FrameDecoder d;
  d.feed(encode_frame(FrameType::kStdout, "first") + encode_frame(FrameType::kStdout, "x").substr(0, 3));
  auto f = d.next();
  ASSERT_TRUE(f && *f);
  d.reset();  // a session ended: its half frame is dropped, the next one decodes
  d.feed(encode_frame(FrameType::kRequest, "{}"));
  f = d.next();
  ASSERT_TRUE(f) << f.error().message;
  ASSERT_TRUE(*f);
  EXPECT_EQ(**f, (Frame{FrameType::kRequest, "{}"}));
}

TEST(RelayFrame, WinsizeAndU32RoundTrip) {
  auto ws = decode_winsize(encode_winsize(50, 300));
  ASSERT_TRUE(ws);
  EXPECT_EQ(ws->first, 50);
  EXPECT_EQ(ws->second, 300);
  EXPECT_FALSE(decode_winsize("abc"));
  EXPECT_EQ(decode_u32(encode_u32(0xdeadbeef)), 0xdeadbeefu);
  EXPECT_FALSE(decode_u32("12345"));
}

TEST(RelayRequest, RoundTripsThroughJson) {
  RelayRequest r;
  r.argv = {"exec", "dr-demo", "client", "--", "sh", "-c", "echo 'a b' \"$X\"\n"};
  r.cwd = "/work/x y";
  r.env = {"TERM=xterm", "X=it's"};
  r.tty = true;
  r.rows = 51;
  r.cols = 211;
  r.nonce = "0123abcd";
  auto back = decode_request(encode_request(r));
  ASSERT_TRUE(back) << back.error().message;
  EXPECT_EQ(*back, r);
}

TEST(RelayRequest, MalformedIsAnErrorNotAnException) {
  auto r = decode_request("{\"argv\": 3}");
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("malformed request"), std::string::npos);
  EXPECT_FALSE(decode_request("not json"));
}

// Issue 21 item 10: the guest answers a request it cannot read with an empty kStarted and
// a kError; the host waited for its own nonce forever.
TEST(RelaySession, ARefusedRequestFailsTheSession) {
  SessionFrames s("n1");
  auto e = s.accept({FrameType::kStarted, ""});
  ASSERT_TRUE(e);
  EXPECT_FALSE(*e);
  auto r = s.accept({FrameType::kError, "relay: a malformed request: x"});
  ASSERT_FALSE(r) << "the session failed";
  EXPECT_NE(r.error().message.find("refused the request: relay: a malformed request: x"),
            std::string::npos) << r.error().message;
  EXPECT_FALSE(s.started());
}

TEST(RelaySession, APreviousSessionsFramesAreSkippedUntilOurNonce) {
  SessionFrames s("n2");
  for (const Frame& f : std::vector<Frame>{{FrameType::kStarted, "old"},
                                           {FrameType::kStdout, "stale"},
                                           {FrameType::kError, "old failure"},
                                           {FrameType::kExit, encode_u32(3)}}) {
    auto r = s.accept(f);
    ASSERT_TRUE(r);
    EXPECT_FALSE(*r);
  }
  ASSERT_TRUE(s.accept({FrameType::kStarted, "n2"}));
  EXPECT_TRUE(s.started());
  EXPECT_TRUE(*s.accept({FrameType::kStdout, "ours"}));
  EXPECT_TRUE(*s.accept({FrameType::kError, "ours failed"})) << "handled as this session's error";
}

TEST(RelayRequest, TheNonceOfARefusedRequestIsFoundWhenItIsThere) {
  EXPECT_EQ(request_nonce("{\"argv\": 3, \"nonce\": \"ab12\"}"), "ab12");
  EXPECT_EQ(request_nonce("{\"nonce\": 5}"), "");
  EXPECT_EQ(request_nonce("not json"), "");
  EXPECT_EQ(request_nonce("[1]"), "");
}

TEST(RelayStatus, ShellStatusOfExitsAndSignals) {
  EXPECT_EQ(shell_status(7 << 8), 7);  // WIFEXITED, status 7
  EXPECT_EQ(shell_status(SIGKILL), 128 + SIGKILL);
}

}  // namespace
}  // namespace labctl
