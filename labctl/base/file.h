// Whole files as text: read, written, and written so that readers see the old content or
// the new, never half of it. labctl runs as root on shared machines, so every write here
// refuses to follow a symlink and every folder it makes or accepts is private
// (docs/security.md).
#pragma once

#include <fcntl.h>
#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "labctl/base/error.h"
#include "labctl/base/fd.h"

namespace labctl {

/// The file's bytes; "" when it cannot be read.
[[nodiscard]] std::string read_text(const std::string& path);
/// A regular file's bytes, at most `max_bytes`: an error for a FIFO, device, folder or a
/// larger file (so a planted FIFO cannot hang the reader, nor a huge file exhaust it).
[[nodiscard]] Result<std::string> read_regular_file(const std::string& path, std::size_t max_bytes);
/// Everything on stdin up to EOF, at most `max_bytes` (more is an error).
[[nodiscard]] Result<std::string> read_all_stdin(std::size_t max_bytes);
/// Creates a new file NAME in the folder `dirfd` (O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC):
/// fails with EEXIST if anything, a symlink included, is already there.
[[nodiscard]] Result<Fd> create_file_at(int dirfd, const std::string& name, mode_t mode = 0600,
                                        int flags = O_WRONLY);
/// Writes all of `text` to `fd`.
[[nodiscard]] Status write_all(int fd, std::string_view text, const std::string& what);
/// Replaces the file's content with `text`: a new file from mkstemp in the same folder,
/// renamed over `path` (so a symlink at `path` is replaced, never followed). Mode 0600
/// unless `mode` says otherwise.
[[nodiscard]] Status write_text(const std::string& path, const std::string& text, mode_t mode = 0600);
/// The same as write_text: readers see the old content or the new, never half of it.
[[nodiscard]] Status write_file_atomically(const std::string& path, const std::string& text,
                                           mode_t mode = 0600);
/// A unique file `PATH.XXXXXX` beside `path`, made by mkstemp (0600, O_CLOEXEC), for a
/// writer that renames it over `path` when done (commit_temp_file) or removes it.
struct TempFile {
  Fd fd;
  std::string path;
};
[[nodiscard]] Result<TempFile> make_temp_file_beside(const std::string& path);
/// fchmod to `mode`, then rename the temp file over `path`.
[[nodiscard]] Status commit_temp_file(TempFile& tmp, const std::string& path, mode_t mode);

/// The mode for a user's output file (a JUnit report, a pcap) replacing `path`: the
/// permission bits of a regular file already there (the user chose them), else 0600.
[[nodiscard]] mode_t output_file_mode(const std::string& path);

/// Makes `path` a private folder: creates it 0700, or accepts one that is already there
/// only if it is a real folder (not a symlink) owned by this user with no access for group
/// or others. Otherwise an error naming what is wrong and how to fix it.
[[nodiscard]] Status make_private_dir(const std::string& path);

}  // namespace labctl
