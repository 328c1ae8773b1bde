// Whole files as text: read, written, and written so that readers see the old content or
// the new, never half of it.
#pragma once

#include <string>

#include "labctl/base/error.h"

namespace labctl {

/// The file's bytes; "" when it cannot be read.
[[nodiscard]] std::string read_text(const std::string& path);
/// Replaces the file's content with `text`.
[[nodiscard]] Status write_text(const std::string& path, const std::string& text);
/// Writes `text` to PATH.tmp, then renames it over `path`.
[[nodiscard]] Status write_file_atomically(const std::string& path, const std::string& text);

}  // namespace labctl
