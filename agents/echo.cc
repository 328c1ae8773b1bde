// labagent echo: TCP or UDP payloads back to their sender.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "agents/common.h"

namespace labagent {

int run_echo_udp(uint16_t port, int ready_fd) {
  int fd = listen_on(port, SOCK_DGRAM);
  if (fd < 0) return die("bind udp port " + std::to_string(port));
  signal_ready(ready_fd);
  char buf[65536];
  for (;;) {
    sockaddr_storage peer{};
    socklen_t len = sizeof peer;
    ssize_t n = ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&peer), &len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return die("recvfrom");
    }
    ::sendto(fd, buf, static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&peer), len);
  }
}

int run_echo_tcp(uint16_t port, int ready_fd) {
  int lfd = listen_on(port, SOCK_STREAM);
  if (lfd < 0) return die("listen on port " + std::to_string(port));
  signal_ready(ready_fd);
  for (;;) {
    int c = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return die("accept");
    }
    // One connection at a time, each bounded by the I/O timeout: enough for lab checks.
    set_timeouts(c, kIoTimeoutMs);
    char buf[16384];
    for (;;) {
      ssize_t n = ::recv(c, buf, sizeof buf, 0);
      if (n <= 0 || !write_all(c, std::string(buf, static_cast<size_t>(n)))) break;
    }
    ::close(c);
  }
}

}  // namespace labagent
