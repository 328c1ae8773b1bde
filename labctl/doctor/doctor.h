// `labctl doctor`: which kernel features labs need are present here, each with the reason
// when it is missing and what to do about it. Probing happens in throwaway namespaces.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace labctl {

struct DoctorCheck {
  std::string id;     ///< stable key for --json, e.g. "ipvs", "ipvs-scheduler-rr"
  std::string title;  ///< for people, e.g. "IPVS scheduler rr"
  bool ok = false;
  std::string detail;  ///< what was found, or why it is missing
  std::string hint;    ///< what to do when missing
};

struct DoctorReport {
  std::string kernel;  ///< uname release
  std::vector<DoctorCheck> checks;
  [[nodiscard]] int missing() const;
  /// Those of `ids` whose check is missing or absent from the report (e.g. a scheduler
  /// that was not probed because IPVS is missing).
  [[nodiscard]] std::vector<std::string> missing_of(const std::vector<std::string>& ids) const;
};

/// Probes this machine (needs root for namespaces and IPVS).
[[nodiscard]] DoctorReport run_doctor();

/// The report as aligned text, one line per check plus hint lines, and a summary.
[[nodiscard]] std::string format_report(const DoctorReport& report);

/// The same data as JSON: {"kernel", "checks": [{id, title, ok, detail, hint}], "missing"}.
[[nodiscard]] nlohmann::json report_json(const DoctorReport& report);

}  // namespace labctl
