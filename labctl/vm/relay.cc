#include "labctl/vm/relay.h"

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "labctl/base/fd.h"
#include "labctl/base/file.h"

namespace labctl {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

// Stdin bytes either side holds for the other at most before it stops reading more.
constexpr size_t kMaxQueuedStdin = 1u << 20;

bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      ::poll(&p, 1, 100);
      continue;
    }
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool send_frame(int fd, FrameType t, std::string_view payload = {}) {
  return write_all(fd, encode_frame(t, payload));
}

std::string random_nonce() {
  std::random_device rd;
  return fmt::format("{:08x}{:08x}", rd(), rd());
}

// ---------------------------------------------------------------------------------------
// Host side

// A claimed port: its lock held and its socket connected. Released on destruction.
struct Claim {
  Fd lock, sock;
};

Result<std::optional<Claim>> try_port(const RelayPort& p) {
  Fd lock(::open(p.lock.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!lock) return fail_errno("open " + p.lock, errno);
  if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) return std::optional<Claim>{};
    return fail_errno("lock " + p.lock, errno);
  }
  Fd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock) return fail_errno("socket", errno);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  if (p.socket.size() >= sizeof sa.sun_path) return fail("socket path too long: " + p.socket);
  std::memcpy(sa.sun_path, p.socket.c_str(), p.socket.size() + 1);
  if (::connect(sock.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0)
    return fail_errno("connect to the micro-VM at " + p.socket, errno,
                      "its qemu is not running: `labctl status` says more; `labctl down LAB` cleans up");
  return std::optional<Claim>{Claim{std::move(lock), std::move(sock)}};
}

Result<Claim> claim_port(const std::vector<RelayPort>& ports) {
  bool told = false;
  for (;;) {
    for (const auto& p : ports) {
      TRY_ASSIGN(auto c, try_port(p));
      if (c) return std::move(*c);
    }
    if (!told)
      std::fprintf(stderr, "labctl: all %zu channels to the micro-VM are busy; waiting for one\n",
                   ports.size());
    told = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// Raw mode on the host terminal for a relayed pseudo-terminal session; restored after.
class RawTerminal {
 public:
  explicit RawTerminal(int fd) : fd_(fd) {
    if (::tcgetattr(fd, &saved_) != 0) return;
    termios raw = saved_;
    ::cfmakeraw(&raw);
    active_ = ::tcsetattr(fd, TCSANOW, &raw) == 0;
  }
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;
  ~RawTerminal() {
    if (active_) ::tcsetattr(fd_, TCSANOW, &saved_);
  }

 private:
  int fd_;
  termios saved_{};
  bool active_ = false;
};

class BlockedSignals {
 public:
  BlockedSignals() {
    sigemptyset(&set_);
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGPIPE}) sigaddset(&set_, s);
    ::sigprocmask(SIG_BLOCK, &set_, &old_);
    sigset_t fd_set = set_;
    sigdelset(&fd_set, SIGPIPE);  // write errors come back as EPIPE instead
    fd_.reset(::signalfd(-1, &fd_set, SFD_CLOEXEC | SFD_NONBLOCK));
  }
  BlockedSignals(const BlockedSignals&) = delete;
  BlockedSignals& operator=(const BlockedSignals&) = delete;
  ~BlockedSignals() {
    fd_.reset();
    ::sigprocmask(SIG_SETMASK, &old_, nullptr);
  }
  [[nodiscard]] int fd() const { return fd_.get(); }

 private:
  sigset_t set_{}, old_{};
  Fd fd_;
};

std::pair<uint16_t, uint16_t> window_size(int fd) {
  winsize ws{};
  if (::ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) return {ws.ws_row, ws.ws_col};
  return {24, 80};
}

}  // namespace

