// Quoting for the shell commands labctl prints (dry-run scripts, explain, --json).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace labctl {

/// The word as one POSIX shell word: unchanged when it is plainly safe, else single-quoted.
[[nodiscard]] std::string shell_quote(std::string_view word);
/// Each word quoted, joined by single spaces.
[[nodiscard]] std::string shell_join(const std::vector<std::string>& words);

}  // namespace labctl
