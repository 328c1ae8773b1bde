// labagent http: answers every HTTP request with the node's name, and writes an access log
// line for each to stdout (the agent's log file). With --size the body is that many bytes:
// the name's line, then newlines (a client that trims trailing newlines, as labctl's checks
// do, still reads the name), sent from one buffer made at start, never copied per request.
// With --delay each answer waits that long first: an application server's work (a Tomcat
// behind an nginx), which also holds the serving thread as a real one would. A request that
// asks by name to keep its connection ("Connection: keep-alive", as nginx's upstream
// keep-alive does in a lab) keeps it open for the next one, served on a thread of its own;
// any other is answered and closed by the server, which so takes TIME_WAIT, as the course's
// close sequence shows (curl by hand, labctl's checks and load agent).
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <mutex>
#include <thread>

#include "agents/access_log.h"
#include "agents/common.h"
#include "agents/subcommand.h"

namespace labagent {
namespace {

constexpr std::size_t kMaxHead = 16384;
// A request typed by hand (the course's `exec 8<>/dev/tcp/VIP/80`, then `echo ... >&8` a
// few seconds later) gets this long, on a thread of its own, once the usual I/O timeout has
// passed without a whole head; at most kMaxSlow such connections wait at once.
constexpr int kHumanTimeoutMs = 120000;
constexpr int kMaxSlow = 64;

// A kept-alive connection idle this long is closed: longer than nginx's own upstream
// keepalive_timeout (60 s), so nginx closes first and never reuses one being closed.
constexpr int kKeepAliveTimeoutMs = 75000;
constexpr int kMaxKept = 256;

enum class Head { Whole, Closed, Idle };

// Whether the request whose head is `head` asks to keep its connection: a Connection header
// naming keep-alive and not close. HTTP/1.1's implicit persistence is not taken: a client
// that did not ask (curl) sees the server close first, as it always has here.
bool wants_keep_alive(std::string_view head) {
  std::string lower(head);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return std::tolower(ch); });
  bool keep = false;
  for (size_t at = lower.find("\nconnection:"); at != std::string::npos; at = lower.find("\nconnection:", at + 1)) {
    const size_t end = lower.find('\n', at + 1);
    const std::string value = lower.substr(at, end == std::string::npos ? end : end - at);
    if (value.find("close") != std::string::npos) return false;
    keep = keep || value.find("keep-alive") != std::string::npos;
  }
  return keep;
}

