// Reading agents' logs (logs/<node>/<agent>.log in the lab's state) for `labctl logs`:
// the last N lines of a file without reading all of it, and following a set of files as
// they grow, each line prefixed with its agent's name.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "labctl/base/error.h"
#include "labctl/base/fd.h"

namespace labctl {

/// The offset in the open file `fd` at which its last `lines` lines start (a final line
/// without '\n' counts); 0 when the file has fewer. Reads backwards in blocks. `found`, when
/// given, gets how many lines that offset leaves (`lines`, or all the file has).
[[nodiscard]] Result<off_t> last_lines_offset(int fd, long lines, long* found = nullptr);

/// The longest line `pump_log` holds back waiting for its '\n': a longer one is printed in
/// pieces of this size, so a writer that never ends a line cannot make `logs` grow without
/// bound.
inline constexpr std::size_t kMaxLogLine = 64 * 1024;


/// One log being printed: its file, its label ("" = no prefix) and how far it was printed.
struct LogSource {
  std::string label;
  std::string path;
  Fd fd;
  off_t offset = 0;
  std::string partial;  ///< A last line not yet ended by '\n' (held back while following).
};

/// Opens each path (an error names the file and, for EACCES, that root owns the lab's
/// state), positioned before its last `lines` lines (lines < 0: the whole file).
[[nodiscard]] Result<LogSource> open_log(std::string label, std::string path, long lines);

/// An agent's log as sources to print in order: its rotated generation (LOG.1) when there
/// is one and the last `lines` lines reach back into it (lines < 0: all of both), then LOG.
[[nodiscard]] Result<std::vector<LogSource>> open_agent_log(const std::string& label,
                                                            const std::string& path, long lines);

/// Prints what was appended to `src` since last time through `out`, line by line, each
/// line prefixed "label | " when there is a label. A last line without '\n' is printed only
/// when flush_partial (at the end of a non-following read), or in kMaxLogLine pieces. A file
/// that shrank under it (its supervisor rotated it: copied to LOG.1, then emptied) is read
/// again from its start.
[[nodiscard]] Status pump_log(LogSource& src, bool flush_partial,
                              const std::function<void(const std::string&)>& out);

}  // namespace labctl
