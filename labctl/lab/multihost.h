// A lab across several hosts (docs/multihost.md): the controller (the labctl a user runs)
// validates and plans the whole lab, then every host builds its part (`labctl up --part
// HOST -`, the topology sent on the ssh channel's stdin), all at once; a failure on any host
// rolls every host back. Each part keeps the list of hosts in its state (part.json), and the
// controller a record of its own, so `down` on any of them takes the whole lab down.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "labctl/base/error.h"
#include "labctl/lab/remote.h"
#include "labctl/model/topology.h"

namespace labctl {

/// Where a lab's hosts are, as the state of a part and the controller's record keep it.
struct HostsRecord {
  std::string lab;
  std::string self;                  ///< The host this record is on ("" : the controller without a part).
  std::string local;                 ///< The [hosts] name of the controller's machine.
  bool local_part = false;           ///< The controller's machine has a part of the lab.
  std::vector<RemoteHost> remotes;   ///< Every host reached over ssh.
};
[[nodiscard]] std::string to_json(const HostsRecord& r);
[[nodiscard]] Result<HostsRecord> hosts_record_from_json(std::string_view text);
/// The record as the topology gives it, kept on host `self` (the local host: "" when it
/// has no part).
[[nodiscard]] HostsRecord hosts_record(const Topology& t, const std::string& self);

/// A part's record: state_dir(lab)/part.json.
[[nodiscard]] std::string part_record_path(const std::string& lab);
/// The controller's record: <state root>/hosts/LAB.json (beside labs/, so a part's own
/// up and down on the controller's machine never remove it).
[[nodiscard]] std::string controller_record_path(const std::string& lab);
/// The topology the controller brought the lab up from, beside its record.
[[nodiscard]] std::string controller_topology_path(const std::string& lab);
/// The record of LAB on this machine: the controller's, else a part's; nullopt: none (a lab
/// on one host, or no lab).
[[nodiscard]] std::optional<HostsRecord> find_hosts_record(const std::string& lab);

struct MultiHostUpOptions {
  /// What this labctl's --version prints: every host's must print the same.
  std::string version;
  bool replace = false;
  bool verbose = false;
  /// Each line a host prints while it comes up (its steps with verbose, its errors).
  std::function<void(const std::string& host, bool err, std::string_view line)> on_line;
};

/// Brings the lab up on every host, all or nothing. Before anything is made: connects to
/// every remote host, compares its labctl's version with this one's, and has it check that
/// it can build its part (root, kernel features); any of these failing names the host and
/// nothing is made anywhere.
[[nodiscard]] Status multihost_up(const Topology& t, const std::string& source_text, const MultiHostUpOptions& o);

/// What one `labctl ...` on a host gave: its exit status and output, or (exit_code -1, err)
/// why it never ran (the host could not be reached).
struct HostRun {
  std::string host;
  int exit_code = -1;
  std::string out, err;
};
/// Runs `labctl args_for(host)` on every host of `hosts` at once, each over a connection of
/// its own, each bounded by `limit`; a host whose args are empty is skipped. In `hosts` order.
[[nodiscard]] std::vector<HostRun> run_on_hosts(
    const std::vector<RemoteHost>& hosts, const std::function<std::vector<std::string>(const RemoteHost&)>& args_for,
    std::chrono::seconds limit);
/// What a host's run said: its stderr (else stdout) without trailing newlines and without
/// the "labctl: error: " a remote labctl begins with (the caller says whose error it is).
[[nodiscard]] std::string what_it_said(const HostRun& r);

/// What `down` did on one host.
struct HostDown {
  std::string host;
  bool ok = false;
  std::string said;  ///< Its output (or why it could not be reached).
};
/// Takes the lab down on every remote host of the record (`labctl down --here LAB`) and here,
/// removes the records. Idempotent; a host that cannot be reached is reported, the others
/// still taken down.
[[nodiscard]] std::vector<HostDown> multihost_down(const HostsRecord& r);

}  // namespace labctl
