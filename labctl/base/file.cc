#include "labctl/base/file.h"

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace labctl {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Status write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return fail_errno("write " + path, errno);
  out << text;
  if (!out.flush()) return fail_errno("write " + path, errno);
  return {};
}

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
