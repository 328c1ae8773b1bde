// labagent load: a bounded HTTP load client that counts which server answered, how long
// each answer took (a log-linear histogram, base/histogram.h) and what went wrong, by kind.
#include <netdb.h>
#include <signal.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <latch>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "agents/common.h"
#include "agents/subcommand.h"
#include "labctl/base/histogram.h"
#include "labctl/model/load_target.h"

namespace labagent {
namespace {

using Clock = std::chrono::steady_clock;

// Set by SIGINT/SIGTERM: the workers stop sending, drop what is under way (counted as
// interrupted, not as errors) and the tallies so far are printed.
std::atomic<bool> g_stop{false};
void on_stop(int) { g_stop.store(true); }

// The load client: a fixed pool of threads (one per CPU, never more than connections),
// each driving its share of the connections without blocking (epoll, edge-triggered), as
// wrk does. Each thread counts into its own tally and reuses its buffers; the tallies are
// added at the end. A connection carries one request (HTTP/1.0, the default) or, with
// --keep-alive, one after the other (HTTP/1.1, Connection: keep-alive) for as long as the
// server keeps it open.
//
// Closed loop (the default): a connection sends its next request when the last is
// answered, and a latency runs from the send. Open loop (--rate R): requests are due on a
// fixed schedule, R per second over all threads, and a latency runs from when the request
// was due, not from when a free connection could send it: a slow answer that holds every
// connection up shows in the latencies of the requests that waited behind it (the
// coordinated-omission trap of a closed-loop client that only measures what it sent).
struct LoadTally {
  std::map<std::string, uint64_t> served;  ///< First line of the body -> answers.
  std::map<std::string, uint64_t> errors;  ///< refused, reset, timeout, closed, http 503, ...
  labctl::Histogram latency;               ///< Nanoseconds, answers only.
  uint64_t issued = 0, answered = 0, interrupted = 0, body_bytes = 0, connections = 0;
  Clock::time_point last_answer{};
};

struct LoadConn {
  int fd = -1;
  bool busy = false;     ///< A request is under way.
  bool reused = false;   ///< Answered a request already (keep-alive).
  bool retried = false;  ///< This request was sent again after a kept connection closed.
  size_t sent = 0;
  Clock::time_point due, expires;
  // The response as it arrives: its head (until the blank line), then its body counted.
  std::string head;
  bool head_done = false;
  int status = 0;
  long long body_len = -1;  ///< Content-Length; -1 until the server closes.
  uint64_t body_got = 0;
  bool close_after = false;
  std::string who;  ///< The body's first bytes (at most kWhoBytes).
  uint64_t received = 0;
};

constexpr size_t kMaxHead = 16384;
constexpr size_t kWhoBytes = 256;

std::string errno_kind(int e) {
  switch (e) {
    case ECONNREFUSED: return "refused";
    case ECONNRESET:
    case EPIPE: return "reset";
    case ETIMEDOUT: return "timeout";
    case EHOSTUNREACH:
    case ENETUNREACH: return "unreachable";
    default: return std::string("error ") + std::strerror(e);
  }
}

std::string lower(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// Reads the status and the headers that matter from a whole head; false when it is no
// HTTP/1.x response.
bool parse_head(LoadConn& c) {
  const std::string h = lower(c.head);
  if (h.rfind("http/1.", 0) != 0 || h.size() < 12) return false;
  c.status = std::atoi(h.c_str() + 9);
  static constexpr char kLen[] = "\r\ncontent-length:";
  if (auto i = h.find(kLen); i != std::string::npos) c.body_len = std::strtoll(h.c_str() + i + sizeof kLen - 1, nullptr, 10);
  const bool says_close = h.find("\r\nconnection: close") != std::string::npos;
  const bool says_keep = h.find("\r\nconnection: keep-alive") != std::string::npos;
  c.close_after = says_close || c.body_len < 0 || (h.rfind("http/1.0", 0) == 0 && !says_keep);
  return true;
}

// Takes in `n` received bytes; true once the response is complete.
bool take(LoadConn& c, const char* data, size_t n) {
  c.received += n;
  if (!c.head_done) {
    const size_t old = c.head.size();
    c.head.append(data, std::min(n, kMaxHead + 4 - old));
    const size_t e = c.head.find("\r\n\r\n");
    if (e == std::string::npos) return false;
    c.head.resize(e + 4);
    c.head_done = true;
    const size_t used = e + 4 - old;
    data += used;
    n -= used;
    if (!parse_head(c)) c.status = -1;
  }
  if (c.who.size() < kWhoBytes) c.who.append(data, std::min(n, kWhoBytes - c.who.size()));
  c.body_got += n;
  return c.body_len >= 0 && c.body_got >= static_cast<uint64_t>(c.body_len);
}

class Worker {
 public:
  Worker(const addrinfo* ai, const std::string& request, int conns, std::atomic<long long>& next, long long count,
         Clock::time_point t0, Clock::time_point deadline, double rate, double phase, bool keep_alive)
      : ai_(ai), request_(request), cs_(static_cast<size_t>(conns)), next_(next), count_(count), t0_(t0),
        deadline_(deadline), rate_(rate), phase_(phase), keep_alive_(keep_alive) {}

  /// Every worker's connections take their first request before any worker goes on
  /// (closed loop: else a worker started late finds the whole count taken by one already
  /// running, and --concurrency N would use fewer than N connections on a loaded machine).
  void start_together(std::latch* l) { together_ = l; }
  LoadTally run();

 private:
  std::latch* together_ = nullptr;
  bool open(LoadConn& c, size_t i);
  void send_some(LoadConn& c, size_t i);
  bool start(size_t i, Clock::time_point due);
  void next_request(size_t i);
  void complete(size_t i);
  void fail(size_t i, const std::string& kind);
  void drop(LoadConn& c);
  bool take_ticket() {
    if (g_stop.load() || Clock::now() >= deadline_) return false;
    return next_.fetch_add(1) < count_;
  }
  [[nodiscard]] bool tickets_left() const { return !g_stop.load() && Clock::now() < deadline_ && next_.load() < count_; }
  /// Open loop: when this thread's k-th request is due.
  [[nodiscard]] Clock::time_point due_at(uint64_t k) const {
    return t0_ + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>((static_cast<double>(k) + phase_) / rate_));
  }
  void dispatch_due();

  const addrinfo* ai_;
  const std::string& request_;
  std::vector<LoadConn> cs_;
  std::atomic<long long>& next_;
  const long long count_;
  const Clock::time_point t0_, deadline_;
  const double rate_, phase_;  ///< This thread's requests per second (0: closed loop).
  const bool keep_alive_;
  int ep_ = -1;
  int busy_ = 0;
  uint64_t scheduled_ = 0;  ///< Open loop: requests of this thread started so far.
  bool done_ = false;       ///< No request is left to take.
  LoadTally tally_;
};

void Worker::drop(LoadConn& c) {
  if (c.fd >= 0) ::close(c.fd);
  c.fd = -1;
  c.reused = false;
}

bool Worker::open(LoadConn& c, size_t i) {
  c.fd = ::socket(ai_->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c.fd < 0) return false;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLRDHUP;
  ev.data.u64 = i;
  ++tally_.connections;
  if ((::connect(c.fd, ai_->ai_addr, ai_->ai_addrlen) == 0 || errno == EINPROGRESS) &&
      ::epoll_ctl(ep_, EPOLL_CTL_ADD, c.fd, &ev) == 0)
    return true;
  return false;
}

// Sends what is left of the request; a failed connect shows as send's error.
void Worker::send_some(LoadConn& c, size_t i) {
  while (c.sent < request_.size()) {
    ssize_t w = ::send(c.fd, request_.data() + c.sent, request_.size() - c.sent, MSG_NOSIGNAL);
    if (w > 0) {
      c.sent += static_cast<size_t>(w);
      continue;
    }
    if (w < 0 && (errno == EAGAIN || errno == ENOTCONN)) return;  // not connected yet
    const int e = errno;
    if (c.reused && !c.retried && (e == EPIPE || e == ECONNRESET)) {
      // The server closed the kept connection between two requests: send again, anew.
      c.retried = true;
      drop(c);
      if (open(c, i)) {
        c.sent = 0;
        continue;
      }
    }
    fail(i, errno_kind(e));
    return;
  }
}

// Starts request i; false when its connection could not even be opened (counted as an
// error, the connection left free for the caller to try again without recursing).
bool Worker::start(size_t i, Clock::time_point due) {
  LoadConn& c = cs_[i];
  ++tally_.issued;
  c.retried = false;
  c.sent = 0;
  c.head.clear();
  c.head_done = false;
  c.status = 0;
  c.body_len = -1;
  c.body_got = 0;
  c.close_after = false;
  c.who.clear();
  c.received = 0;
  c.due = due;
  c.expires = Clock::now() + std::chrono::milliseconds(kIoTimeoutMs);
  if (c.fd < 0 && !open(c, i)) {
    ++tally_.errors[errno_kind(errno)];
    drop(c);
    return false;
  }
  c.busy = true;
  ++busy_;
  if (c.reused) send_some(c, i);
  return true;
}

// Connection i is free: closed loop, its next request now; open loop, the next one due
// (dispatch_due starts those that come due later).
void Worker::next_request(size_t i) {
  while (!done_) {
    if (rate_ > 0 && due_at(scheduled_) > Clock::now()) return;
    if (!take_ticket()) {
      done_ = true;
      return;
    }
    const auto due = rate_ > 0 ? due_at(scheduled_++) : Clock::now();
    if (start(i, due)) return;
  }
}

void Worker::dispatch_due() {
  for (size_t i = 0; i < cs_.size() && !done_; ++i)
    if (!cs_[i].busy) next_request(i);
}

void Worker::complete(size_t i) {
  LoadConn& c = cs_[i];
  const auto now = Clock::now();
  c.busy = false;
  --busy_;
  if (c.status >= 200 && c.status < 400) {
    ++tally_.answered;
    tally_.body_bytes += c.body_got;
    tally_.latency.record(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now - c.due).count()));
    tally_.last_answer = now;
    // The body names who answered: all of a short one, the first line of a long one.
    std::string who = c.who;
    if (c.body_got > who.size())
      if (auto nl = who.find('\n'); nl != std::string::npos) who.resize(nl);
    while (!who.empty() && (who.back() == '\n' || who.back() == '\r')) who.pop_back();
    if (!who.empty()) ++tally_.served[who];
  } else if (c.status > 0) {
    ++tally_.errors["http " + std::to_string(c.status)];
  } else {
    ++tally_.errors["bad response"];
  }
  if (!keep_alive_ || c.close_after) drop(c);
  else c.reused = true;
  next_request(i);
}

