// Reading agents' logs (logs/<node>/<agent>.log in the lab's state) for `labctl logs`:
// the last N lines of a file without reading all of it, and following a set of files as
// they grow, each line prefixed with its agent's name.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "labctl/base/error.h"
#include "labctl/base/fd.h"

namespace labctl {

/// The offset in the open file `fd` at which its last `lines` lines start (a final line
/// without '\n' counts); 0 when the file has fewer. Reads backwards in blocks.
[[nodiscard]] Result<off_t> last_lines_offset(int fd, long lines);

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

/// Prints what was appended to `src` since last time through `out`, line by line, each
/// line prefixed "label | " when there is a label. A last line without '\n' is printed only
/// when flush_partial (at the end of a non-following read).
[[nodiscard]] Status pump_log(LogSource& src, bool flush_partial,
                              const std::function<void(const std::string&)>& out);

}  // namespace labctl
