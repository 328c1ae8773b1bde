// Error policy: everything in the core that can fail returns Result<T> (tl::expected);
// exceptions are used only at the CLI boundary. An Error says what failed, why (errno and
// the kernel's own extended-ACK text when there is one) and what to do next (hint).
#pragma once

#include <string>
#include <utility>

#include <tl/expected.hpp>

namespace labctl {

struct Error {
  std::string message;  ///< What failed, e.g. "create veth eth0 in dr-demo-client".
  int errnum = 0;       ///< errno, 0 when the failure is not a system error.
  std::string kernel;   ///< The kernel's extended ACK message, if it sent one.
  std::string hint;     ///< What the user can do about it.

  /// Prefixes the message with an outer context: "outer: inner".
  Error& context(const std::string& outer) {
    message = outer + ": " + message;
    return *this;
  }
  /// One human-readable line (plus a "hint:" line when there is a hint).
  [[nodiscard]] std::string str() const;
};

template <class T>
using Result = tl::expected<T, Error>;
using Status = tl::expected<void, Error>;

[[nodiscard]] inline tl::unexpected<Error> fail(std::string message, std::string hint = {}) {
  return tl::unexpected(Error{std::move(message), 0, {}, std::move(hint)});
}
/// An error carrying errno (captured by the caller), e.g. fail_errno("open /run/netns", errno).
[[nodiscard]] tl::unexpected<Error> fail_errno(std::string message, int errnum,
                                               std::string hint = {});

}  // namespace labctl

#define LABCTL_CONCAT_(a, b) a##b
#define LABCTL_CONCAT(a, b) LABCTL_CONCAT_(a, b)

/// Returns the error of a Result/Status expression from the enclosing function. Its
/// temporary is named per expansion, so a TRY inside a lambda inside a TRY's expression
/// (`TRY(in_ns(ns, [&] { TRY(...); }))`) shadows nothing.
#define TRY(expr) TRY_IMPL_(LABCTL_CONCAT(labctl_try_r_, __COUNTER__), expr)
#define TRY_IMPL_(tmp, expr)                                        \
  do {                                                              \
    auto&& tmp = (expr);                                            \
    if (!tmp) return tl::unexpected(std::move(tmp).error());        \
  } while (0)

/// `TRY_ASSIGN(auto x, f());` declares x from f()'s value or returns f()'s error.
#define TRY_ASSIGN(lhs, expr) TRY_ASSIGN_IMPL_(LABCTL_CONCAT(labctl_try_, __LINE__), lhs, expr)
#define TRY_ASSIGN_IMPL_(tmp, lhs, expr)                      \
  auto tmp = (expr);                                          \
  if (!tmp) return tl::unexpected(std::move(tmp).error());    \
  lhs = std::move(*tmp)
