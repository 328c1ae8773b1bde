#include "labctl/lab/remote.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include "labctl/base/file.h"
#include "labctl/base/shell_quote.h"

namespace labctl {
namespace {

std::vector<std::string> ssh_base(const std::string& control) {
  std::vector<std::string> argv = {resolve_program("ssh").value_or("/usr/bin/ssh")};
  if (const char* cfg = std::getenv("LABCTL_SSH_CONFIG"); cfg && *cfg) {
    argv.emplace_back("-F");
    argv.emplace_back(cfg);
  }
  // BatchMode: never a password prompt a pipeline would hang on; keys come from the user.
  for (const char* o : {"BatchMode=yes", "ConnectTimeout=15", "ServerAliveInterval=5", "ServerAliveCountMax=3"}) {
    argv.emplace_back("-o");
    argv.emplace_back(o);
  }
  if (!control.empty()) {
    argv.emplace_back("-o");
    argv.emplace_back("ControlPath=" + control);
  }
  return argv;
}

void reap(pid_t pid, std::chrono::milliseconds within) {
  const auto until = std::chrono::steady_clock::now() + within;
  int status = 0;
  while (std::chrono::steady_clock::now() < until) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid || (r < 0 && errno == ECHILD)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, SIGKILL);
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
}

}  // namespace

std::vector<std::string> ssh_command(const RemoteHost& h, const std::string& control,
                                     const std::vector<std::string>& words) {
  std::vector<std::string> argv = ssh_base(control);
  if (!control.empty()) {
    argv.emplace_back("-o");
    argv.emplace_back("ControlMaster=no");
  }
  argv.emplace_back("-T");
  argv.emplace_back("--");
  argv.push_back(h.destination);
  // ssh hands the remote side one string for its login shell: every word quoted, so a
  // name or path is never shell syntax there.
  argv.push_back(shell_join(words));
  return argv;
}

Result<std::unique_ptr<SshSession>> SshSession::open(const RemoteHost& h, std::chrono::seconds timeout) {
  char tmpl[] = "/tmp/labctl-ssh.XXXXXX";
  if (!::mkdtemp(tmpl)) return fail_errno("make a private folder for the ssh connection to " + h.name, errno);
  const std::string dir = tmpl;
  auto cleanup = [&] {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  };
  const std::string log = dir + "/ssh.log";
  const std::string control = dir + "/control";
  std::vector<std::string> argv = ssh_base(control);
  for (const char* o : {"-M", "-N", "-o", "ControlMaster=yes", "-o", "ControlPersist=no", "--"}) argv.emplace_back(o);
  argv.push_back(h.destination);

  Fd err(::open(log.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!err) {
    cleanup();
    return fail_errno("create " + log, errno);
  }
  // Its own process group: a Ctrl-C meant for labctl (which rolls back over this very
  // connection) must not cut the connection first.
  auto spawned = spawn_in_own_group(argv, -1, -1, err.get());
  if (!spawned) {
    cleanup();
    Error e = spawned.error();
    e.hint = "install the OpenSSH client (Debian: openssh-client)";
    return tl::unexpected(e);
  }
  const pid_t pid = *spawned;
  std::unique_ptr<SshSession> s(new SshSession(h, dir, pid));
  const auto until = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      s->master_ = -1;
      std::string said = read_regular_file(log, 4096).value_or("");
      while (!said.empty() && (said.back() == '\n' || said.back() == '\r')) said.pop_back();
      return fail("cannot connect to host " + h.name + " (ssh " + h.destination + "): " +
                      (said.empty() ? "ssh exited with status " + std::to_string(WEXITSTATUS(status)) : said),
                  "labctl logs in as `ssh " + h.destination +
                      "` would, without a password prompt (BatchMode): check that this works and that the "
                      "host key is known");
    }
    std::error_code ec;
    if (std::filesystem::exists(control, ec)) {
      auto check = ssh_base(control);
      for (const char* o : {"-O", "check", "--"}) check.emplace_back(o);
      check.push_back(h.destination);
      auto r = run_captured(check, std::chrono::steady_clock::now() + std::chrono::seconds(5));
      if (r && r->exit_code == 0) return s;
    }
    if (std::chrono::steady_clock::now() >= until)
      return fail("cannot connect to host " + h.name + " (ssh " + h.destination + "): no answer within " +
                      std::to_string(timeout.count()) + " s",
                  "check that `ssh " + h.destination + " true` works from here");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

SshSession::~SshSession() {
  if (master_ > 0) {
    auto exit = ssh_base(control());
    for (const char* o : {"-O", "exit", "--"}) exit.emplace_back(o);
    exit.push_back(host_.destination);
    (void)run_captured(exit, std::chrono::steady_clock::now() + std::chrono::seconds(5));
    ::kill(master_, SIGTERM);
    reap(master_, std::chrono::seconds(2));
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

Result<Captured> SshSession::labctl(const std::vector<std::string>& args, const CaptureIo& io,
                                    std::chrono::steady_clock::time_point until, const std::atomic<bool>* stop) {
  std::vector<std::string> words = {host_.labctl};
  words.insert(words.end(), args.begin(), args.end());
  return run_captured(ssh_command(host_, control(), words), until, stop, std::chrono::seconds(30), io);
}

}  // namespace labctl
