// labagent supervise: runs an agent as its child inside the lab node, so that someone sees
// how it ends. labctl execs this (never C++ after fork in its own threaded process); it
//   - tells labctl on --ready-fd when the agent is ready: listening on its port (read from
//     /proc/self/net, which shows this namespace's sockets), or alive for 200 ms without a
//     port (a oneshot client may also have exited 0 by then); or "failed: WHY". Alive means
//     200 ms the program has had, as the scheduler counts it (kernel/process.h: time_had),
//     not 200 ms of a loaded machine in which it may not have run at all;
//   - records the agent's state in a JSON file (plan/agent.h: AgentState) for status and ls;
//   - caps the agent's log (its stdout and stderr, a file): past 16 MiB it is copied to
//     LOG.1 (replacing the one before) and emptied, with a note saying so;
//   - passes SIGTERM/SIGINT on and exits without restarting (that is how `down` stops it);
//   - with --restart on-failure, starts it again after a failure, after a delay that doubles
//     from 0.5 s up to 8 s (back to 0.5 s once a run lasted 10 s).
#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <linux/close_range.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "agents/common.h"
#include "labctl/base/file.h"
#include "labctl/kernel/process.h"
#include "labctl/plan/agent.h"

namespace labagent {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr auto kPollTick = 10ms;
constexpr auto kFirstBackoff = 500ms;
constexpr auto kMaxBackoff = 8s;
constexpr auto kStableRun = 10s;
constexpr auto kLogCheck = 1s;  // how often a supervised agent's log size is looked at

class Supervisor {
 public:
  explicit Supervisor(const SuperviseOptions& o) : o_(o) {
    st_.node = o.node;
    st_.agent = o.agent;
    st_.supervisor = ::getpid();
    st_.oneshot = o.oneshot;
  }

  int run() {
    sigset_t set;
    sigemptyset(&set);
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGCHLD}) sigaddset(&set, sig);
    ::sigprocmask(SIG_BLOCK, &set, &old_mask_);
    sfd_ = ::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    // labctl may be gone before the answer on --ready-fd (killed mid-up): a write to the
    // closed pipe must not kill the supervisor. The agent gets SIGPIPE back (start()).
    ::signal(SIGPIPE, SIG_IGN);
    if (sfd_ < 0) return die("signalfd");
    if (o_.ready_fd >= 0) ::fcntl(o_.ready_fd, F_SETFD, FD_CLOEXEC);
    if (!parse_listen())
      return report_failed("bad --listen " + o_.listen + " (want tcp:PORT or udp:PORT)");

