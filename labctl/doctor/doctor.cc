#include "labctl/doctor/doctor.h"

#include <fmt/format.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>

#include "labctl/kernel/features.h"
#include "labctl/vm/guest_kernel.h"
#include "labctl/vm/initramfs.h"
#include "labctl/vm/qemu.h"

namespace labctl {
namespace {

constexpr const char* kUseVm =
    "run it in the micro-VM, whose kernel has it: labctl vm exec -- COMMAND (docs/vm.md)";

DoctorCheck from_status(std::string id, std::string title, const Status& st, std::string hint,
                        std::string ok_detail = {}) {
  DoctorCheck c{std::move(id), std::move(title), bool(st), std::move(ok_detail), {}};
  if (!st) {
    Error e = st.error();
    e.hint.clear();
    c.detail = e.str();
    c.hint = std::move(hint);
  }
  return c;
}

std::string kernel_release() {
  utsname u{};
  return ::uname(&u) == 0 ? u.release : "unknown";
}

}  // namespace

int DoctorReport::missing() const {
  return static_cast<int>(
      std::count_if(checks.begin(), checks.end(), [](const auto& c) { return !c.ok; }));
}

std::vector<std::string> DoctorReport::missing_of(const std::vector<std::string>& ids) const {
  std::vector<std::string> out;
  for (const auto& id : ids) {
    auto c = std::find_if(checks.begin(), checks.end(), [&](const auto& x) { return x.id == id; });
    if (c == checks.end() || !c->ok) out.push_back(id);
  }
  return out;
}

DoctorReport run_doctor() {
  DoctorReport r;
  r.kernel = kernel_release();
  auto& c = r.checks;
  const std::string root_hint =
      ::geteuid() == 0 ? "" : "run labctl doctor as root (sudo): probes need CAP_NET_ADMIN";
  auto need = [&](const std::string& h) { return root_hint.empty() ? h : root_hint; };

  // IPVS first: its scheduler autoload must not race the cleanup of the namespaces the
  // other probes throw away (see probe_ipvs).
  IpvsProbe ipvs = probe_ipvs(kIpvsSchedulers);
  c.push_back(from_status("netns", "network namespaces", probe_netns(),
                          need("a kernel with CONFIG_NET_NS is needed for every lab")));
  c.push_back(
      from_status("veth", "veth pairs", probe_veth(), need("a kernel with CONFIG_VETH is needed")));
  c.push_back(from_status("bridge", "bridges", probe_bridge(),
                          need("a kernel with CONFIG_BRIDGE is needed")));
  c.push_back(from_status("sysctls", "sysctls (ip_forward, rp_filter, arp_ignore, arp_announce)",
                          probe_sysctls(), need("a kernel with IPv4 (CONFIG_INET) is needed")));

  c.push_back(from_status(
      "ipvs", "IPVS", ipvs.family,
      need(std::string("this kernel has no IPVS (CONFIG_IP_VS, module ip_vs); ") + kUseVm)));
  if (ipvs.family) {
    for (size_t i = 0; i < kIpvsSchedulers.size(); ++i) {
      const std::string& s = kIpvsSchedulers[i];
      c.push_back(from_status("ipvs-scheduler-" + s, "IPVS scheduler " + s, ipvs.schedulers[i],
                              "labs naming scheduler " + s + " fail here (module ip_vs_" + s +
                                  " missing or not loadable): pick another scheduler or " +
                                  kUseVm));
    }
  } else {
    c.push_back({"ipvs-schedulers", "IPVS schedulers", false, "not probed: IPVS is missing",
                 "see IPVS above"});
  }
  c.push_back(from_status(
      "ipip", "IPIP tunnels", probe_ipip(),
      need(std::string("LVS-TUN labs need ipip (CONFIG_NET_IPIP, module ipip); ") + kUseVm)));
  c.push_back(from_status(
      "vxlan", "VXLAN (switches across hosts)", probe_vxlan(),
      need(std::string("labs whose switches span hosts need VXLAN (CONFIG_VXLAN, module vxlan); ") +
           kUseVm)));
  c.push_back(from_status(
      "netem", "netem (impairments: delay, loss ...)", probe_netem(),
      need(std::string("impairments beyond a rate need netem (CONFIG_NET_SCH_NETEM, module "
                       "sch_netem); ") +
           kUseVm)));
  c.push_back(from_status(
      "tbf", "tbf (rate impairments)", probe_tbf(),
      need(std::string("a rate impairment needs tbf (CONFIG_NET_SCH_TBF, module sch_tbf); ") +
           kUseVm)));

  std::string qemu = find_program("qemu-system-x86_64");
  c.push_back({"qemu", "QEMU (for labctl vm)", !qemu.empty(),
               qemu.empty() ? "qemu-system-x86_64 not in PATH" : qemu,
               qemu.empty() ? "install the package qemu-system-x86 (scripts/setup.sh does)" : ""});
  Status busybox = check_static_busybox("/bin/busybox");
  c.push_back(from_status("busybox", "busybox-static (for labctl vm)", busybox,
                          "install the package busybox-static (scripts/setup.sh does)",
                          "/bin/busybox"));
  auto kernel = resolve_vm_kernel(kernel_query_from_env());
  DoctorCheck vk{"vm-kernel", "micro-VM kernel", bool(kernel), {}, {}};
  if (kernel) {
    vk.detail = kernel->version + " (" + kernel->image + ")";
  } else {
    vk.detail = kernel.error().message;
    vk.hint = kernel.error().hint;
  }
  c.push_back(vk);
  return r;
}

std::string format_report(const DoctorReport& r) {
  std::string out = "labctl doctor: kernel " + r.kernel + "\n";
  for (const auto& c : r.checks) {
    out += fmt::format("  {:<8} {}", c.ok ? "ok" : "missing", c.title);
    if (!c.detail.empty()) out += ": " + c.detail;
    out += "\n";
    if (!c.ok && !c.hint.empty()) out += fmt::format("  {:<8} hint: {}\n", "", c.hint);
  }
  int missing = r.missing();
  out += fmt::format("{} ok, {} missing\n", static_cast<int>(r.checks.size()) - missing, missing);
  return out;
}

nlohmann::json report_json(const DoctorReport& r) {
  nlohmann::json checks = nlohmann::json::array();
  for (const auto& c : r.checks)
    checks.push_back(
        {{"id", c.id}, {"title", c.title}, {"ok", c.ok}, {"detail", c.detail}, {"hint", c.hint}});
  return {{"kernel", r.kernel}, {"checks", checks}, {"missing", r.missing()}};
}

}  // namespace labctl
