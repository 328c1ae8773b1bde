#include "labctl/lab/agent_logs.h"

#include "labctl/plan/agent.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace labctl {

Result<off_t> last_lines_offset(int fd, long lines, long* found) {
  off_t end = ::lseek(fd, 0, SEEK_END);
  if (end < 0) return fail_errno("seek in log", errno);
  if (found) *found = 0;
  if (lines <= 0) return end;
  char block[4096];
  off_t pos = end;
  long seen = 0;
  bool first = true;
  while (pos > 0) {
    const off_t from = std::max<off_t>(0, pos - static_cast<off_t>(sizeof block));
    const size_t len = static_cast<size_t>(pos - from);
    if (::pread(fd, block, len, from) != static_cast<ssize_t>(len))
      return fail_errno("read log", errno);
    for (size_t i = len; i-- > 0;) {
      if (block[i] != '\n') continue;
      // The file's own last '\n' ends the last line; it does not start one.
      if (first && from + static_cast<off_t>(i) == end - 1) {
        first = false;
        continue;
      }
      first = false;
      if (++seen == lines) {
        if (found) *found = lines;
        return from + static_cast<off_t>(i) + 1;
      }
    }
    first = false;
    pos = from;
  }
  // The first line has no '\n' before it; a file of only '\n'-ended lines counted all but it.
  if (found) *found = end == 0 ? 0 : seen + 1;
  return 0;
}

Result<std::vector<LogSource>> open_agent_log(const std::string& label, const std::string& path,
                                              long lines) {
  std::vector<LogSource> out;
  TRY_ASSIGN(LogSource current, open_log(label, path, -1));
  long found = 0;
  if (lines >= 0) {
    TRY_ASSIGN(current.offset, last_lines_offset(current.fd.get(), lines, &found));
  }
  if (lines < 0 || found < lines) {
    // The generation before: whatever of it the count still wants. Missing is normal.
    if (auto older = open_log(label, rotated_log_path(path), lines < 0 ? -1 : lines - found)) {
      out.push_back(std::move(*older));
    } else if (older.error().errnum != ENOENT) {
      return tl::unexpected(older.error());
    }
  }
  out.push_back(std::move(current));
  return out;
}

Result<LogSource> open_log(std::string label, std::string path, long lines) {
  LogSource s;
  s.label = std::move(label);
  s.path = std::move(path);
  s.fd = Fd(::open(s.path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!s.fd) {
    const int err = errno;
    return fail_errno("cannot read the log " + s.path, err,
                      err == EACCES ? "a lab's state belongs to root: run labctl logs with sudo"
                      : err == ENOENT
                          ? "the agent has written nothing yet, or the lab was brought up "
                            "by an older labctl"
                          : "");
  }
  if (lines >= 0) {
    TRY_ASSIGN(s.offset, last_lines_offset(s.fd.get(), lines));
  }
  return s;
}

Status pump_log(LogSource& src, bool flush_partial,
                const std::function<void(const std::string&)>& out) {
  const std::string prefix = src.label.empty() ? "" : src.label + " | ";
  if (struct stat st{}; ::fstat(src.fd.get(), &st) == 0 && st.st_size < src.offset) {
    // Rotated: what it held is in LOG.1 now, and what follows starts again at 0.
    if (!src.partial.empty()) out(prefix + src.partial + "\n");
    src.partial.clear();
    src.offset = 0;
  }
  char buf[65536];
  for (;;) {
    ssize_t n = ::pread(src.fd.get(), buf, sizeof buf, src.offset);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail_errno("read the log " + src.path, errno);
    }
    if (n == 0) break;
    src.offset += n;
    src.partial.append(buf, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t nl; (nl = src.partial.find('\n', start)) != std::string::npos; start = nl + 1)
      out(prefix + src.partial.substr(start, nl + 1 - start));
    src.partial.erase(0, start);
    // A line that never ends is printed in pieces rather than held without bound.
    while (src.partial.size() >= kMaxLogLine) {
      out(prefix + src.partial.substr(0, kMaxLogLine) + "\n");
      src.partial.erase(0, kMaxLogLine);
    }
  }
  if (flush_partial && !src.partial.empty()) {
    out((src.label.empty() ? "" : src.label + " | ") + src.partial + "\n");
    src.partial.clear();
  }
  return {};
}

}  // namespace labctl
