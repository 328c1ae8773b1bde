#include "labctl/base/atomic_file.h"

#include <cerrno>
#include <filesystem>
#include <fstream>

namespace labctl {

Status write_file_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return fail_errno("write " + tmp, errno);
    out << text;
    if (!out.flush()) return fail_errno("write " + tmp, errno);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return fail("rename " + tmp + " to " + path + ": " + ec.message());
  return {};
}

}  // namespace labctl