    if (!start()) return report_failed("cannot start " + o_.argv[0] + ": " + std::strerror(errno));
    if (int rc = await_ready(); rc >= 0) return rc;
    return supervise();
  }

 private:
  bool parse_listen() {
    if (o_.listen.empty()) return true;
    auto colon = o_.listen.find(':');
    if (colon == std::string::npos) return false;
    std::string proto = o_.listen.substr(0, colon);
    if (proto != "tcp" && proto != "udp") return false;
    udp_ = proto == "udp";
    const char* b = o_.listen.data() + colon + 1;
    const char* e = o_.listen.data() + o_.listen.size();
    auto [end, ec] = std::from_chars(b, e, port_);
    return ec == std::errc{} && end == e && port_ > 0;
  }

  bool start() {
    auto argv = c_argv();
    pid_t pid = ::fork();
    if (pid < 0) return false;
    if (pid == 0) {
      ::signal(SIGPIPE, SIG_DFL);
      ::sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
      // The agent gets stdin, stdout and stderr; the signalfd, the ready pipe and anything
      // else stay with the supervisor.
      ::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
      ::execvp(argv[0], argv.data());
      std::fprintf(stderr, "labagent supervise: cannot run %s: %s\n", argv[0],
                   std::strerror(errno));
      ::_exit(127);
    }
    st_.pid = pid;
    started_ = Clock::now();
    save("starting");
    return true;
  }

  std::vector<char*> c_argv() {
    std::vector<char*> v;
    for (auto& s : o_.argv) v.push_back(s.data());
    v.push_back(nullptr);
    return v;
  }

  // Reads pending signals; returns true when the child has ended (st_ updated).
  bool drain_signals() {
    signalfd_siginfo si;
    bool child_ended = false;
    while (::read(sfd_, &si, sizeof si) == sizeof si) {
      if (si.ssi_signo == SIGCHLD) continue;
      if (!stopping_) {
        stopping_ = true;
        if (st_.pid > 0) ::kill(st_.pid, SIGTERM);
      }
    }
    int ws = 0;
    if (st_.pid > 0 && ::waitpid(st_.pid, &ws, WNOHANG) == st_.pid) {
      st_.pid = 0;
      st_.code = WIFEXITED(ws) ? WEXITSTATUS(ws) : -1;
      st_.signal = WIFSIGNALED(ws) ? WTERMSIG(ws) : 0;
      child_ended = true;
    }
    return child_ended;
  }

  // Waits up to `d` for a signal; returns true when the child has ended.
  bool wait_for(std::chrono::milliseconds d) {
    pollfd p{sfd_, POLLIN, 0};
    int rc = ::poll(&p, 1, static_cast<int>(d.count()));
    return rc > 0 ? drain_signals() : false;
  }

  // Whether an interface of this namespace holds the address (keepalived's VIP: the
  // MASTER has won its election once it holds it).
  bool holds_address() const {
    ifaddrs* all = nullptr;
    if (::getifaddrs(&all) != 0) return false;
    bool found = false;
    for (ifaddrs* i = all; i && !found; i = i->ifa_next) {
      if (!i->ifa_addr) continue;
      char buf[INET6_ADDRSTRLEN] = {};
      if (i->ifa_addr->sa_family == AF_INET)
        ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, buf, sizeof buf);
      else if (i->ifa_addr->sa_family == AF_INET6)
        ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, buf, sizeof buf);
      found = o_.ready_address == buf;
    }
    ::freeifaddrs(all);
    return found;
  }

  bool ready_now() {
    if (!o_.ready_address.empty()) return holds_address();
    if (port_) return labctl::port_ready_here(udp_, port_);
    const auto alive = o_.alive_ms > 0 ? std::chrono::milliseconds(o_.alive_ms) : labctl::kAgentAliveTime;
    const auto facts = labctl::sched_facts(st_.pid);
    return facts && labctl::time_had(*facts, Clock::now() - started_) >= alive;
  }

  // The log is our stdout (labctl opened it O_APPEND, shared with the agent's 1 and 2).
  // Past the cap: copied to LOG.1 (mkstemp + rename, 0600), then emptied; appends go on at
  // its start. Lines written between the copy and the truncate are lost: the price of not
  // passing every line of the agent's through the supervisor.
  void cap_log() {
    const long long cap = o_.log_cap_bytes > 0 ? o_.log_cap_bytes : labctl::kAgentLogCap;
    struct stat st{};
    if (::fstat(1, &st) != 0 || !S_ISREG(st.st_mode) || st.st_nlink == 0 || st.st_size < cap)
      return;
    std::error_code ec;
    const std::string path = std::filesystem::read_symlink("/proc/self/fd/1", ec).string();
    struct stat at{};
    labctl::Fd in(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (ec || !in || ::fstat(in.get(), &at) != 0 || at.st_dev != st.st_dev || at.st_ino != st.st_ino)
      return;  // not a file we can name again
    const std::string older = labctl::rotated_log_path(path);
    auto tmp = labctl::make_temp_file_beside(older);
    if (!tmp) return;
    bool ok = true;
    char buf[65536];
    for (ssize_t n; ok && (n = ::read(in.get(), buf, sizeof buf)) != 0;) {
      if (n < 0) {
        ok = errno == EINTR;
        continue;
      }
      ok = static_cast<bool>(labctl::write_all(tmp->fd.get(), std::string_view(buf, static_cast<size_t>(n)), older));
    }
    if (!ok || !labctl::commit_temp_file(*tmp, older, 0600)) {
      ::unlink(tmp->path.c_str());
      return;
    }
    if (::ftruncate(1, 0) == 0)
      std::fprintf(stderr, "labagent supervise: the log passed %lld bytes; what it held is in %s\n",
                   cap, older.c_str());
  }

  // -1 once ready (go on supervising), else the exit status of the supervisor.
  int await_ready() {
    const auto deadline = started_ + std::chrono::milliseconds(o_.ready_timeout_ms);
    for (;;) {
      bool ended = wait_for(kPollTick) || drain_signals();
      cap_log();
      // Ready only if it has not ended meanwhile: an exit not yet reaped is no readiness.
      const bool ready = !ended && !stopping_ && ready_now();
      if (ready) ended = drain_signals();
      if (ended) {
        if (stopping_) return finish("stopped");
        if (o_.oneshot && st_.code == 0) {
          save("exited");
          report("ready");
          return 0;
        }
        save("exited");
        return report_failed(labctl::agent_last_exit(st_) + " before it was ready");
      }
      if (stopping_) {
        stop_child();
        return finish("stopped");
      }
      if (ready) {
        save("running");
        report("ready");
        return -1;
      }
      if (Clock::now() >= deadline) {
        std::string why = (o_.ready_address.empty() ? "not listening on " + o_.listen
                                                     : "not holding " + o_.ready_address) +
                          " after " + std::to_string(o_.ready_timeout_ms) + " ms";
        stop_child();
        save("exited");
        return report_failed(why);
      }
    }
  }

  int supervise() {
    auto backoff = std::chrono::milliseconds(kFirstBackoff);
    for (;;) {
      const bool ended = wait_for(kLogCheck);
      cap_log();
      if (stopping_) {
        stop_child();
        return finish("stopped");
      }
      if (!ended) continue;
      const bool failed = st_.code != 0;
      if (!failed || !o_.restart_on_failure) return finish("exited");
      if (Clock::now() - started_ >= kStableRun) backoff = kFirstBackoff;
      save("restarting");
      std::fprintf(stderr, "labagent supervise: %s; restarting in %lld ms\n",
                   labctl::agent_last_exit(st_).c_str(), static_cast<long long>(backoff.count()));
      const auto until = Clock::now() + backoff;
      while (!stopping_ && Clock::now() < until)
        wait_for(std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()) + 1ms);
      if (stopping_) return finish("stopped");
      backoff = std::min<std::chrono::milliseconds>(backoff * 2, kMaxBackoff);
      ++st_.restarts;
      if (!start()) {
        std::fprintf(stderr, "labagent supervise: cannot start %s: %s\n", o_.argv[0].c_str(),
                     std::strerror(errno));
        return finish("exited");
      }
      save("running");
    }
  }

  // SIGTERM, then SIGKILL after the stop grace (a second by default; keepalived takes
  // longer to release its VIPs and IPVS entries); reaps the child.
  void stop_child() {
    if (st_.pid <= 0) return;
    ::kill(st_.pid, SIGTERM);
    const auto until = Clock::now() + std::chrono::milliseconds(o_.stop_grace_ms);
    while (st_.pid > 0 && Clock::now() < until) wait_for(kPollTick);
    if (st_.pid > 0) {
      ::kill(st_.pid, SIGKILL);
      int ws = 0;
      while (::waitpid(st_.pid, &ws, 0) < 0 && errno == EINTR) {
      }
      st_.pid = 0;
      st_.code = -1;
      st_.signal = SIGKILL;
    }
  }

  int finish(const char* state) {
    save(state);
    return 0;
  }

  void save(const char* state) {
    st_.state = state;
    if (o_.state_path.empty()) return;
    // Written whole (mkstemp beside, renamed; 0600), so a reader never sees half a record
    // and a planted name is never followed.
    if (labctl::Status st = labctl::write_text(o_.state_path, labctl::agent_state_text(st_)); !st)
      std::fprintf(stderr, "labagent supervise: cannot record the state: %s\n",
                   st.error().str().c_str());
  }

  void report(const std::string& line) {
    if (o_.ready_fd < 0) return;
    std::string l = line + "\n";
    (void)!::write(o_.ready_fd, l.data(), l.size());
    ::close(o_.ready_fd);
    o_.ready_fd = -1;
  }

  int report_failed(const std::string& why) {
    std::fprintf(stderr, "labagent supervise: %s\n", why.c_str());
    report("failed: " + why);
    return 1;
  }

  SuperviseOptions o_;
  labctl::AgentState st_;
  int sfd_ = -1;
  sigset_t old_mask_{};
  bool udp_ = false;
  uint16_t port_ = 0;
  bool stopping_ = false;
  Clock::time_point started_{};
};

}  // namespace

int run_supervise(const SuperviseOptions& o) {
  if (o.argv.empty()) {
    std::fprintf(stderr, "labagent supervise: nothing to run (give the agent's argv after --)\n");
    return 2;
  }
  return Supervisor(o).run();
}

}  // namespace labagent
