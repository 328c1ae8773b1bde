// labagent http: answers every HTTP request with the node's name, and writes an access log
// line for each to stdout (the agent's log file). With --size the body is that many bytes:
// the name's line, then newlines (a client that trims trailing newlines, as labctl's checks
// do, still reads the name), sent from one buffer made at start, never copied per request.
// With --delay each answer waits that long first: an application server's work (a Tomcat
// behind an nginx), which also holds the serving thread as a real one would. With
// --client-closes a connection that is not kept is left for the client to close first
// (the agent waits for its FIN, at most kClientCloseWaitMs), so the client, not the
// server, holds the connection's TIME_WAIT: as behind a proxy that closes its upstream
// connection as soon as the answer is whole.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <memory>
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

// A connection whose client asks for it (Connection: keep-alive) stays open for its next
// request, on a thread of its own, until it has been idle this long: long enough for a
// failover check to hold connections through a VIP across a director's takeover. At most
// kMaxKept at once; beyond them a request is answered and its connection closed, as for
// any other.
constexpr int kKeepIdleMs = 60000;
// How long --client-closes waits for the client's FIN before closing anyway.
constexpr int kClientCloseWaitMs = 2000;
constexpr int kMaxKept = 256;

enum class Head { Whole, Closed, Idle };

// Whether the whole head in buf[0, len) asks to keep the connection open and nothing came
// after it: a body or a pipelined request is not read, so such a connection is closed
// after its answer.
bool wants_keep_alive(const char* buf, std::size_t len) {
  const std::string_view all(buf, len);
  const std::size_t crlf = all.find("\r\n\r\n"), lf = all.find("\n\n");
  std::size_t end = std::string_view::npos;
  if (crlf != std::string_view::npos) end = crlf + 4;
  if (lf != std::string_view::npos) end = std::min(end, lf + 2);
  if (end != len) return false;
  std::string lower(all);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return lower.find("\nconnection: keep-alive") != std::string::npos;
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

// Waits (at most kClientCloseWaitMs) until the client has closed its side: its FIN, read as
// the end of the stream, or an error. Whatever else it sends is dropped.
void wait_for_client_close(int c) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(kClientCloseWaitMs);
  char sink[512];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0) return;
    pollfd p{c, POLLIN, 0};
    const int rc = ::poll(&p, 1, static_cast<int>(left.count()));
    if (rc < 0 && errno == EINTR) continue;
    if (rc <= 0) return;
    const ssize_t n = ::read(c, sink, sizeof sink);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
  }
}

int run_http(uint16_t port, const std::string& name, uint64_t size, int delay_ms, bool client_closes,
             int ready_fd) {
  int lfd = listen_on(port, SOCK_STREAM);
  if (lfd < 0) return die("listen on port " + std::to_string(port));
  const std::string name_line = name + "\n";
  const uint64_t length = size ? size : name_line.size();
  const std::string headers = "Content-Type: text/plain\r\nContent-Length: " + std::to_string(length) +
                              "\r\nServer: labagent\r\nX-Served-By: " + name + "\r\n";
  const std::string start = name_line.substr(0, length);
  const std::string reply = "HTTP/1.0 200 OK\r\n" + headers + "Connection: close\r\n\r\n" + start;
  const std::string kept_reply = "HTTP/1.1 200 OK\r\n" + headers +
                                 "Connection: keep-alive\r\nKeep-Alive: timeout=" +
                                 std::to_string(kKeepIdleMs / 1000) + "\r\n\r\n" + start;
  // The rest of a sized body: newlines, sent again and again from this one buffer.
  const std::string filler(length > name_line.size() ? std::min<uint64_t>(length - name_line.size(), kFillerChunk) : 0, '\n');
  auto write_reply = [&](int c, bool keep) {
    if (!write_all(c, keep ? kept_reply : reply)) return false;
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
  std::atomic<int> slow{0};
  std::atomic<int> kept{0};
  // Answers (when the head was whole) and logs; closes c, unless its client asked to keep
  // it and it is kept for the next request (true).
  auto answer = [&](int c, const sockaddr_in6& peer, Head h, std::string_view request, bool keep_asked) {
    if (h == Head::Whole && delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    char line[kAccessLineMax];
    const bool keep = h == Head::Whole && keep_asked && kept.load() < kMaxKept;
    const int status = h == Head::Whole && write_reply(c, keep) ? 200 : 0;
    if (!keep && status == 200 && client_closes) wait_for_client_close(c);
    if (!keep || status != 200) ::close(c);
    // One write per line: lines from several threads never interleave in the log.
    (void)!::write(STDOUT_FILENO, line, format_access_line(line, peer, h == Head::Whole ? request : "", status));
    return keep && status == 200;
  };
  // A kept connection, on the thread that answered it: each next request as it comes, until
  // the client closes, stays silent for kKeepIdleMs or stops asking to keep it.
  auto serve_kept = [&](int c, const sockaddr_in6& peer) {
    ++kept;
    char head[kMaxHead];
    for (;;) {
      pollfd p{c, POLLIN, 0};
      if (::poll(&p, 1, kKeepIdleMs) <= 0) {
        ::close(c);
        break;
      }
      std::size_t len = 0;
      std::string_view request;
      const Head h = read_request_head(c, head, len, request);
      if (!answer(c, peer, h, request, wants_keep_alive(head, len))) break;
    }
    --kept;
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
      const bool keep = answer(c, peer, h, request, wants_keep_alive(owned.get(), len));
      slow.fetch_sub(1);
      if (keep) serve_kept(c, peer);
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
      if (answer(c, peer, h, request, wants_keep_alive(head, len))) std::thread(serve_kept, c, peer).detach();
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
bool client_closes = false;
int ready_fd = -1;

CLI::App* add(CLI::App& app) {
  auto* http = app.add_subcommand("http", "serve HTTP, answering every request with the node name");
  http->add_option("--port", port, "TCP port to listen on")->default_val(80);
  http->add_option("--name", name, "name to answer with (default: the host name)");
  http->add_option("--size", size, "answer with a body of this many bytes: the name, then newlines")
      ->check(CLI::Range(uint64_t{1}, uint64_t{1} << 30));
  http->add_option("--delay", delay, "wait this many milliseconds before each answer: simulated work per request")
      ->check(CLI::Range(0, 60000));
  http->add_flag("--client-closes", client_closes,
                 "after an answer on a connection not kept, wait (at most 2 s) for the client to close first, "
                 "so that the client holds TIME_WAIT");
  http->add_option("--ready-fd", ready_fd, "write \"ready\" to this fd once listening");
  return http;
}

int run() {
  return run_http(port, name.empty() ? hostname_or("labagent") : name, size, delay, client_closes, ready_fd);
}

const Registered registered{{"http", add, run}};

}  // namespace
}  // namespace labagent
