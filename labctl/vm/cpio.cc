#include "labctl/vm/cpio.h"

#include <sys/stat.h>

#include <utility>

#include <fmt/format.h>

namespace labctl {
namespace {

// newc pads the header+name and the data each to a multiple of 4 bytes.
void pad4(std::string& s) { s.append((4 - s.size() % 4) % 4, '\0'); }

// Archive paths are relative ("init", "bin/busybox"): that is what the kernel expects.
std::string_view relative(std::string_view path) {
  while (!path.empty() && path.front() == '/') path.remove_prefix(1);
  return path;
}

}  // namespace

void CpioWriter::add(std::string_view path, uint32_t mode, std::string_view data,
                     uint32_t rmajor, uint32_t rminor) {
  std::string_view name = relative(path);
  // Fields: magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor,
  // rdevmajor, rdevminor, namesize (with NUL), check; all 8 hex digits.
  out_ += fmt::format("070701{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}",
                      next_ino_++, mode, 0, 0, S_ISDIR(mode) ? 2 : 1, 0, data.size(), 0, 0,
                      rmajor, rminor, name.size() + 1, 0);
  out_ += name;
  out_ += '\0';
  pad4(out_);
  out_ += data;
  pad4(out_);
}

void CpioWriter::add_dir(std::string_view path, uint32_t mode) { add(path, S_IFDIR | mode, {}); }

void CpioWriter::add_file(std::string_view path, std::string_view data, uint32_t mode) {
  add(path, S_IFREG | mode, data);
}

void CpioWriter::add_symlink(std::string_view path, std::string_view target) {
  add(path, S_IFLNK | 0777, target);
}

void CpioWriter::add_char_device(std::string_view path, uint32_t major, uint32_t minor,
                                 uint32_t mode) {
  add(path, S_IFCHR | mode, {}, major, minor);
}

std::string CpioWriter::finish() {
  next_ino_ = 0;
  add("TRAILER!!!", 0, {});
  next_ino_ = 1;
  return std::exchange(out_, {});
}

}  // namespace labctl
