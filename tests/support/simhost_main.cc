// simhost: the two small programs of the simulated hosts (tests/support/simhosts.h).
//
//   simhost proxy NETNS_FILE HOST PORT
//     ssh's ProxyCommand: enters the network namespace bound at NETNS_FILE, connects to
//     HOST:PORT there and copies stdin to the socket and the socket to stdout until both
//     directions are done. The hosts' underlay is reachable from no namespace but theirs
//     (nothing of the harness is in the machine's root namespace), so ssh from anywhere,
//     a simulated host included, reaches a host's sshd through this.
//
//   simhost init HOSTNAME AUTHORIZED_KEYS -- SSHD_ARGV...
//     PID 1 of a simulated host (started in fresh mount, UTS and PID namespaces, inside the
//     host's network namespace): gives the host its own /run (tmpfs, so /run/netns and
//     /run/labctl are its own), /proc and /sys, its hostname, copies AUTHORIZED_KEYS to
//     /run/simhost/authorized_keys (sshd's StrictModes refuses a key file under the
//     world-writable /tmp), empties root's ~/.bashrc (in its own mount namespace only),
//     then runs sshd and reaps every child, orphans included (labctl's agent supervisors
//     daemonize), until sshd exits.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

int die(const char* what) {
  std::fprintf(stderr, "simhost: %s: %s\n", what, std::strerror(errno));
  return 1;
}

bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

int proxy(const char* netns_file, const char* host, const char* port) {
  const int ns = ::open(netns_file, O_RDONLY | O_CLOEXEC);
  if (ns < 0) return die(netns_file);
  if (::setns(ns, CLONE_NEWNET) != 0) return die("setns into the host's network namespace");
  ::close(ns);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(std::atoi(port)));
  if (::inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
    std::fprintf(stderr, "simhost: proxy: %s is not an IPv4 address\n", host);
    return 1;
  }
  const int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return die("socket");
  if (::connect(s, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return die("connect");
  // Two directions: stdin -> socket (then shutdown(SHUT_WR) at EOF), socket -> stdout.
  pollfd fds[2] = {{0, POLLIN, 0}, {s, POLLIN, 0}};
  char buf[65536];
  while (fds[0].fd >= 0 || fds[1].fd >= 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return die("poll");
    }
    if (fds[0].fd >= 0 && fds[0].revents) {
      const ssize_t n = ::read(0, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0 || !write_all(s, buf, static_cast<size_t>(n))) {
        ::shutdown(s, SHUT_WR);
        fds[0].fd = -1;
      }
    }
    if (fds[1].fd >= 0 && fds[1].revents) {
      const ssize_t n = ::read(s, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0 || !write_all(1, buf, static_cast<size_t>(n))) {
        fds[1].fd = -1;
        ::close(1);
        break;  // sshd is done (or ssh is): nothing more to carry either way
      }
    }
  }
  return 0;
}

bool copy_file(const char* from, const char* to, mode_t mode) {
  const int in = ::open(from, O_RDONLY | O_CLOEXEC);
  if (in < 0) return false;
  const int out = ::open(to, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  if (out < 0) {
    ::close(in);
    return false;
  }
  char buf[8192];
  ssize_t n;
  bool ok = true;
  while ((n = ::read(in, buf, sizeof buf)) > 0)
    ok = ok && write_all(out, buf, static_cast<size_t>(n));
  ::close(in);
  return ::close(out) == 0 && ok && n == 0;
}

int init(const char* hostname, const char* authorized_keys, std::vector<char*> sshd_argv) {
  if (::getpid() != 1) {
    std::fprintf(stderr, "simhost: init must be PID 1 of a new PID namespace\n");
    return 1;
  }
  // Nothing mounted here may leak back to the machine's mount namespace (nor come in).
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    return die("make / private");
  if (::mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64m") != 0)
    return die("mount a tmpfs on /run");
  if (::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
    return die("mount /proc");
  // /sys shows the interfaces of the namespace that mounted it: the host's own, as
  // `ip netns exec` does for a command.
  ::umount2("/sys", MNT_DETACH);
  if (::mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
    return die("mount /sys");
  if (::mkdir("/run/sshd", 0755) != 0) return die("mkdir /run/sshd");
  if (::mkdir("/run/simhost", 0700) != 0) return die("mkdir /run/simhost");
  if (!copy_file(authorized_keys, "/run/simhost/authorized_keys", 0600))
    return die("copy the authorized keys to /run/simhost");
  if (::sethostname(hostname, std::strlen(hostname)) != 0) return die("sethostname");
  // A fresh machine's root has no ~/.bashrc of note; this machine's may be slow (pyenv
  // init: 0.25 s), and bash runs it for every command sshd starts. Empty here only.
  struct stat st{};
  if (::lstat("/root/.bashrc", &st) == 0 && S_ISREG(st.st_mode) &&
      ::mount("/dev/null", "/root/.bashrc", nullptr, MS_BIND, nullptr) != 0)
    return die("bind /dev/null over /root/.bashrc");

  const pid_t sshd = ::fork();
  if (sshd < 0) return die("fork");
  if (sshd == 0) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    sshd_argv.push_back(nullptr);
    ::execv(sshd_argv[0], sshd_argv.data());
    std::fprintf(stderr, "simhost: exec %s: %s\n", sshd_argv[0], std::strerror(errno));
    ::_exit(127);
  }
  for (;;) {
    int ws = 0;
    const pid_t pid = ::wait(&ws);
    if (pid < 0 && errno == EINTR) continue;
    if (pid < 0) return 0;
    if (pid == sshd) {
      std::fprintf(stderr, "simhost: %s: sshd ended (%s %d)\n", hostname,
                   WIFEXITED(ws) ? "exit" : "signal",
                   WIFEXITED(ws) ? WEXITSTATUS(ws) : WTERMSIG(ws));
      return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
    }
  }
}

int usage() {
  std::fprintf(stderr,
               "usage: simhost proxy NETNS_FILE HOST PORT\n"
               "       simhost init HOSTNAME AUTHORIZED_KEYS -- SSHD_ARGV...\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 5 && std::strcmp(argv[1], "proxy") == 0) return proxy(argv[2], argv[3], argv[4]);
  if (argc >= 6 && std::strcmp(argv[1], "init") == 0 && std::strcmp(argv[4], "--") == 0)
    return init(argv[2], argv[3], std::vector<char*>(argv + 5, argv + argc));
  return usage();
}
