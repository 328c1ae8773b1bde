// Where a `load` agent sends its requests: a URL (http://ADDRESS[:PORT][/PATH], an IPv6
// address in brackets) or ADDRESS:PORT. Addresses are numeric: a lab has no DNS, so a name
// would fail only once the agent runs. Parsed by the loader (errors at file:line:col) and
// again by labagent, so both accept exactly the same forms.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "labctl/base/error.h"
#include "labctl/model/ip.h"

namespace labctl {

struct LoadTarget {
  IpAddr addr;
  uint16_t port = 80;
  std::string path = "/";  ///< The request path, always starting with '/'.
  /// The Host header: the address as written in a URL ("[fd00::1]:8080").
  [[nodiscard]] std::string host_header() const;
};

/// The forms accepted, for error messages and docs.
inline constexpr std::string_view kLoadTargetForms =
    "http://ADDRESS[:PORT][/PATH] or ADDRESS:PORT, with a numeric address "
    "(IPv6 in brackets: http://[fd00::100]:8080/)";

/// Parses a target; the error says what is wrong with it and names the accepted forms.
[[nodiscard]] Result<LoadTarget> parse_load_target(std::string_view text);

}  // namespace labctl
