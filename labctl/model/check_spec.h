// The model half of every kind of check, one registered entry each (check_specs.cc): the
// keys a check of the kind takes, their defaults, its deadline, what passing means, and the
// validation only that kind needs. The run half (checks/<kind>.cc) is joined to it by the
// kind's name; nothing else in the model names a kind.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
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

/// What a key's reader sees: the key's value through the parser's typed reads (each
/// reports its own type and range errors and gives nullopt or nothing then), and the check
/// whose params it fills.
struct CheckKeyRead {
  std::string key;
  std::string where;  ///< "check web-ok", for messages.
  Check& c;
  Reporter& r;
  Pos at;                 ///< Where the key's value is written.
  bool empty_list = false;  ///< The value is [].
  std::function<std::optional<std::string>()> text;
  std::function<std::optional<int64_t>(int64_t lo, int64_t hi)> integer;
  std::function<std::optional<double>()> number;
  /// A string or a list of strings, each with its position.
  std::function<std::vector<std::pair<std::string, Pos>>()> strings;

  void error(std::string message, std::string hint = {}) const;
};

/// A key some kinds of check take beyond the shared ones (from, to, service, port, expect):
/// how it is read into CheckParams. A kind lists the keys it takes by name.
struct CheckKey {
  std::string name;
  void (*read)(CheckKeyRead& k) = nullptr;
};

/// Every such key; a kind's spec may list only these (and the shared ones).
[[nodiscard]] const std::vector<CheckKey>& check_keys();
[[nodiscard]] const CheckKey* find_check_key(std::string_view name);

struct CheckKindSpec {
  std::string name;
  std::vector<std::string> required;
  std::vector<std::string> optional;
  bool needs_target = false;  ///< Needs `to` or `service`; else it is about `service`.
  /// Without a port of its own a service of port 0 (any port) needs the check to give one;
  /// a kind that sends nothing to a port (arp-owner) does not.
  bool sends_to_port = true;
  std::vector<std::pair<std::string, CheckValue>> defaults;  ///< Params before the check's own keys.
  std::chrono::milliseconds deadline{0};  ///< The default deadline (docs/checks.md's table).
  std::string expectation;  ///< What passing means: the "expected" half of a failure.
  /// The kind's own rules, after the shared ones; may be empty.
  void (*validate)(CheckValidation& v) = nullptr;
};

/// Gives `c` its kind's default for every key of its own it does not have: the parser does
/// so for each check it reads, and the check engine for a check made in code.
void fill_check_defaults(Check& c);

/// Every kind of check, in the order docs/checks.md lists them.
[[nodiscard]] const std::vector<CheckKindSpec>& check_kinds();
[[nodiscard]] const CheckKindSpec* find_check_kind(std::string_view name);

}  // namespace labctl::topo