// Reads on from buf[len] until the end of the request head (blank line), a timeout or
// kMaxHead bytes. Whole: `line` is the request line. Idle: the timeout passed with the
// connection open and the head unfinished. Closed: anything else.
Head read_request_head(int fd, char* buf, std::size_t& len, std::string_view& line) {
  for (;;) {
    ssize_t n = ::recv(fd, buf + len, kMaxHead - len, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Head::Idle;
    if (n <= 0) return Head::Closed;
    // The blank line can straddle two reads: look a few bytes back.
    const std::size_t from = len >= 3 ? len - 3 : 0;
    len += static_cast<std::size_t>(n);
    std::string_view seen(buf + from, len - from);
    if (seen.find("\r\n\r\n") != std::string_view::npos || seen.find("\n\n") != std::string_view::npos) {
      std::string_view head(buf, len);
      line = head.substr(0, head.find('\n'));
      if (line.ends_with('\r')) line.remove_suffix(1);
      if (line.empty()) line = "?";
      return Head::Whole;
    }
    if (len == kMaxHead) return Head::Closed;
  }
}

// Ends the process from any of its threads: the first to get here exits, any other waits.
[[noreturn]] void exit_once(int status) {
  static std::mutex once;
  once.lock();
  std::exit(status);
}

constexpr std::size_t kFillerChunk = std::size_t{1} << 20;

int run_http(uint16_t port, const std::string& name, uint64_t size, int delay_ms, int ready_fd) {
  int lfd = listen_on(port, SOCK_STREAM);
  if (lfd < 0) return die("listen on port " + std::to_string(port));
  const std::string name_line = name + "\n";
  const uint64_t length = size ? size : name_line.size();
  auto head_of = [&](const char* version, const char* connection) {
    return std::string(version) + " 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(length) +
           "\r\nServer: labagent\r\nX-Served-By: " + name + "\r\nConnection: " + connection + "\r\n\r\n" +
           name_line.substr(0, length);
  };
  const std::string reply = head_of("HTTP/1.0", "close"), reply_kept = head_of("HTTP/1.1", "keep-alive");
  // The rest of a sized body: newlines, sent again and again from this one buffer.
  const std::string filler(length > name_line.size() ? std::min<uint64_t>(length - name_line.size(), kFillerChunk) : 0, '\n');
  auto write_reply = [&](int c, bool keep) {
    if (!write_all(c, keep ? reply_kept : reply)) return false;
    for (uint64_t left = length - std::min<uint64_t>(length, name_line.size()); left;) {
      const std::size_t n = static_cast<std::size_t>(std::min<uint64_t>(left, filler.size()));
      if (!write_all(c, std::string_view(filler).substr(0, n))) return false;
      left -= n;
    }
    return true;
  };
  signal_ready(ready_fd);
  // Several threads (one per CPU, at least four), each taking connections from the one
  // listening socket (the kernel hands each to one waiting thread): one thread left the
  // other cores idle, and one silent client held up every other for the I/O timeout.
  // Returns only on an error that ends the agent (its exit status).
  std::atomic<int> slow{0}, kept{0};
  // Answers (when the head was whole) and logs; closes the connection unless it is kept
  // (`keep` and answered): then the caller serves its next request.
  auto answer = [&](int c, const sockaddr_in6& peer, Head h, std::string_view request, bool keep) {
    if (h == Head::Whole && delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    char line[kAccessLineMax];
    const int status = h == Head::Whole && write_reply(c, keep) ? 200 : 0;
    const bool kept_open = keep && status;
    if (!kept_open) ::close(c);
    // One write per line: lines from several threads never interleave in the log.
    (void)!::write(STDOUT_FILENO, line, format_access_line(line, peer, h == Head::Whole ? request : "", status));
    return kept_open;
  };
  // A kept-alive connection: its next requests on a thread of its own (an idle one would
  // otherwise hold a serving thread), until it closes, idles out or asks to close.
  auto keep_serving = [&](int c, const sockaddr_in6& peer) {
    std::thread([&, c, peer] {
      set_timeouts(c, kKeepAliveTimeoutMs);
      auto buf = std::make_unique<char[]>(kMaxHead);
      for (;;) {
        std::size_t len = 0;
        std::string_view request;
        const Head h = read_request_head(c, buf.get(), len, request);
        if (h != Head::Whole) {
          ::close(c);  // closed or idle between requests: no request to log
          break;
        }
        if (!answer(c, peer, h, request, wants_keep_alive(std::string_view(buf.get(), len)))) break;
      }
      kept.fetch_sub(1);
    }).detach();
  };
  // A connection still open but silent after the I/O timeout: a human may be typing.
  auto wait_for_human = [&](int c, const sockaddr_in6& peer, const char* head, std::size_t len) {
    if (slow.fetch_add(1) >= kMaxSlow) {
      slow.fetch_sub(1);
      return false;
    }
    auto buf = std::make_unique<char[]>(kMaxHead);
    std::memcpy(buf.get(), head, len);
    std::thread([&, c, peer, len, owned = std::move(buf)]() mutable {
      set_timeouts(c, kHumanTimeoutMs);
      std::string_view request;
      Head h = read_request_head(c, owned.get(), len, request);
      answer(c, peer, h, request, false);
      slow.fetch_sub(1);
    }).detach();
    return true;
  };
  auto serve = [&]() -> int {
    char head[kMaxHead];
    for (;;) {
      sockaddr_in6 peer{};
      socklen_t plen = sizeof peer;
      int c = ::accept4(lfd, reinterpret_cast<sockaddr*>(&peer), &plen, SOCK_CLOEXEC);
      if (c < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        // Out of descriptors or memory: wait for connections being served to close.
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          ::poll(nullptr, 0, 10);
          continue;
        }
        return die("accept");
      }
      set_timeouts(c, kIoTimeoutMs);
      std::size_t len = 0;
      std::string_view request;
      Head h = read_request_head(c, head, len, request);
      if (h == Head::Idle && wait_for_human(c, peer, head, len)) continue;
      bool keep = h == Head::Whole && wants_keep_alive(std::string_view(head, len));
      if (keep && kept.fetch_add(1) >= kMaxKept) {
        kept.fetch_sub(1);
        keep = false;  // too many kept open already: this one is answered and closed
      }
      if (answer(c, peer, h, request, keep))
        keep_serving(c, peer);
      else if (keep)
        kept.fetch_sub(1);
    }
  };
  // exit, not return: the other threads serve from this frame until the process ends.
  for (unsigned i = 1; i < std::max(4u, std::thread::hardware_concurrency()); ++i)
    std::thread([&] { exit_once(serve()); }).detach();
  exit_once(serve());
}

std::string hostname_or(const std::string& fallback) {
  char buf[256] = {};
  return ::gethostname(buf, sizeof buf - 1) == 0 && buf[0] ? buf : fallback;
}

uint16_t port = 80;
std::string name;
uint64_t size = 0;
int delay = 0;
int ready_fd = -1;

CLI::App* add(CLI::App& app) {
  auto* http = app.add_subcommand("http", "serve HTTP, answering every request with the node name");
  http->add_option("--port", port, "TCP port to listen on")->default_val(80);
  http->add_option("--name", name, "name to answer with (default: the host name)");
  http->add_option("--size", size, "answer with a body of this many bytes: the name, then newlines")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 30));
  http->add_option("--delay", delay, "wait this many milliseconds before each answer: simulated work per request")
      ->check(CLI::Range(0, 60000));
  http->add_option("--ready-fd", ready_fd, "write \"ready\" to this fd once listening");
  return http;
}

int run() { return run_http(port, name.empty() ? hostname_or("labagent") : name, size, delay, ready_fd); }

const Registered registered{{"http", add, run}};

}  // namespace
}  // namespace labagent
