// Inside the check engine: the context every kind of check runs with and the helpers they
// share. One file per kind of check implements the functions declared at the end.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "labctl/base/error.h"
#include "labctl/base/fd.h"
#include "labctl/checks/checks.h"
#include "labctl/checks/probe.h"
#include "labctl/kernel/ipvs.h"
#include "labctl/kernel/netns.h"
#include "labctl/kernel/rtnl.h"
#include "labctl/model/topology.h"

namespace labctl::check_kind {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
inline constexpr Millis kProbeTimeout{2000};
// IPVS counters are refreshed by the kernel's rate estimator about every 2 s.
inline constexpr auto kCounterSettle = 5s;

struct Ctx {
  const Topology& t;
  std::map<std::string, Fd> ns;  ///< node -> open namespace

  Result<int> fd(const std::string& node) {
    if (auto it = ns.find(node); it != ns.end()) return it->second.get();
    TRY_ASSIGN(Fd f, open_netns(netns_name(t.name, node)));
    return (ns[node] = std::move(f)).get();
  }
  // Runs fn inside node's namespace.
  Status in(const std::string& node, const std::function<Status()>& fn) {
    TRY_ASSIGN(int f, fd(node));
    return run_in_netns(f, fn);
  }
};

struct Found {
  const Node* director = nullptr;
  const VirtualService* service = nullptr;
};

Found find_service(const Topology& t, const std::string& name);
int param_int(const Check& c, const std::string& key, int fallback);
double param_double(const Check& c, const std::string& key, double fallback);
/// "10.0.0.1:80", "[fd00::1]:80" or the bare address when the check has no port.
std::string target_of(const Check& c);
/// Sends `n` GETs from `from` and counts the bodies (each labagent answers its node name).
Result<std::map<std::string, int>> http_counts(Ctx& ctx, const Check& c, int n, int* failed);
std::string counts_text(const std::map<std::string, int>& counts);
Result<std::vector<LinkInfo>> links_of(Ctx& ctx, const std::string& node);

// The kinds of check, one file each.
CheckResult reach(Ctx& ctx, const Check& c, bool want);
CheckResult http(Ctx& ctx, const Check& c);
CheckResult balance(Ctx& ctx, const Check& c);
CheckResult bypass(Ctx& ctx, const Check& c);
CheckResult arp_owner(Ctx& ctx, const Check& c);

}  // namespace labctl::check_kind
