#include "labctl/checks/check_kind.h"

#include <cstdlib>

namespace labctl::check_kind {

Found find_service(const Topology& t, const std::string& name) {
  for (const auto& n : t.nodes)
    for (const auto& s : n.services)
      if (s.name == name) return {&n, &s};
  return {};
}

int param_int(const Check& c, const std::string& key, int fallback) {
  auto it = c.params.find(key);
  return it == c.params.end() ? fallback : std::atoi(it->second.c_str());
}

double param_double(const Check& c, const std::string& key, double fallback) {
  auto it = c.params.find(key);
  return it == c.params.end() ? fallback : std::atof(it->second.c_str());
}

std::string target_of(const Check& c) {
  auto a = IpAddr::parse(c.to);
  std::string host = a && a->v6() ? "[" + c.to + "]" : c.to;
  return c.port ? host + ":" + std::to_string(c.port) : host;
}


Result<std::map<std::string, int>> http_counts(Ctx& ctx, const Check& c, int n, int* failed) {
  auto to = IpAddr::parse(c.to);
  if (!to) return fail("check " + c.name + ": bad target address " + c.to);
  std::map<std::string, int> counts;
  std::string path = c.params.count("path") ? c.params.at("path") : "/";
  std::string last_error;
  TRY(ctx.in(c.from, [&]() -> Status {
    for (int i = 0; i < n; ++i) {
      auto body = http_get(*to, c.port ? c.port : 80, path, kProbeTimeout);
      if (body) ++counts[*body];
      else {
        ++*failed;
        last_error = body.error().str();
      }
    }
    return {};
  }));
  if (counts.empty()) return fail(last_error.empty() ? "no answers" : last_error);
  return counts;
}

std::string counts_text(const std::map<std::string, int>& counts) {
  std::string s;
  for (const auto& [who, k] : counts) s += (s.empty() ? "" : ", ") + who + " " + std::to_string(k);
  return s;
}

Result<std::vector<LinkInfo>> links_of(Ctx& ctx, const std::string& node) {
  std::vector<LinkInfo> out;
  TRY(ctx.in(node, [&]() -> Status {
    TRY_ASSIGN(Rtnl rtnl, Rtnl::open());
    TRY_ASSIGN(out, rtnl.links());
    return {};
  }));
  return out;
}

}  // namespace labctl::check_kind