void Worker::fail(size_t i, const std::string& kind) {
  LoadConn& c = cs_[i];
  c.busy = false;
  --busy_;
  ++tally_.errors[kind];
  drop(c);
  next_request(i);
}

LoadTally Worker::run() {
  ep_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (ep_ < 0) {
    std::fprintf(stderr, "labagent: epoll: %s\n", std::strerror(errno));
    tally_.errors["error epoll"] += cs_.size();
    if (together_) together_->count_down();
    return tally_;
  }
  for (size_t i = 0; i < cs_.size(); ++i) next_request(i);
  if (together_) together_->arrive_and_wait();
  char buf[65536];
  epoll_event evs[64];
  auto next_scan = Clock::now() + std::chrono::milliseconds(100);
  for (;;) {
    if (g_stop.load()) {
      for (auto& c : cs_)
        if (c.busy) ++tally_.interrupted, c.busy = false, --busy_;
      break;
    }
    if (busy_ == 0 && (done_ || (rate_ > 0 && !tickets_left()))) break;
    // At most 100 ms (the timeout scan, a stop); open loop, until the next request is due,
    // to the nanosecond: a millisecond timeout would spin through the last one.
    auto wait = std::chrono::nanoseconds(std::chrono::milliseconds(100));
    if (rate_ > 0 && !done_)
      wait = std::clamp<std::chrono::nanoseconds>(due_at(scheduled_) - Clock::now(), std::chrono::nanoseconds(0), wait);
    const timespec ts{static_cast<time_t>(wait.count() / 1000000000), static_cast<long>(wait.count() % 1000000000)};
    int n = ::epoll_pwait2(ep_, evs, 64, &ts, nullptr);
    if (n < 0 && errno != EINTR) {
      std::fprintf(stderr, "labagent: epoll_pwait2: %s\n", std::strerror(errno));
      for (size_t i = 0; i < cs_.size(); ++i)
        if (cs_[i].busy) fail(i, "error epoll");
      break;
    }
    for (int k = 0; k < n; ++k) {
      const size_t i = evs[k].data.u64;
      LoadConn& c = cs_[i];
      if (!c.busy || c.fd < 0) {
        // A kept connection between requests: the server closed it (or sent what was not
        // asked for); the next request opens another.
        if (c.fd >= 0 && (evs[k].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLIN))) {
          (void)::epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
          drop(c);
        }
        continue;
      }
      if (c.sent < request_.size()) send_some(c, i);
      if (!c.busy || c.sent < request_.size() || !(evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)))
        continue;
      // Edge-triggered: read until the response is complete, the server closed, or nothing
      // more is there yet.
      for (;;) {
        ssize_t r = ::recv(c.fd, buf, sizeof buf, 0);
        if (r > 0) {
          c.expires = Clock::now() + std::chrono::milliseconds(kIoTimeoutMs);
          if (take(c, buf, static_cast<size_t>(r))) {
            complete(i);
            break;
          }
          continue;
        }
        const int e = r < 0 ? errno : 0;
        if (r < 0 && e == EAGAIN) break;
        if (c.received == 0 && c.reused && !c.retried && (r == 0 || e == ECONNRESET)) {
          // A kept connection the server closed as the request went out: send it anew.
          c.retried = true;
          drop(c);
          c.sent = 0;
          if (!open(c, i)) fail(i, errno_kind(errno));
          break;
        }
        if (r == 0 && c.head_done && c.body_len < 0) complete(i);  // the body ends with the connection
        else if (r == 0) fail(i, "closed");
        else fail(i, errno_kind(e));
        break;
      }
    }
    const auto now = Clock::now();
    if (rate_ > 0) dispatch_due();
    if (now >= next_scan) {
      next_scan = now + std::chrono::milliseconds(100);
      for (size_t i = 0; i < cs_.size(); ++i)
        if (cs_[i].busy && now >= cs_[i].expires) fail(i, "timeout");
    }
  }
  for (auto& c : cs_) drop(c);
  ::close(ep_);
  return tally_;
}

