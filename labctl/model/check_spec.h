// The model half of every kind of check, one registered entry each (check_specs.cc): the
// keys a check of the kind takes, their defaults, its deadline, what passing means, and the
// validation only that kind needs. The run half (checks/<kind>.cc) is joined to it by the
// kind's name; nothing else in the model names a kind.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "labctl/model/topology.h"

namespace labctl::topo {

class Reporter;
class Net;

/// What a kind's validation hook sees: the check after the shared references are resolved
/// (its `from` node, its service, its target address and port), and where to report.
struct CheckValidation {
  const Topology& t;
  const Net& net;
  Check& c;
  const VirtualService* svc = nullptr;  ///< The service the check names, if any.
  const Node* director = nullptr;       ///< svc's director.
  bool udp = false;                     ///< The check speaks UDP (its own proto or svc's).
  std::string where;                    ///< "check web-ok", for messages.
  Reporter& r;
  /// The position of the check's `key`, else of the check itself.
  std::function<Pos(std::string_view key)> at;

  void error(std::string_view key, std::string message, std::string hint = {}) const;
};

struct CheckKindSpec {
  std::string name;
  std::vector<std::string> required;
  std::vector<std::string> optional;
  bool needs_target = false;  ///< Needs `to` or `service`; else it is about `service`.
  /// Without a port of its own a service of port 0 (any port) needs the check to give one;
  /// a kind that sends nothing to a port (arp-owner) does not.
  bool sends_to_port = true;
  std::vector<std::pair<std::string, std::string>> defaults;  ///< Filled into Check::params.
  std::chrono::milliseconds deadline{0};  ///< The default deadline (docs/checks.md's table).
  std::string expectation;  ///< What passing means: the "expected" half of a failure.
  /// The kind's own rules, after the shared ones; may be empty.
  void (*validate)(CheckValidation& v) = nullptr;
};

/// Every kind of check, in the order docs/checks.md lists them.
[[nodiscard]] const std::vector<CheckKindSpec>& check_kinds();
[[nodiscard]] const CheckKindSpec* find_check_kind(std::string_view name);

}  // namespace labctl::topo
