// The IPVS schedulers a kernel can load, read from its modules directory, and the hint that
// names them when the kernel refuses a scheduler.
#pragma once

#include <string>
#include <vector>

namespace labctl::ipvs {

/// Schedulers this kernel can use: ip_vs_NAME modules under `modules_dir` (default
/// /lib/modules/$(uname -r)) in kernel/net/netfilter/ipvs/, plus those built in
/// (modules.builtin). Sorted; empty when neither can be read.
[[nodiscard]] std::vector<std::string> loadable_schedulers(const std::string& modules_dir = {});
/// The scheduler names among module file names ("ip_vs_wrr.ko", "ip_vs_sh.ko.xz", ...) and
/// the lines of modules.builtin (exposed for tests). Not schedulers: ip_vs itself, ip_vs_ftp
/// (an application helper) and ip_vs_pe_* (persistence engines).
[[nodiscard]] std::vector<std::string> schedulers_among(const std::vector<std::string>& files,
                                                        const std::string& builtin);
/// The hint for ENOENT from NEW/SET_SERVICE: the scheduler, and those the kernel can load.
[[nodiscard]] std::string unknown_scheduler_hint(const std::string& scheduler,
                                                 const std::vector<std::string>& loadable);

}  // namespace labctl::ipvs
