// Each CLI command lives in cli/<name>.cc and registers itself with LABCTL_COMMAND. A
// command only wires flags to core calls; failures reach main() as ExitError.
#pragma once

#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "labctl/base/error.h"

namespace labctl::cli {

/// Thrown by command callbacks; main() prints `message` (if any) and exits with `code`.
struct ExitError {
  int code = 1;
  std::string message;
};

using SetupFn = void (*)(CLI::App& app);
bool register_command(int order, SetupFn setup);

/// Prints the error as "labctl: error: ..." and throws ExitError{code}.
[[noreturn]] void die(const Error& e, int code = 1);

/// `j` as indented text. User strings (a file path, a name) may be invalid UTF-8, which
/// nlohmann's dump() would throw on: such bytes become U+FFFD instead.
[[nodiscard]] inline std::string json_text(const nlohmann::json& j) {
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

/// Exit statuses shared by every command.
inline constexpr int kExitFailure = 1;
inline constexpr int kExitInvalid = 2;  ///< Bad topology or bad usage: nothing was done.

}  // namespace labctl::cli

#define LABCTL_COMMAND(order, fn) \
  static const bool LABCTL_CONCAT(labctl_registered_, fn) = ::labctl::cli::register_command(order, fn)
