#include "labctl/model/rules.h"

#include "labctl/base/display.h"

#include <algorithm>
#include <cctype>

#include "labctl/base/display.h"

namespace labctl::topo {

std::optional<std::string> bad_name(std::string_view name) {
  if (name.empty()) return "is empty";
  if (name.size() > kMaxNameLen) return "is longer than " + std::to_string(kMaxNameLen) + " bytes";
  if (name.front() == '-') return "starts with '-'";
  for (char c : name)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-')
      return "contains " + shown(std::string_view(&c, 1));
  return std::nullopt;
}

const std::vector<std::string>& reserved_lab_names() {
  static const std::vector<std::string> names = {"labs", "locks", "vm"};
  return names;
}

std::optional<std::string> bad_lab_name(std::string_view name) {
  if (auto why = bad_name(name)) return why;
  for (const auto& r : reserved_lab_names())
    if (name == r) return "is reserved for labctl's own files";
  return std::nullopt;
}

std::optional<std::string> bad_ifname(std::string_view name) {
  if (name.empty()) return "is empty";
  if (name.size() > kMaxIfnameLen)
    return "is " + std::to_string(name.size()) + " bytes, longer than the kernel's 15";
  if (name == "." || name == "..") return "is '" + std::string(name) + "'";
  // An allow-list, not the kernel's deny-list: names reach nft rulesets (iifname "..."),
  // file names and messages, so only characters none of them treats specially pass.
  constexpr const char* kAllowed = " (interface names are letters, digits, '_', '.' and '-', not first)";
  if (name.front() == '-') return std::string("starts with '-'") + kAllowed;
  for (char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-') continue;
    if (std::isspace(static_cast<unsigned char>(c))) return std::string("contains whitespace") + kAllowed;
    if (!std::isprint(static_cast<unsigned char>(c)))
      return std::string("contains a control character") + kAllowed;
    return "contains " + shown(std::string_view(&c, 1)) + kAllowed;
  }
  return std::nullopt;
}

std::optional<std::string> bad_ssh_destination(std::string_view dest) {
  if (dest.empty()) return "is empty";
  if (dest.size() > 255) return "is longer than 255 bytes";
  if (dest.front() == '-') return "begins with '-' (ssh would read it as an option)";
  for (unsigned char c : dest)
    if (c <= ' ' || c >= 0x7f || c == '\'' || c == '"' || c == '\\' || c == '`' || c == '$' || c == ';')
      return "holds a space, quote or shell character";
  return std::nullopt;
}

std::optional<std::string> bad_remote_program(std::string_view prog) {
  if (prog.empty()) return "is empty";
  if (prog.size() > 4095) return "is longer than a path can be";
  if (prog.front() == '-') return "begins with '-'";
  if (prog.front() != '/' && prog.find('/') != std::string_view::npos)
    return "is a relative path (where it starts from depends on the ssh login)";
  if (prog.find("/../") != std::string_view::npos || prog.ends_with("/.."))
    return "holds '..'";
  for (unsigned char c : prog)
    if (c <= ' ' || c >= 0x7f) return "holds a space or control byte";
  return std::nullopt;
}

std::optional<std::string> bad_mac(std::string_view mac) {
  if (mac.size() != 17) return "is not six hex octets separated by ':'";
  for (std::size_t i = 0; i < mac.size(); ++i) {
    bool colon = i % 3 == 2;
    if (colon ? mac[i] != ':' : !std::isxdigit(static_cast<unsigned char>(mac[i])))
      return "is not six hex octets separated by ':'";
  }
  int first = std::stoi(std::string(mac.substr(0, 2)), nullptr, 16);
  if (first & 1) return "is a multicast address";
  if (mac == "00:00:00:00:00:00") return "is all zeros";
  return std::nullopt;
}

std::optional<std::string> bad_sysctl_key(std::string_view key) {
  if (key.substr(0, 4) != "net.") return "is not a net.* key";
  // Checked first, so a key of thousands of parts costs one count, not a walk of each.
  if (key.size() > kMaxSysctlKeyLen)
    return "is longer than " + std::to_string(kMaxSysctlKeyLen) + " bytes";
  if (std::count(key.begin(), key.end(), '.') + 1 > static_cast<long>(kMaxSysctlKeyParts))
    return "has more than " + std::to_string(kMaxSysctlKeyParts) + " parts";
  std::size_t start = 0;
  while (start <= key.size()) {
    auto dot = key.find('.', start);
    auto part = key.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (part.empty()) return "has an empty component";
    if (part == "..") return "contains '..'";
    for (char c : part)
      if (c == '/' || std::isspace(static_cast<unsigned char>(c))) return "contains '/' or whitespace";
    for (char c : part)
      if (!std::isprint(static_cast<unsigned char>(c))) return "contains a control character";
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return std::nullopt;
}

std::optional<FwdMethod> parse_method(std::string_view s) {
  if (s == "nat") return FwdMethod::Nat;
  if (s == "dr") return FwdMethod::Dr;
  if (s == "tun") return FwdMethod::Tun;
  if (s == "local") return FwdMethod::Local;
  return std::nullopt;
}

const std::vector<SchedFlag>& sched_flags() {
  // include/uapi/linux/ip_vs.h: the three scheduler-private bits, named per scheduler as
  // ipvsadm names them (-b); sh and mh give SCHED1 and SCHED2 the same meanings.
  static const std::vector<SchedFlag> all = {
      {"sh-fallback", "sh", 0x0008}, {"sh-port", "sh", 0x0010},
      {"mh-fallback", "mh", 0x0008}, {"mh-port", "mh", 0x0010},
  };
  return all;
}

const SchedFlag* find_sched_flag(std::string_view name) {
  for (const auto& f : sched_flags())
    if (f.name == name) return &f;
  return nullptr;
}

std::optional<Proto> parse_proto(std::string_view s) {
  if (s == "tcp") return Proto::Tcp;
  if (s == "udp") return Proto::Udp;
  if (s == "sctp") return Proto::Sctp;
  return std::nullopt;
}

const std::vector<std::string>& schedulers() {
  static const std::vector<std::string> all = {"rr",  "wrr", "lc", "wlc", "lblc", "lblcr", "dh",
                                               "sh",  "sed", "nq", "fo",  "ovf",  "mh",    "twos"};
  return all;
}

bool is_scheduler(std::string_view s) {
  const auto& all = schedulers();
  return std::find(all.begin(), all.end(), s) != all.end();
}

std::vector<std::string> split_words(std::string_view s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

}  // namespace labctl::topo
