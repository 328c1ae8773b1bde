// The lab lifecycle: up (all or nothing), down (idempotent, finds a lab by its marks even
// without state), and which labs are running. Everything here acts only on namespaces
// named "<lab>-*" that carry the lab's mark.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "labctl/base/error.h"
#include "labctl/lab/executor.h"
#include "labctl/plan/plan.h"
#include "labctl/model/topology.h"

namespace labctl {

struct UpOptions {
  bool replace = false;     ///< Tear an existing lab of that name down first.
  std::string source_text;  ///< The topology's TOML, kept in the state dir for status.
  /// More files for the state dir, NAME -> content (a part's part.json: lab/multihost.h).
  std::vector<std::pair<std::string, std::string>> state_files;
  /// Called after each applied step.
  std::function<void(size_t index, const PlannedStep&)> on_step;
  /// Probe the kernel for what the plan needs before the first step (lab/preflight.h).
  /// Off only in tests that inject failures into an IPVS plan on a kernel without IPVS.
  bool preflight = true;
  /// Wraps the real executor (failure injection in tests); identity when empty.
  std::function<std::unique_ptr<Executor>(Executor& real)> wrap_executor;
};

/// Fails unless the process has CAP_NET_ADMIN and CAP_SYS_ADMIN (netlink, mounts, setns).
[[nodiscard]] Status check_privileges();

/// Builds the lab. On any failure, SIGINT, SIGTERM or SIGHUP everything made is removed and
/// the error names the failing step.
[[nodiscard]] Status lab_up(const Topology& t, const Plan& plan, const UpOptions& opts);

/// What `down` found and removed.
struct DownReport {
  std::size_t namespaces = 0;    ///< The lab's (marked) namespaces removed.
  std::size_t placeholders = 0;  ///< Unmounted /run/netns files of its names removed.
  bool had_state = false;        ///< It had a state folder.
  /// Namespaces named "<lab>-*" that carry no labctl mark: not the lab's, left alone.
  std::vector<std::string> unmarked;
  [[nodiscard]] bool found_anything() const {
    return namespaces > 0 || placeholders > 0 || had_state;
  }
};

/// Stops the lab's processes and removes its namespaces, the unmounted placeholders an
/// interrupted `up` left under its names, and its state. Idempotent.
[[nodiscard]] Result<DownReport> lab_down(const std::string& lab);

/// Namespaces named "<lab>-*" that carry no labctl mark at all (made by hand or by another
/// tool): never removed, only named so the user can decide. Sorted.
[[nodiscard]] std::vector<std::string> unmarked_namespaces(const std::string& lab);

/// The lab's namespaces: those named "<lab>-*" carrying its mark. Sorted.
[[nodiscard]] std::vector<std::string> lab_namespaces(const std::string& lab);

/// Every lab that has namespaces or state on this machine.
[[nodiscard]] std::vector<std::string> running_labs();

}  // namespace labctl
