#include "labctl/model/load_target.h"

#include <charconv>

#include "labctl/base/display.h"

namespace labctl {
namespace {

Error bad(std::string_view text, const std::string& why) {
  return Error{
      "target " + shown(text) + " " + why, 0, {}, "write it as " + std::string(kLoadTargetForms)};
}

// "ADDRESS[:PORT]" or "[V6][:PORT]"; port_required for the bare HOST:PORT form.
Result<LoadTarget> parse_authority(std::string_view whole, std::string_view hp,
                                   bool port_required) {
  LoadTarget t;
  std::string_view host, port;
  if (hp.starts_with('[')) {
    auto close = hp.find(']');
    if (close == std::string_view::npos) return tl::unexpected(bad(whole, "has '[' without ']'"));
    host = hp.substr(1, close - 1);
    std::string_view rest = hp.substr(close + 1);
    if (!rest.empty() && !rest.starts_with(':'))
      return tl::unexpected(bad(whole, "has something other than :PORT after ']'"));
    if (!rest.empty())
      port = rest.substr(1);
    else if (port_required)
      return tl::unexpected(bad(whole, "has no port"));
  } else {
    auto colon = hp.rfind(':');
    if (colon != std::string_view::npos && hp.find(':') != colon)
      return tl::unexpected(bad(whole, "has an IPv6 address without brackets"));
    if (colon == std::string_view::npos) {
      if (port_required) return tl::unexpected(bad(whole, "has no port"));
      host = hp;
    } else {
      host = hp.substr(0, colon);
      port = hp.substr(colon + 1);
    }
  }
  auto addr = IpAddr::parse(host);
  if (!addr)
    return tl::unexpected(bad(
        whole, host.empty()
                   ? "has no address"
                   : "names " + shown(host) + ", which is no numeric address (a lab has no DNS)"));
  if (hp.starts_with('[') != addr->v6())
    return tl::unexpected(bad(whole, addr->v6() ? "has an IPv6 address without brackets"
                                                : "has an IPv4 address in brackets"));
  t.addr = *addr;
  if (!port.empty() || (hp.ends_with(':'))) {
    unsigned v = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
    if (ec != std::errc{} || end != port.data() + port.size() || v < 1 || v > 65535)
      return tl::unexpected(bad(whole, "has port " + shown(port) + ", not a number 1..65535"));
    t.port = static_cast<uint16_t>(v);
  }
  return t;
}

}  // namespace

std::string LoadTarget::host_header() const {
  std::string a = addr.v6() ? "[" + addr.str() + "]" : addr.str();
  return port == 80 ? a : a + ":" + std::to_string(port);
}

Result<LoadTarget> parse_load_target(std::string_view text) {
  if (text.empty()) return tl::unexpected(bad(text, "is empty"));
  constexpr std::string_view kHttp = "http://";
  if (text.starts_with(kHttp)) {
    std::string_view rest = text.substr(kHttp.size());
    auto slash = rest.find('/');
    std::string_view hp = rest.substr(0, slash);
    TRY_ASSIGN(LoadTarget t, parse_authority(text, hp, false));
    if (slash != std::string_view::npos) t.path = std::string(rest.substr(slash));
    for (char c : t.path)
      if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f)
        return tl::unexpected(bad(text, "has a space or control character in its path"));
    return t;
  }
  if (auto scheme = text.find("://"); scheme != std::string_view::npos)
    return tl::unexpected(
        bad(text, "uses scheme " + shown(text.substr(0, scheme)) + "; only http:// is spoken"));
  if (text.find('/') != std::string_view::npos)
    return tl::unexpected(bad(text, "has a path but no http:// in front"));
  return parse_authority(text, text, true);
}

}  // namespace labctl
