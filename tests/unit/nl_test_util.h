// Helpers for unit tests that take netlink messages apart with libmnl.
#pragma once

#include <libmnl/libmnl.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "labctl/kernel/netlink.h"

namespace labctl::test {

/// Attributes by type (the last one wins, as in the kernel's nla_parse).
using Attrs = std::map<uint16_t, const nlattr*>;

inline int collect_attr(const nlattr* a, void* data) {
  (*static_cast<Attrs*>(data))[mnl_attr_get_type(a)] = a;
  return MNL_CB_OK;
}

/// The top-level attributes after a family header of `header_size` bytes.
inline Attrs attrs_of(const nlmsghdr* nlh, size_t header_size) {
  Attrs out;
  mnl_attr_parse(nlh, static_cast<unsigned>(header_size), collect_attr, &out);
  return out;
}

inline Attrs nested(const nlattr* nest) {
  Attrs out;
  mnl_attr_parse_nested(nest, collect_attr, &out);
  return out;
}

inline std::vector<uint8_t> payload(const nlattr* a) {
  const auto* p = static_cast<const uint8_t*>(mnl_attr_get_payload(a));
  return {p, p + mnl_attr_get_payload_len(a)};
}

inline std::string str(const nlattr* a) {
  const auto* p = static_cast<const char*>(mnl_attr_get_payload(a));
  return std::string(p, strnlen(p, mnl_attr_get_payload_len(a)));
}

/// A message under construction in a test: header, family header, attributes.
class MsgBuilder {
 public:
  explicit MsgBuilder(uint16_t type, uint16_t flags = 0, uint32_t seq = 0) : buf_(8192, 0) {
    nlh_ = mnl_nlmsg_put_header(buf_.data());
    nlh_->nlmsg_type = type;
    nlh_->nlmsg_flags = flags;
    nlh_->nlmsg_seq = seq;
  }
  template <class T>
  T* extra() {
    return static_cast<T*>(mnl_nlmsg_put_extra_header(nlh_, sizeof(T)));
  }
  nlmsghdr* nlh() { return nlh_; }
  std::vector<uint8_t> bytes() const { return {buf_.begin(), buf_.begin() + nlh_->nlmsg_len}; }

 private:
  std::vector<uint8_t> buf_;
  nlmsghdr* nlh_;
};

}  // namespace labctl::test
