#include "labctl/checks/junit.h"

#include <cstdint>
#include <cstdio>
#include <iomanip>
#include <sstream>

namespace labctl {
namespace {

// Length of the valid UTF-8 sequence XML may carry at s[i], or 0 when the bytes there are
// not one (bad or overlong encodings, surrogates, beyond U+10FFFF, U+FFFE and U+FFFF).
size_t xml_char_len(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  size_t n;
  uint32_t cp;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) n = 2, cp = c & 0x1f;
  else if (c >= 0xe0 && c <= 0xef) n = 3, cp = c & 0x0f;
  else if (c >= 0xf0 && c <= 0xf4) n = 4, cp = c & 0x07;
  else return 0;
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xc0) != 0x80) return 0;
    cp = cp << 6 | (b(k) & 0x3f);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff))) return 0;
  if ((cp >= 0xd800 && cp <= 0xdfff) || cp == 0xfffe || cp == 0xffff) return 0;
  return n;
}

std::string seconds(double ms) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(3) << ms / 1000;
  return o.str();
}

std::string failure_message(const CheckResult& c) {
  std::string m = "expected " + c.expected + "; seen " + c.detail;
  for (const auto& k : c.causes) m += "; cause: " + k.what + (k.fix.empty() ? "" : " (fix: " + k.fix + ")");
  return m;
}

}  // namespace

std::string xml_escaped(std::string_view s, bool attribute) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '&': out += "&amp;"; ++i; continue;
      case '<': out += "&lt;"; ++i; continue;
      case '>': out += "&gt;"; ++i; continue;
      case '"': out += "&quot;"; ++i; continue;
      case '\'': out += "&apos;"; ++i; continue;
      case '\n': out += attribute ? "&#10;" : "\n"; ++i; continue;
      case '\r': out += "&#13;"; ++i; continue;
      case '\t': out += attribute ? "&#9;" : "\t"; ++i; continue;
      default: break;
    }
    const size_t n = c < 0x20 || c == 0x7f ? 0 : xml_char_len(s, i);
    if (n == 0) {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::string checks_junit(const std::vector<CheckReport>& reports, std::string_view suite) {
  size_t tests = 0, failures = 0;
  double ms = 0;
  for (const auto& r : reports)
    for (const auto& c : r.results) ++tests, failures += !c.passed, ms += c.ms;
  std::ostringstream o;
  o << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  o << "<testsuites name=\"" << xml_escaped(suite, true) << "\" tests=\"" << tests << "\" failures=\"" << failures
    << "\" errors=\"0\" time=\"" << seconds(ms) << "\">\n";
  for (const auto& r : reports) {
    size_t f = 0;
    double t = 0;
    for (const auto& c : r.results) f += !c.passed, t += c.ms;
    const std::string lab = xml_escaped(r.lab, true);
    o << "  <testsuite name=\"" << lab << "\" tests=\"" << r.results.size() << "\" failures=\"" << f
      << "\" errors=\"0\" skipped=\"0\" time=\"" << seconds(t) << "\">\n";
    for (const auto& c : r.results) {
      o << "    <testcase classname=\"" << lab << "\" name=\"" << xml_escaped(c.name, true)
        << "\" time=\"" << seconds(c.ms) << "\">\n";
      if (!c.passed) {
        o << "      <failure message=\"" << xml_escaped(failure_message(c), true) << "\" type=\""
          << xml_escaped(c.kind, true) << "\">";
        o << xml_escaped("expected: " + c.expected + "\nseen: " + c.detail + "\n");
        for (const auto& k : c.causes)
          o << xml_escaped("cause (" + k.node + "): " + k.what + "\n" +
                           (k.fix.empty() ? "" : "fix: " + k.fix + "\n"));
        o << "</failure>\n";
      }
      o << "      <system-out>"
        << xml_escaped(c.kind + ": " + c.detail + "\ndeadline " + seconds(c.deadline_ms) +
                       " s, took " + seconds(c.ms) + " s\n")
        << "</system-out>\n";
      o << "    </testcase>\n";
    }
    o << "  </testsuite>\n";
  }
  o << "</testsuites>\n";
  return o.str();
}

}  // namespace labctl
