#include "labctl/base/display.h"

#include <fmt/format.h>

namespace labctl {
namespace {

// The length of the valid UTF-8 sequence starting at s[i], or 0 when it is not one
// (overlong forms, surrogates and code points past U+10FFFF are invalid too).
std::size_t utf8_length(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (b(1) < lo || b(1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k)
    if (b(k) < 0x80 || b(k) > 0xBF) return 0;
  return n;
}

// How byte c is shown when it is not printed as itself, or "" when it is printed as is.
std::string escape_of(unsigned char c) {
  switch (c) {
    case '\0': return "\\0";
    case '\a': return "\\a";
    case '\b': return "\\b";
    case '\t': return "\\t";
    case '\n': return "\\n";
    case '\v': return "\\v";
    case '\f': return "\\f";
    case '\r': return "\\r";
    case '\'': return "\\'";
    case '\\': return "\\\\";
    default: break;
  }
  if (c < 0x20 || c == 0x7F) return fmt::format("\\x{:02x}", c);
  return "";
}

}  // namespace

std::string shown(std::string_view s, std::size_t max) {
  std::string out = "'";
  std::size_t printed = 0, i = 0;
  while (i < s.size() && printed < max) {
    const auto c = static_cast<unsigned char>(s[i]);
    const std::size_t n = utf8_length(s, i);
    if (n == 0) {
      out += fmt::format("\\x{:02x}", c);
      printed += 4;
      ++i;
    } else if (n == 1 && !escape_of(c).empty()) {
      const std::string e = escape_of(c);
      out += e;
      printed += e.size();
      ++i;
    } else {
      out.append(s.substr(i, n));
      ++printed;
      i += n;
    }
  }
  out += "'";
  if (i < s.size()) out += fmt::format("... ({} bytes)", s.size());
  return out;
}

bool plainly_printable(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = utf8_length(s, i);
    if (n == 0) return false;
    if (n == 1) {
      const auto c = static_cast<unsigned char>(s[i]);
      if (c < 0x20 || c == 0x7F) return false;
    }
    i += n;
  }
  return true;
}

}  // namespace labctl
