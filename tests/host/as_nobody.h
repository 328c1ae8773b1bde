// Attempts made as another, unprivileged user (nobody: uid/gid 65534, no groups) against
// what labctl (root) made: for the tests of issue 21.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

namespace labctl::test {

constexpr uid_t kNobody = 65534;

inline void become_nobody() {
  if (::setgroups(0, nullptr) != 0 || ::setresgid(kNobody, kNobody, kNobody) != 0 ||
      ::setresuid(kNobody, kNobody, kNobody) != 0)
    ::_exit(100);
}

struct Attempt {
  std::string what;
  std::function<bool()> run;  ///< true: it worked (labctl lost)
};

// Runs every attempt as nobody; returns the ones that worked.
inline std::vector<std::string> as_nobody(const std::vector<Attempt>& attempts) {
  int pipefd[2];
  if (::pipe(pipefd) != 0) return {"pipe"};
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipefd[0]);
    become_nobody();
    for (size_t i = 0; i < attempts.size(); ++i)
      if (attempts[i].run()) {
        char c = static_cast<char>(i);
        if (::write(pipefd[1], &c, 1) != 1) ::_exit(101);
      }
    ::_exit(0);
  }
  ::close(pipefd[1]);
  std::vector<std::string> worked;
  for (char c; ::read(pipefd[0], &c, 1) == 1;)
    worked.push_back(attempts[static_cast<size_t>(c)].what);
  ::close(pipefd[0]);
  int st = 0;
  ::waitpid(pid, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    worked.push_back("(the child failed: " + std::to_string(st) + ")");
  return worked;
}

/// What another user would do to the folder of a running `labctl vm exec` (labctl/vm/qemu.h:
/// VmWorkDir): read the caller's environment, replace the script the guest runs as root,
/// forge its exit status, plant a symlink, take the folder away.
inline std::vector<Attempt> vm_work_folder_attacks(const std::string& d) {
  return {
      {"read cmd.sh", [d] { return ::open((d + "/cmd.sh").c_str(), O_RDONLY) >= 0; }},
      {"write cmd.sh", [d] { return ::open((d + "/cmd.sh").c_str(), O_WRONLY) >= 0; }},
      {"remove cmd.sh", [d] { return ::unlink((d + "/cmd.sh").c_str()) == 0; }},
      {"list the folder", [d] {
         DIR* x = ::opendir(d.c_str());
         if (x) ::closedir(x);
         return x != nullptr;
       }},
      {"forge status",
       [d] { return ::open((d + "/status").c_str(), O_WRONLY | O_CREAT, 0644) >= 0; }},
      {"plant qemu.log.x as a symlink",
       [d] { return ::symlink("/etc/passwd", (d + "/qemu.log.x").c_str()) == 0; }},
      {"replace stdout",
       [d] { return ::rename((d + "/stdout").c_str(), (d + "/old").c_str()) == 0; }},
      {"move the folder away", [d] { return ::rename(d.c_str(), (d + ".moved").c_str()) == 0; }},
  };
}

}  // namespace labctl::test