Result<int> relay_run(const std::vector<RelayPort>& ports, RelayRequest req, const RelayIo& io) {
  if (ports.empty()) return fail("relay: no ports to the micro-VM");
  BlockedSignals signals;
  TRY_ASSIGN(Claim claim, claim_port(ports));
  const int sock = claim.sock.get();
  // Never blocked on the port: the guest's output is read while our stdin waits to go out
  // (both blocked on a full channel would be a deadlock).
  if (::fcntl(sock, F_SETFL, ::fcntl(sock, F_GETFL) | O_NONBLOCK) != 0)
    return fail_errno("relay: make the socket non-blocking", errno);
  req.nonce = random_nonce();
  if (req.tty) std::tie(req.rows, req.cols) = window_size(io.out);
  std::optional<RawTerminal> raw;
  if (req.tty) raw.emplace(io.in);
  std::string tx = encode_frame(FrameType::kRequest, encode_request(req));
  auto queue = [&](FrameType t, std::string_view payload = {}) { tx += encode_frame(t, payload); };

  const auto deadline = io.timeout_s > 0 ? Clock::now() + std::chrono::seconds(io.timeout_s)
                                         : Clock::time_point::max();
  SessionFrames session(req.nonce);
  int signals_sent = 0;
  bool stdin_open = io.in >= 0;
  if (!stdin_open) queue(FrameType::kStdinEof);
  FrameDecoder dec;
  char buf[65536];
  for (;;) {
    // Stdin is read only while little waits to go out: the guest sets the pace.
    const bool want_stdin = stdin_open && tx.size() < kMaxQueuedStdin;
    pollfd p[3] = {{sock, static_cast<short>(POLLIN | (tx.empty() ? 0 : POLLOUT)), 0},
                   {signals.fd(), POLLIN, 0},
                   {want_stdin ? io.in : -1, POLLIN, 0}};
    int left = -1;
    if (deadline != Clock::time_point::max()) {
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (ms <= 0)
        return fail_errno(fmt::format("relay: the command did not finish within {} s; it was stopped",
                                      io.timeout_s),
                          ETIMEDOUT);
      left = static_cast<int>(std::min<long long>(ms, 1000));
    }
    if (::poll(p, 3, left) < 0 && errno != EINTR) return fail_errno("relay: poll", errno);
    for (signalfd_siginfo si; ::read(signals.fd(), &si, sizeof si) == sizeof si;) {
      if (si.ssi_signo == SIGWINCH) {
        if (req.tty) {
          auto [r, c] = window_size(io.out);
          queue(FrameType::kWinsize, encode_winsize(r, c));
        }
      } else if (!session.started() || ++signals_sent > 2) {
        // Nothing runs yet, or the command ignored two: give up on it (the guest then
        // stops it as when the host goes away).
        return fail_errno(fmt::format("relay: interrupted by SIG{}", sigabbrev_np(static_cast<int>(si.ssi_signo))),
                          EINTR);
      } else {
        queue(FrameType::kSignal, std::string(1, static_cast<char>(si.ssi_signo)));
      }
    }
    if (want_stdin && (p[2].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = ::read(io.in, buf, sizeof buf);
      if (n > 0) {
        queue(FrameType::kStdin, std::string_view(buf, static_cast<size_t>(n)));
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        stdin_open = false;
        queue(FrameType::kStdinEof);
      }
    }
    while (!tx.empty()) {
      // MSG_NOSIGNAL: a guest gone away is an error here, not a SIGPIPE pending on us.
      ssize_t n = ::send(sock, tx.data(), tx.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) break;
      if (n <= 0)
        return fail_errno("relay: the micro-VM went away before the command finished",
                          ECONNRESET, "its qemu stopped: `labctl status` says more");
      tx.erase(0, static_cast<size_t>(n));
    }
    if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = ::read(sock, buf, sizeof buf);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0)
        return fail_errno("relay: the micro-VM went away before the command finished",
                          ECONNRESET, "its qemu stopped: `labctl status` says more");
      dec.feed(std::string_view(buf, static_cast<size_t>(n)));
      for (;;) {
        TRY_ASSIGN(auto f, dec.next());
        if (!f) break;
        TRY_ASSIGN(bool ours, session.accept(*f));
        if (!ours) continue;
        switch (f->type) {
          case FrameType::kStdout:
            if (io.capture) io.capture->append(f->payload);
            else write_all(io.out, f->payload);
            break;
          case FrameType::kStderr:
            write_all(io.err, f->payload);
            break;
          case FrameType::kExit: {
            auto code = decode_u32(f->payload);
            if (!code) return fail("relay: a malformed exit status from the micro-VM");
            return static_cast<int>(*code);
          }
          case FrameType::kError:
            return fail("in the micro-VM: " + f->payload);
          default:
            break;
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------
// Guest side

namespace {

// The device of the virtio-serial port called `name` (udev would make /dev/virtio-ports/NAME;
// the guest has no udev).
std::string find_port_device(const std::string& name) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/sys/class/virtio-ports", ec)) {
    std::ifstream in(e.path() / "name");
    std::string n;
    if (std::getline(in, n) && n == name) return "/dev/" + e.path().filename().string();
  }
  return {};
}

struct Session {
  pid_t pid = -1;
  Fd pidfd;
  Fd in, out, err;  // our ends; with a pty, out is the master and in duplicates it
  bool tty = false;
};

Result<Session> spawn(const RelayRequest& r, const std::string& self_exe) {
  Session s;
  s.tty = r.tty;
  int in_p[2] = {-1, -1}, out_p[2] = {-1, -1}, err_p[2] = {-1, -1};
  int master = -1, slave = -1;
  if (r.tty) {
    winsize ws{};
    ws.ws_row = r.rows;
    ws.ws_col = r.cols;
    if (::openpty(&master, &slave, nullptr, nullptr, &ws) != 0) return fail_errno("openpty", errno);
  } else if (::pipe2(in_p, O_CLOEXEC) != 0 || ::pipe2(out_p, O_CLOEXEC) != 0 ||
             ::pipe2(err_p, O_CLOEXEC) != 0) {
    return fail_errno("pipe", errno);
  }
  std::vector<std::string> argv = {self_exe};
  argv.insert(argv.end(), r.argv.begin(), r.argv.end());
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  std::vector<std::string> env = r.env;
  env.emplace_back("LABCTL_IN_VM=1");
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  s.pid = ::fork();
  if (s.pid < 0) return fail_errno("fork", errno);
  if (s.pid == 0) {
    ::setsid();
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    if (r.tty) {
      ::ioctl(slave, TIOCSCTTY, 0);
      ::dup2(slave, 0);
      ::dup2(slave, 1);
      ::dup2(slave, 2);
      if (slave > 2) ::close(slave);
      ::close(master);
    } else {
      ::dup2(in_p[0], 0);
      ::dup2(out_p[1], 1);
      ::dup2(err_p[1], 2);
    }
    if (::chdir(r.cwd.c_str()) != 0 && ::chdir("/") != 0) ::_exit(125);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  s.pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, s.pid, 0)));
  if (r.tty) {
    ::close(slave);
    s.out.reset(master);
    s.in.reset(::dup(master));
  } else {
    ::close(in_p[0]);
    ::close(out_p[1]);
    ::close(err_p[1]);
    s.in.reset(in_p[1]);
    s.out.reset(out_p[0]);
    s.err.reset(err_p[0]);
  }
  return s;
}

// Stops what a vanished host left running: SIGHUP and SIGTERM to its group (labctl rolls
// back on both), SIGKILL after a grace period.
void stop_session(Session& s) {
  ::kill(-s.pid, SIGHUP);
  ::kill(-s.pid, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    if (::waitpid(s.pid, nullptr, WNOHANG) == s.pid) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ::kill(-s.pid, SIGKILL);
  ::waitpid(s.pid, nullptr, 0);
}

// Forwards a stream to the host until it ends; false when it ended.
bool pump(int from, int port, FrameType t) {
  char buf[32768];
  ssize_t n = ::read(from, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
  if (n <= 0) return false;  // EOF, or EIO from a pty master whose last user left
  send_frame(port, t, std::string_view(buf, static_cast<size_t>(n)));
  return true;
}

// One command, from its request to its exit status. Returns when it ended or the host left.
void run_session(int port, const RelayRequest& r, const std::string& self_exe, FrameDecoder& dec) {
  auto s = spawn(r, self_exe);
  send_frame(port, FrameType::kStarted, r.nonce);
  if (!s) {
    send_frame(port, FrameType::kError, s.error().str());
    return;
  }
  // Stdin goes to the command only as fast as it takes it, and never at the price of its
  // output: a command that writes before it has read all of its input (cat) would block
  // on a full stdout pipe while we block on its full stdin pipe.
  ::fcntl(s->in.get(), F_SETFL, ::fcntl(s->in.get(), F_GETFL) | O_NONBLOCK);
  std::string pending_in;
  bool in_eof = false;
  auto feed_stdin = [&] {
    while (s->in && !pending_in.empty()) {
      ssize_t n = ::write(s->in.get(), pending_in.data(), pending_in.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) return;
      if (n <= 0) {  // the command closed its stdin: the rest has no reader
        pending_in.clear();
        s->in.reset();
        return;
      }
      pending_in.erase(0, static_cast<size_t>(n));
    }
    if (in_eof && pending_in.empty() && !s->tty) s->in.reset();
  };
  bool out_open = true, err_open = static_cast<bool>(s->err), exited = false;
  int status = 0;
  Clock::time_point exited_at{};
  char buf[65536];
  // Handles every whole frame the decoder holds; false on a frame that cannot be decoded.
  // Called once before the first poll too: the read that brought the request may have
  // brought its stdin and end of stdin with it, and nothing more may ever arrive.
  auto handle_frames = [&]() -> bool {
    for (;;) {
      auto f = dec.next();
      if (!f) return false;
      if (!*f) return true;
      switch ((*f)->type) {
        case FrameType::kStdin:
          if (s->in) pending_in += (*f)->payload;
          break;
        case FrameType::kStdinEof:
          in_eof = true;  // a terminal has no end: there the user types ^D
          break;
        case FrameType::kWinsize:
          if (auto ws = decode_winsize((*f)->payload); ws && s->tty) {
            winsize w{};
            w.ws_row = ws->first;
            w.ws_col = ws->second;
            ::ioctl(s->out.get(), TIOCSWINSZ, &w);
          }
          break;
        case FrameType::kSignal:
          if ((*f)->payload.size() == 1 && !exited) ::kill(-s->pid, static_cast<unsigned char>((*f)->payload[0]));
          break;
        default:
          break;
      }
    }
  };
  if (!handle_frames()) {
    stop_session(*s);
    return;
  }
  feed_stdin();
  for (;;) {
    // The host's frames are read only while little stdin waits for the command; the
    // port's hang-up is seen either way.
    const short port_events = pending_in.size() < kMaxQueuedStdin ? POLLIN : 0;
    pollfd p[5] = {{port, port_events, 0},
                   {out_open ? s->out.get() : -1, POLLIN, 0},
                   {err_open ? s->err.get() : -1, POLLIN, 0},
                   {exited ? -1 : s->pidfd.get(), POLLIN, 0},
                   {s->in && !pending_in.empty() ? s->in.get() : -1, POLLOUT, 0}};
    // After the exit, output still in flight is read; a grandchild keeping the pipes open
    // (a detached agent) must not hold the status back: 300 ms of quiet ends it.
    ::poll(p, 5, exited ? 300 : -1);
    if ((p[0].revents & POLLHUP) && !(p[0].revents & POLLIN)) {
      if (!exited) stop_session(*s);
      return;  // the host hung up
    }
    if (p[0].revents & POLLIN) {
      ssize_t n = ::read(port, buf, sizeof buf);
      if (n <= 0) {
        if (!exited) stop_session(*s);
        return;
      }
      dec.feed(std::string_view(buf, static_cast<size_t>(n)));
      if (!handle_frames()) {
        if (!exited) stop_session(*s);
        return;
      }
    }
    feed_stdin();
    bool quiet = true;
    if (out_open && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      out_open = pump(s->out.get(), port, FrameType::kStdout);
      quiet = false;
    }
    if (err_open && (p[2].revents & (POLLIN | POLLHUP | POLLERR))) {
      err_open = pump(s->err.get(), port, FrameType::kStderr);
      quiet = false;
    }
    if (!exited && (p[3].revents & POLLIN)) {
      if (::waitpid(s->pid, &status, 0) == s->pid) {
        exited = true;
        exited_at = Clock::now();
      }
    }
    if (exited && ((!out_open && !err_open) || (quiet && Clock::now() - exited_at > std::chrono::milliseconds(300)))) {
      send_frame(port, FrameType::kExit, encode_u32(static_cast<uint32_t>(shell_status(status))));
      return;
    }
  }
}

}  // namespace

[[noreturn]] void serve_relay_port(int port, const std::string& self_exe) {
  ::signal(SIGPIPE, SIG_IGN);  // a command that closed its stdin is an EPIPE, not our end
  FrameDecoder dec;
  char buf[65536];
  for (;;) {
    pollfd p{port, POLLIN, 0};
    ::poll(&p, 1, -1);
    if (p.revents & POLLHUP) {
      // No host connected: reads return end of file at once, so poll would spin; look
      // again shortly. Nothing is drained here: a host connecting meanwhile would lose its
      // request. What a departed host left are whole frames, skipped until a request.
      dec.reset();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    ssize_t n = ::read(port, buf, sizeof buf);
    if (n <= 0) continue;
    dec.feed(std::string_view(buf, static_cast<size_t>(n)));
    for (;;) {
      auto f = dec.next();
      if (!f) {
        dec.reset();
        break;
      }
      if (!*f) break;
      if ((*f)->type != FrameType::kRequest) continue;
      auto req = decode_request((*f)->payload);
      if (!req) {
        // Answered, so the host fails at once instead of waiting for its session.
        send_frame(port, FrameType::kStarted, request_nonce((*f)->payload));
        send_frame(port, FrameType::kError, req.error().str());
        continue;
      }
      run_session(port, *req, self_exe, dec);
      dec.reset();
      break;
    }
  }
}

namespace {

[[noreturn]] void serve_port(const std::string& dev, const std::string& self_exe) {
  Fd port(::open(dev.c_str(), O_RDWR | O_CLOEXEC));
  if (!port) {
    std::fprintf(stderr, "labctl vm serve: open %s: %s\n", dev.c_str(), std::strerror(errno));
    ::_exit(1);
  }
  serve_relay_port(port.get(), self_exe);
  ::_exit(1);
}

}  // namespace

Status serve_relay(const std::vector<std::string>& port_names, const std::string& self_exe,
                   const std::string& ready_file) {
  std::vector<std::string> devs;
  for (const auto& name : port_names) {
    std::string dev;
    // The ports appear shortly after virtio_console is loaded.
    for (int i = 0; i < 200 && (dev = find_port_device(name)).empty(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (dev.empty())
      return fail("no virtio-serial port " + name + " in /sys/class/virtio-ports",
                  "the guest kernel needs virtio_console, and qemu a virtserialport named " + name);
    devs.push_back(dev);
  }
  ::signal(SIGPIPE, SIG_IGN);
  std::map<pid_t, std::string> servers;
  auto start = [&](const std::string& dev) {
    pid_t pid = ::fork();
    if (pid == 0) serve_port(dev, self_exe);
    if (pid > 0) servers[pid] = dev;
  };
  for (const auto& d : devs) start(d);
  TRY(write_text(ready_file, "ready\n"));
  for (;;) {
    int st = 0;
    pid_t pid = ::waitpid(-1, &st, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      return fail_errno("labctl vm serve: wait", errno);
    }
    auto it = servers.find(pid);
    if (it == servers.end()) continue;  // an orphan the init handed us
    std::string dev = it->second;
    servers.erase(it);
    std::fprintf(stderr, "labctl vm serve: the server of %s stopped (%d); restarting it\n",
                 dev.c_str(), shell_status(st));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    start(dev);
  }
}

}  // namespace labctl