struct Options {
  std::string target;
  long long count = 100;
  int concurrency = 1;
  double seconds = 30, rate = 0;
  bool keep_alive = false, json = false;
};

double cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int run_load(const Options& o) {
  auto parsed = labctl::parse_load_target(o.target);
  if (!parsed) {
    std::fprintf(stderr, "labagent: %s (%s)\n", parsed.error().message.c_str(), parsed.error().hint.c_str());
    return 2;
  }
  // One request per connection keeps the HTTP/1.0 form servers close after; keep-alive asks
  // to keep it (HTTP/1.1, where the Host header is required anyway).
  const std::string request = o.keep_alive
      ? "GET " + parsed->path + " HTTP/1.1\r\nHost: " + parsed->host_header() + "\r\nConnection: keep-alive\r\n\r\n"
      : "GET " + parsed->path + " HTTP/1.0\r\nHost: " + parsed->host_header() + "\r\n\r\n";
  const std::string host = parsed->addr.str(), port = std::to_string(parsed->port);
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    std::fprintf(stderr, "labagent: bad target %s: %s\n", o.target.c_str(), gai_strerror(rc));
    return 2;
  }
  struct sigaction sa{};
  sa.sa_handler = on_stop;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);

  std::atomic<long long> next{0};
  const auto t0 = Clock::now();
  const auto deadline = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  const int threads = std::min(o.concurrency, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  std::vector<LoadTally> tallies(static_cast<size_t>(threads));
  std::vector<std::thread> workers;
  std::latch together(threads);
  for (int t = 0; t < threads; ++t) {
    const int conns = o.concurrency / threads + (t < o.concurrency % threads);
    // Open loop: each thread its share of the rate, its schedule offset from the others'.
    const double share = o.rate * conns / o.concurrency;
    const double phase = static_cast<double>(t) / threads;
    auto work = [&, t, conns, share, phase] {
      Worker w(res, request, conns, next, o.count, t0, deadline, share, phase, o.keep_alive);
      w.start_together(&together);
      tallies[static_cast<size_t>(t)] = w.run();
    };
    if (t + 1 < threads) workers.emplace_back(work);
    else work();
  }
  for (auto& w : workers) w.join();
  ::freeaddrinfo(res);
  LoadTally all;
  for (const auto& tally : tallies) {
    for (const auto& [who, n] : tally.served) all.served[who] += n;
    for (const auto& [kind, n] : tally.errors) all.errors[kind] += n;
    all.latency.merge(tally.latency);
    all.issued += tally.issued;
    all.answered += tally.answered;
    all.interrupted += tally.interrupted;
    all.body_bytes += tally.body_bytes;
    all.connections += tally.connections;
    all.last_answer = std::max(all.last_answer, tally.last_answer);
  }
  // The run lasts from the start to its last answer (a request cut by the time limit or a
  // timeout that came later does not stretch it), or to now when nothing was answered.
  const auto end = all.answered ? all.last_answer : Clock::now();
  const double elapsed = std::chrono::duration<double>(end - t0).count();
  uint64_t failed = 0;
  for (const auto& [kind, n] : all.errors) failed += n;
  if (o.json) {
    nlohmann::json j;
    j["requests"] = all.issued;
    j["answered"] = all.answered;
    j["interrupted"] = all.interrupted;
    j["seconds"] = elapsed;
    j["body_bytes"] = all.body_bytes;
    j["connections"] = all.connections;
    j["served"] = all.served;
    j["errors"] = all.errors;
    j["cpu_seconds"] = cpu_seconds();
    j["stopped"] = g_stop.load();
    nlohmann::json buckets = nlohmann::json::array();
    for (const auto& [i, n] : all.latency.buckets()) buckets.push_back({i, n});
    j["latency_ns"] = {{"count", all.latency.count()}, {"min", all.latency.min()}, {"max", all.latency.max()},
                       {"buckets", buckets}};
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    for (const auto& [who, n] : all.served) std::printf("%s %llu\n", who.c_str(), static_cast<unsigned long long>(n));
    if (failed) std::printf("failed %llu\n", static_cast<unsigned long long>(failed));
  }
  std::fflush(stdout);
  return all.answered == 0 && !g_stop.load() ? 1 : 0;
}

