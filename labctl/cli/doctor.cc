// `labctl doctor [--json]`: the CLI side of labctl/doctor.h. Always exits 0 when the
// probes ran: missing features are the report, not a failure.
#include "labctl/doctor/doctor.h"

#include <fmt/format.h>

#include <cstdio>

#include "labctl/cli/command.h"

namespace labctl::cli {
namespace {

inline constexpr int kExitRequiredMissing = 3;

void setup_doctor(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "doctor",
      "Report which kernel features labs need (namespaces, veth, bridge, IPVS and its\n"
      "schedulers, IPIP, sysctls) and what labctl vm needs (qemu, busybox-static, a kernel),\n"
      "each ok or missing with the reason and what to do. Probes run in throwaway network\n"
      "namespaces. Run as root.");
  auto json = std::make_shared<bool>(false);
  auto require = std::make_shared<std::vector<std::string>>();
  cmd->add_flag("--json", *json, "Print the report as JSON");
  cmd->add_option("--require", *require,
                  "Exit 3 unless these checks (ids as in --json, e.g. ipvs,ipip) are ok;\n"
                  "for scripts deciding whether to use labctl vm")
      ->delimiter(',');
  cmd->callback([json, require] {
    DoctorReport report = run_doctor();
    if (*json) std::printf("%s\n", json_text(report_json(report)).c_str());
    else std::fputs(format_report(report).c_str(), stdout);
    if (auto missing = report.missing_of(*require); !missing.empty())
      throw ExitError{kExitRequiredMissing, "required: " + fmt::format("{}", fmt::join(missing, ", ")) +
                                                " missing"};
  });
}

}  // namespace

LABCTL_COMMAND(90, setup_doctor);

}  // namespace labctl::cli
