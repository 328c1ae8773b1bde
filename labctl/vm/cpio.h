// A writer for the "newc" cpio format, the only archive format the kernel unpacks as an
// initramfs. Building the archive in memory lets labctl add device nodes (/dev/console)
// without being able to mknod, and needs no external `cpio` tool.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace labctl {

class CpioWriter {
 public:
  /// Adds a directory. Parents must have been added first (the kernel does not create them).
  void add_dir(std::string_view path, uint32_t mode = 0755);
  /// Adds a regular file holding `data`.
  void add_file(std::string_view path, std::string_view data, uint32_t mode = 0644);
  void add_symlink(std::string_view path, std::string_view target);
  /// Adds a character device node, e.g. /dev/console is (5, 1).
  void add_char_device(std::string_view path, uint32_t major, uint32_t minor, uint32_t mode = 0600);
  /// Appends the TRAILER!!! entry and returns the archive; the writer is empty afterwards.
  [[nodiscard]] std::string finish();

 private:
  void add(std::string_view path, uint32_t mode, std::string_view data, uint32_t rmajor = 0,
           uint32_t rminor = 0);
  std::string out_;
  uint32_t next_ino_ = 1;
};

}  // namespace labctl
