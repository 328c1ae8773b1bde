// Inside plan/: the words the steps' shell forms (steps_*.cc) are built from.
#pragma once

#include <string>
#include <vector>

namespace labctl::step_shell {

/// "ip [-6] -n NS OBJECT ..." as words.
inline std::vector<std::string> ip_cmd(const std::string& ns, std::vector<std::string> rest,
                                       bool v6 = false) {
  std::vector<std::string> w{"ip"};
  if (v6) w.push_back("-6");
  w.push_back("-n");
  w.push_back(ns);
  w.insert(w.end(), rest.begin(), rest.end());
  return w;
}

/// "ip netns exec NS PROGRAM ..." as words.
inline std::vector<std::string> in_netns(const std::string& ns, std::vector<std::string> rest) {
  std::vector<std::string> w{"ip", "netns", "exec", ns};
  w.insert(w.end(), rest.begin(), rest.end());
  return w;
}

}  // namespace labctl::step_shell
