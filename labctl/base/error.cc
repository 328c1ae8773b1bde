#include "labctl/base/error.h"

#include <cstring>

namespace labctl {

std::string Error::str() const {
  std::string out = message;
  if (!kernel.empty()) out += ": " + kernel;
  if (errnum != 0) {
    out += " (";
    out += strerrorname_np(errnum) ? strerrorname_np(errnum) : "errno";
    out += " " + std::to_string(errnum) + ": " + std::strerror(errnum) + ")";
  }
  if (!hint.empty()) out += "\n  hint: " + hint;
  return out;
}

tl::unexpected<Error> fail_errno(std::string message, int errnum, std::string hint) {
  return tl::unexpected(Error{std::move(message), errnum, {}, std::move(hint)});
}

}  // namespace labctl
