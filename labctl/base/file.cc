#include "labctl/base/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

namespace labctl {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Result<std::string> read_regular_file(const std::string& path, std::size_t max_bytes) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below.
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (!fd) return fail_errno("read " + path, errno);
  struct stat st{};
  if (::fstat(fd.get(), &st) != 0) return fail_errno("read " + path, errno);
  if (!S_ISREG(st.st_mode))
    return fail("read " + path + ": not a regular file", "give the path of a plain file");
  if (static_cast<std::size_t>(st.st_size) > max_bytes)
    return fail("read " + path + ": " + std::to_string(st.st_size) + " bytes, more than the " +
                std::to_string(max_bytes) + " allowed");
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("read " + path, errno);
    if (n == 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.size() > max_bytes)
      return fail("read " + path + ": more than the " + std::to_string(max_bytes) +
                  " bytes allowed");
  }
  return out;
}

Result<Fd> create_file_at(int dirfd, const std::string& name, mode_t mode, int flags) {
  Fd fd(::openat(dirfd, name.c_str(), flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
  if (!fd) return fail_errno("create " + name, errno);
  return fd;
}

Status write_all(int fd, std::string_view text, const std::string& what) {
  while (!text.empty()) {
    ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("write " + what, errno);
    text.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

Result<TempFile> make_temp_file_beside(const std::string& path) {
  std::vector<char> templ(path.begin(), path.end());
  for (char c : std::string_view(".XXXXXX")) templ.push_back(c);
  templ.push_back('\0');
  int fd = ::mkostemp(templ.data(), O_CLOEXEC);
  if (fd < 0) return fail_errno("create a temporary file beside " + path, errno);
  return TempFile{Fd(fd), std::string(templ.data())};
}

Status commit_temp_file(TempFile& tmp, const std::string& path, mode_t mode) {
  if (::fchmod(tmp.fd.get(), mode) != 0 || ::rename(tmp.path.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.path.c_str());
    return fail_errno("replace " + path, e);
  }
  tmp.fd.reset();
  return {};
}

Status write_text(const std::string& path, const std::string& text, mode_t mode) {
  TRY_ASSIGN(TempFile tmp, make_temp_file_beside(path));
  if (Status st = write_all(tmp.fd.get(), text, tmp.path); !st) {
    ::unlink(tmp.path.c_str());
    return st;
  }
  return commit_temp_file(tmp, path, mode);
}

Status write_file_atomically(const std::string& path, const std::string& text, mode_t mode) {
  return write_text(path, text, mode);
}

mode_t output_file_mode(const std::string& path) {
  struct stat st{};
  if (::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) return st.st_mode & 0777;
  return 0600;
}

Status make_private_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) == 0) return {};
  if (errno != EEXIST) return fail_errno("create " + path, errno);
  struct stat st{};
  if (::lstat(path.c_str(), &st) != 0) return fail_errno("inspect " + path, errno);
  const std::string fix = "remove it (labctl makes it again, private) or point LABCTL_STATE_DIR "
                          "at a folder only you can write";
  if (S_ISLNK(st.st_mode)) return fail(path + " is a symbolic link, not labctl's own folder", fix);
  if (!S_ISDIR(st.st_mode)) return fail(path + " is not a folder", fix);
  if (st.st_uid != ::geteuid())
    return fail(path + " belongs to uid " + std::to_string(st.st_uid) + ", not to uid " +
                    std::to_string(::geteuid()) + " who runs labctl",
                fix);
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
    return fail(path + " has mode " + mode + ": others could read or change labctl's state", fix);
  }
  return {};
}

Result<std::string> read_all_stdin(std::size_t max_bytes) {
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail_errno("read stdin", errno);
    if (n == 0) return out;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max_bytes) return fail("stdin holds more than " + std::to_string(max_bytes) + " bytes");
  }
}

}  // namespace labctl