Options opts;

CLI::App* add(CLI::App& app) {
  auto* load = app.add_subcommand("load", "send COUNT HTTP GETs and count who answered");
  load->add_option("--target", opts.target, "http://ADDRESS[:PORT][/PATH] or ADDRESS:PORT (numeric) to send to")->required();
  load->add_option("--count", opts.count, "number of requests")->default_val(100)->check(CLI::Range(1LL, 100000000LL));
  load->add_option("--concurrency", opts.concurrency, "parallel connections")->default_val(1)->check(CLI::Range(1, 256));
  load->add_option("--seconds", opts.seconds, "stop sending after this many seconds")
      ->default_val(30)->check(CLI::Range(0.01, 3600.0));
  load->add_option("--rate", opts.rate,
                   "open loop: send R requests per second on a fixed schedule, latency counted from when "
                   "each was due (default: closed loop, each connection sends when answered)")
      ->check(CLI::Range(0.1, 1000000.0));
  load->add_flag("--keep-alive", opts.keep_alive,
                 "send request after request on each connection (HTTP/1.1 keep-alive) instead of one "
                 "connection per request (HTTP/1.0)");
  load->add_flag("--json", opts.json,
                 "print one JSON object: answers, errors by kind, body bytes, the latency histogram's buckets");
  return load;
}

int run() { return run_load(opts); }

const Registered registered{{"load", add, run}};

}  // namespace
}  // namespace labagent
