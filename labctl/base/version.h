// The version a binary was built as: the project version and the commit it came from
// (generated at build time by cmake/Version.cmake; `labctl --version`, `labagent --version`).
#pragma once

namespace labctl {

/// "0.1.0 (git 1d8ae81c0f3a)", "0.1.0 (git 1d8ae81c0f3a-dirty)" or
/// "0.1.0 (not a git checkout)".
[[nodiscard]] const char* labctl_version();

}  // namespace labctl
