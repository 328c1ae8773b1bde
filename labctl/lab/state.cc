#include "labctl/lab/state.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "labctl/base/display.h"
#include "labctl/base/file.h"
#include "labctl/model/rules.h"

namespace labctl {
namespace fs = std::filesystem;
namespace {

std::string journal_path(const std::string& lab) { return state_dir(lab) + "/journal"; }

std::string labs_root() { return state_root() + "/labs"; }

}  // namespace

std::string state_root() {
  const char* env = std::getenv("LABCTL_STATE_DIR");
  return env && *env ? env : "/run/labctl";
}

Status check_lab_name(std::string_view lab) {
  if (auto why = topo::bad_lab_name(lab))
    return fail("no lab can be called " + shown(lab) + ": the name " + *why,
                "lab names are letters, digits, '_' and '-' (not first), at most " +
                    std::to_string(topo::kMaxNameLen) + " bytes; see `labctl ls`");
  return {};
}

std::string state_dir(const std::string& lab) { return labs_root() + "/" + lab; }

// A folder per node: names hold '-', so "NODE-AGENT" would give node a's agent b-c and
// node a-b's agent c one file. Names never hold '/' (model/rules.h).
std::string agent_log_path(const std::string& lab, const std::string& node,
                           const std::string& agent) {
  return state_dir(lab) + "/logs/" + node + "/" + agent + ".log";
}

std::string keepalived_dir(const std::string& lab, const std::string& node, const std::string& agent) {
  return state_dir(lab) + "/keepalived/" + node + "/" + agent;
}

std::string agent_dir(const std::string& lab, const std::string& node, const std::string& agent,
                      const std::string& folder) {
  return state_dir(lab) + "/" + folder + "/" + node + "/" + agent;
}

std::string agent_state_path(const std::string& lab, const std::string& node,
                             const std::string& agent) {
  return state_dir(lab) + "/agents/" + node + "/" + agent + ".json";
}

Status make_agent_dirs(const std::string& lab, const std::string& node) {
  TRY(check_lab_name(lab));
  if (auto why = topo::bad_name(node)) return fail("no node can be called " + shown(node) + ": the name " + *why);
  for (const char* kind : {"/logs", "/agents", "/keepalived", "/nginx"}) {
    TRY(make_private_dir(state_dir(lab) + kind));
    TRY(make_private_dir(state_dir(lab) + kind + "/" + node));
  }
  return {};
}

Status make_state_dir(const std::string& lab) {
  TRY(check_lab_name(lab));
  TRY(make_private_dir(state_root()));
  TRY(make_private_dir(labs_root()));
  TRY(make_private_dir(state_dir(lab)));
  TRY(make_private_dir(state_dir(lab) + "/logs"));
  TRY(make_private_dir(state_dir(lab) + "/agents"));
  return {};
}

Status remove_state_dir(const std::string& lab) {
  TRY(check_lab_name(lab));
  std::error_code ec;
  fs::remove_all(state_dir(lab), ec);
  if (ec) return fail("remove " + state_dir(lab) + ": " + ec.message());
  return {};
}

std::vector<std::string> labs_with_state() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(labs_root(), ec))
    if (e.is_directory() && !topo::bad_lab_name(e.path().filename().string()))
      out.push_back(e.path().filename());
  std::sort(out.begin(), out.end());
  return out;
}

Result<LabLock> LabLock::acquire(const std::string& lab) {
  TRY(check_lab_name(lab));
  TRY(make_private_dir(state_root()));
  const std::string dir = state_root() + "/locks";
  TRY(make_private_dir(dir));
  const std::string path = dir + "/" + lab + ".lock";
  bool told = false;
  for (;;) {
    Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fd) return fail_errno("open lock " + path, errno);
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
      if (errno != EWOULDBLOCK) return fail_errno("lock " + path, errno);
      if (!told)
        std::fprintf(stderr, "labctl: another labctl is working on lab %s; waiting for it\n",
                     lab.c_str());
      told = true;
      if (::flock(fd.get(), LOCK_EX) != 0) return fail_errno("lock " + path, errno);
    }
    // The holder may have removed the file before we got it: then ours is a stale inode
    // and someone else may lock a new file at the path. Only the file at the path counts.
    struct stat held{}, now{};
    if (::fstat(fd.get(), &held) == 0 && ::stat(path.c_str(), &now) == 0 &&
        held.st_dev == now.st_dev && held.st_ino == now.st_ino)
      return LabLock(std::move(fd), path);
  }
}

bool LabLock::held_by_someone(const std::string& lab) {
  if (topo::bad_lab_name(lab)) return false;
  const std::string path = state_root() + "/locks/" + lab + ".lock";
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return false;
  // A shared lock conflicts with the holder's exclusive one and with nothing else.
  if (::flock(fd.get(), LOCK_SH | LOCK_NB) == 0) return false;
  return errno == EWOULDBLOCK;
}

void LabLock::remove() {
  if (fd_) ::unlink(path_.c_str());
}

Result<Journal> Journal::open(const std::string& lab) {
  TRY(check_lab_name(lab));
  const std::string path = journal_path(lab);
  Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!fd) return fail_errno("open journal " + path, errno);
  return Journal(std::move(fd));
}

Status Journal::append(const JournalEntry& e) {
  std::string line = e.kind + " " + e.name + " " + std::to_string(e.pid) + "\n";
  // One write per entry: O_APPEND makes it land whole even if we die right after.
  if (::write(fd_.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size()))
    return fail_errno("write journal", errno);
  return {};
}

std::vector<JournalEntry> Journal::read(const std::string& lab) {
  std::vector<JournalEntry> out;
  std::ifstream in(journal_path(lab));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    JournalEntry e;
    if (ls >> e.kind >> e.name >> e.pid) out.push_back(e);
  }
  return out;
}

}  // namespace labctl
