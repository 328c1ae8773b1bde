// The relay's two ends on this host, without a VM: the guest's server (serve_relay_port)
// on one end of a unix socket, as qemu's chardev socket would carry it, and the host's
// relay_run or a raw client on the other.
#include "labctl/vm/relay.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

namespace labctl {
namespace {

class RelayOnHost : public ::testing::Test {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/labctl-relay-test.XXXXXX";
    ASSERT_TRUE(::mkdtemp(templ));
    dir_ = templ;
    port_ = {dir_ + "/port0.sock", dir_ + "/port0.lock"};
    int l = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(l, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::strcpy(sa.sun_path, port_.socket.c_str());
    ASSERT_EQ(::bind(l, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    ASSERT_EQ(::listen(l, 1), 0);
    // The guest's server, serving one host: the program it runs is /bin/sh.
    server_ = ::fork();
    ASSERT_GE(server_, 0);
    if (server_ == 0) {
      int c = ::accept4(l, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) ::_exit(1);
      serve_relay_port(c, "/bin/sh");
    }
    ::close(l);
  }
  void TearDown() override {
    if (server_ > 0) {
      ::kill(server_, SIGKILL);
      ::waitpid(server_, nullptr, 0);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string dir_;
  RelayPort port_;
  pid_t server_ = -1;
};

int memfd_with(size_t zeros) {
  int fd = ::memfd_create("relay-test", MFD_CLOEXEC);
  if (fd >= 0 && zeros) {
    if (::ftruncate(fd, static_cast<off_t>(zeros)) != 0) return -1;
  }
  return fd;
}

// Issue 21 item 5: the guest wrote stdin into the command's pipe while not reading its
// output; a command that writes as it reads (cat) blocked on a full stdout pipe, the guest
// on the full stdin pipe, and the host on the full channel: nothing moved again.
TEST_F(RelayOnHost, LargeStdinAndLargeOutputAtOnceDoNotDeadlock) {
  constexpr size_t kEach = 8u << 20;
  int in = memfd_with(kEach), out = memfd_with(0);
  ASSERT_GE(in, 0);
  ASSERT_GE(out, 0);
  // The client in a child of its own, so a deadlock ends the test (SIGALRM) instead of
  // hanging it; the limit is ~100 times what the transfer takes.
  pid_t client = ::fork();
  ASSERT_GE(client, 0);
  if (client == 0) {
    ::alarm(120);
    RelayRequest req;
    req.argv = {"-c", "cat; head -c 8388608 /dev/zero"};
    req.env = {"PATH=/usr/bin:/bin"};
    req.cwd = "/";
    RelayIo io;
    io.in = in;
    io.out = out;
    auto r = relay_run({port_}, req, io);
    if (!r) {
      std::fprintf(stderr, "relay_run: %s\n", r.error().str().c_str());
      ::_exit(2);
    }
    ::_exit(*r == 0 ? 0 : 3);
  }
  int st = 0;
  ASSERT_EQ(::waitpid(client, &st, 0), client);
  ASSERT_FALSE(WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM) << "the relay deadlocked";
  ASSERT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(WEXITSTATUS(st), 0);
  struct stat sb{};
  ASSERT_EQ(::fstat(out, &sb), 0);
  EXPECT_EQ(static_cast<size_t>(sb.st_size), 2 * kEach);
  ::close(in);
  ::close(out);
}

// Issue 21 item 10, the guest's side: a request it cannot read is answered (with the
// request's nonce when it has one) and fails, instead of leaving the host waiting.
TEST_F(RelayOnHost, TheGuestAnswersARequestItCannotRead) {
  int c = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(c, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::strcpy(sa.sun_path, port_.socket.c_str());
  ASSERT_EQ(::connect(c, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  std::string req = encode_frame(FrameType::kRequest, R"({"argv": 3, "nonce": "n0"})");
  ASSERT_EQ(::write(c, req.data(), req.size()), static_cast<ssize_t>(req.size()));
  FrameDecoder dec;
  std::vector<Frame> frames;
  char buf[4096];
  while (frames.size() < 2) {
    ssize_t n = ::read(c, buf, sizeof buf);
    ASSERT_GT(n, 0) << "the guest hung up without an answer";
    dec.feed(std::string_view(buf, static_cast<size_t>(n)));
    for (auto f = dec.next(); f && *f; f = dec.next()) frames.push_back(**f);
  }
  ::close(c);
  EXPECT_EQ(frames[0], (Frame{FrameType::kStarted, "n0"}));
  EXPECT_EQ(frames[1].type, FrameType::kError);
  EXPECT_NE(frames[1].payload.find("malformed request"), std::string::npos) << frames[1].payload;
  SessionFrames host("n0");
  EXPECT_FALSE(*host.accept(frames[0]));
  EXPECT_TRUE(*host.accept(frames[1])) << "relay_run fails with it as this session's error";
}

}  // namespace
}  // namespace labctl
