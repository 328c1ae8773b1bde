// A lab's state on the host: /run/labctl/labs/<lab>/ (0700) holds the resolved topology,
// the journal of what `up` created, agent pids, logs and states (agents/). It is a convenience for status and
// down, never the only record: down also finds a lab by the marks on its namespaces.
// labctl's own files (locks/) live beside labs/, never inside it, so no lab name reaches
// them; and every function that makes or removes a path refuses a name that is not a lab
// name (`labctl down ..` must never become a remove_all of /run).
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "labctl/base/error.h"
#include "labctl/base/fd.h"

namespace labctl {

/// Root of all state; LABCTL_STATE_DIR overrides it (tests).
[[nodiscard]] std::string state_root();
/// An error naming `lab` (shown visibly, bounded) and the rule it breaks, unless it is a
/// valid lab name (model/rules.h: bad_lab_name).
[[nodiscard]] Status check_lab_name(std::string_view lab);
[[nodiscard]] std::string state_dir(const std::string& lab);
[[nodiscard]] std::string agent_log_path(const std::string& lab, const std::string& node,
                                         const std::string& agent);
/// Where an agent's supervisor records its state (labagent supervise --state; plan/agent.h).
[[nodiscard]] std::string agent_state_path(const std::string& lab, const std::string& node,
                                           const std::string& agent);

/// Where a keepalived agent keeps its keepalived.conf and pid files (one directory per
/// agent: keepalived processes in different namespaces must not share pid files).
[[nodiscard]] std::string keepalived_dir(const std::string& lab, const std::string& node,
                                         const std::string& agent);
/// Where an agent that needs a directory of its own (plan/agent.h: agent_dir_name) keeps
/// its config, pid and temp files: FOLDER/NODE/AGENT (keepalived_dir is FOLDER keepalived).
[[nodiscard]] std::string agent_dir(const std::string& lab, const std::string& node, const std::string& agent,
                                    const std::string& folder);
/// Makes the node's private folders under logs/, agents/, keepalived/ and nginx/ (each 0700),
/// where its agents' files go: logs/NODE/AGENT.log, agents/NODE/AGENT.json,
/// keepalived/NODE/AGENT, nginx/NODE/AGENT.
[[nodiscard]] Status make_agent_dirs(const std::string& lab, const std::string& node);

/// Creates the lab's state directory (and its logs/ subdirectory), mode 0700.
[[nodiscard]] Status make_state_dir(const std::string& lab);
/// Removes the lab's state directory and everything in it. Missing is not an error.
[[nodiscard]] Status remove_state_dir(const std::string& lab);
/// Labs that have a state directory.
[[nodiscard]] std::vector<std::string> labs_with_state();

/// An exclusive per-lab lock (flock on <root>/locks/<lab>.lock): two up/down of one lab
/// never interleave; different labs never wait for each other. Released on destruction.
class LabLock {
 public:
  /// Waits for the lock, telling the user once if someone else holds it.
  [[nodiscard]] static Result<LabLock> acquire(const std::string& lab);
  /// Whether some process holds `lab`'s lock now (without waiting, creating or keeping it).
  [[nodiscard]] static bool held_by_someone(const std::string& lab);
  /// Removes the lock file while still holding it (the lab is gone: leave nothing behind).
  /// Safe: acquire() retries when the file it locked is no longer the one at the path.
  void remove();

 private:
  LabLock(Fd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  Fd fd_;
  std::string path_;
};

/// Append-only record of what `up` is creating, written *before* each namespace is made
/// (so a SIGKILL at any moment leaves a journal naming everything that may exist).
struct JournalEntry {
  std::string kind;   ///< "netns" or "agent"
  std::string name;   ///< namespace name, or "<node>/<agent>"
  pid_t pid = 0;      ///< agents only
};

class Journal {
 public:
  [[nodiscard]] static Result<Journal> open(const std::string& lab);
  [[nodiscard]] Status append(const JournalEntry& e);
  /// Reads a lab's journal; a missing or partly written one yields what could be read.
  [[nodiscard]] static std::vector<JournalEntry> read(const std::string& lab);

 private:
  explicit Journal(Fd fd) : fd_(std::move(fd)) {}
  Fd fd_;
};

}  // namespace labctl
