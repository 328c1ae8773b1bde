// labagent http: answers every HTTP request with the node's name.
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "agents/common.h"

namespace labagent {
namespace {

// Reads until the end of the request head (blank line), a timeout or 16 KiB.
bool read_request_head(int fd) {
  std::string buf;
  char chunk[2048];
  while (buf.find("\r\n\r\n") == std::string::npos && buf.find("\n\n") == std::string::npos) {
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0 || buf.size() > 16384) return false;
    buf.append(chunk, static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

int run_http(uint16_t port, const std::string& name, int ready_fd) {
  int lfd = listen_on(port, SOCK_STREAM);
  if (lfd < 0) return die("listen on port " + std::to_string(port));
  signal_ready(ready_fd);
  const std::string body = name + "\n";
  const std::string reply = "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\nServer: labagent\r\nX-Served-By: " +
                            name + "\r\nConnection: close\r\n\r\n" + body;
  for (;;) {
    int c = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return die("accept");
    }
    set_timeouts(c, kIoTimeoutMs);
    if (read_request_head(c)) write_all(c, reply);
    ::close(c);
  }
}

}  // namespace labagent
