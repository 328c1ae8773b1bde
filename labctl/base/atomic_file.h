// Writing a file so that readers see the old content or the new, never half of it.
#pragma once

#include <string>

#include "labctl/base/error.h"

namespace labctl {

/// Writes `text` to PATH.tmp, then renames it over `path`.
[[nodiscard]] Status write_file_atomically(const std::string& path, const std::string& text);

}  // namespace labctl
