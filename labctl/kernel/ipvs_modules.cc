#include "labctl/kernel/ipvs_modules.h"

#include <sys/utsname.h>

#include <filesystem>
#include <set>
#include <sstream>

#include "labctl/base/file.h"

namespace labctl::ipvs {

std::vector<std::string> schedulers_among(const std::vector<std::string>& files,
                                          const std::string& builtin) {
  std::set<std::string> out;
  auto consider = [&](std::string name) {
    if (auto slash = name.rfind('/'); slash != std::string::npos) name = name.substr(slash + 1);
    if (name.rfind("ip_vs_", 0) != 0) return;
    name = name.substr(6);
    const auto ko = name.find(".ko");
    if (ko == std::string::npos) return;
    name = name.substr(0, ko);
    if (name.empty() || name == "ftp" || name.rfind("pe_", 0) == 0) return;
    out.insert(name);
  };
  for (const auto& f : files) consider(f);
  std::istringstream in(builtin);
  std::string line;
  while (std::getline(in, line))
    if (line.find("netfilter/ipvs/") != std::string::npos) consider(line);
  return {out.begin(), out.end()};
}

std::vector<std::string> loadable_schedulers(const std::string& modules_dir) {
  std::string dir = modules_dir;
  if (dir.empty()) {
    utsname u{};
    if (::uname(&u) != 0) return {};
    dir = std::string("/lib/modules/") + u.release;
  }
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/kernel/net/netfilter/ipvs", ec))
    files.push_back(e.path().filename().string());
  return schedulers_among(files, read_text(dir + "/modules.builtin"));
}

std::string unknown_scheduler_hint(const std::string& scheduler,
                                   const std::vector<std::string>& loadable) {
  std::string h = "scheduler '" + scheduler + "' not found: the kernel could not load ip_vs_" +
                  scheduler + "; ";
  if (loadable.empty())
    return h +
           "no scheduler modules found under /lib/modules/$(uname -r) (known to IPVS: rr "
           "wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos)";
  h += "this kernel can load:";
  for (const auto& l : loadable) h += " " + l;
  return h;
}

}  // namespace labctl::ipvs
