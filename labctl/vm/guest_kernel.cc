#include "labctl/vm/guest_kernel.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

namespace labctl {
namespace fs = std::filesystem;
namespace {

constexpr const char* kFetchHint =
    "fetch Debian's kernel with scripts/fetch-vm-kernel.sh (as root), or pass "
    "--kernel /boot/vmlinuz-$(uname -r) to boot your own kernel";

std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

bool is_dir(const std::string& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

// Candidate module trees for an image of version `v`, best first.
std::vector<std::string> module_candidates(const std::string& image, const std::string& v) {
  fs::path dir = fs::path(image).parent_path();
  return {(dir / ".." / "lib" / "modules" / v).lexically_normal().string(),
          "/lib/modules/" + v, "/usr/lib/modules/" + v};
}

Result<VmKernel> from_image(const std::string& image, const std::string& modules) {
  std::error_code ec;
  if (!fs::is_regular_file(image, ec))
    return fail("kernel image " + image + " does not exist", kFetchHint);
  TRY_ASSIGN(std::string version, kernel_image_version(image));
  VmKernel k{image, modules, version};
  if (k.modules.empty()) {
    for (const auto& c : module_candidates(image, version))
      if (is_dir(c)) {
        k.modules = c;
        break;
      }
    if (k.modules.empty())
      return fail("no modules directory for kernel " + version + " (looked in " +
                      module_candidates(image, version)[0] + " and /lib/modules/" + version + ")",
                  "pass --modules DIR (the kernel's /lib/modules/VERSION tree)");
  }
  if (!is_dir(k.modules)) return fail("modules directory " + k.modules + " does not exist");
  if (fs::path(k.modules).filename() != version)
    return fail("modules directory " + k.modules + " does not belong to kernel " + version,
                "the directory must be named after the kernel version, like /lib/modules/" +
                    version);
  return k;
}

// Debian-style version order ("6.1.0-9" < "6.1.0-56"): compare digit runs as numbers.
bool version_less(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (std::isdigit(static_cast<unsigned char>(a[i])) && std::isdigit(static_cast<unsigned char>(b[j]))) {
      size_t ie = i, je = j;
      while (ie < a.size() && std::isdigit(static_cast<unsigned char>(a[ie]))) ++ie;
      while (je < b.size() && std::isdigit(static_cast<unsigned char>(b[je]))) ++je;
      unsigned long long x = std::stoull(a.substr(i, ie - i)), y = std::stoull(b.substr(j, je - j));
      if (x != y) return x < y;
      i = ie;
      j = je;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i;
      ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

Result<VmKernel> from_cache(const std::string& cache) {
  std::vector<std::string> versions;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(cache, ec)) {
    std::string v = e.path().filename().string();
    if (v.empty() || v[0] == '.') continue;
    if (fs::exists(e.path() / ".complete", ec)) versions.push_back(v);
  }
  if (versions.empty()) return fail("no micro-VM kernel found (nothing cached in " + cache + ")", kFetchHint);
  std::sort(versions.begin(), versions.end(), version_less);
  const std::string& v = versions.back();
  return from_image(cache + "/" + v + "/boot/vmlinuz-" + v, cache + "/" + v + "/lib/modules/" + v);
}

}  // namespace

KernelQuery kernel_query_from_env() {
  KernelQuery q;
  q.env_image = env_or_empty("LABCTL_VM_KERNEL");
  q.env_modules = env_or_empty("LABCTL_VM_MODULES");
  return q;
}

Result<std::string> kernel_image_version(const std::string& image) {
  std::ifstream in(image, std::ios::binary);
  if (!in) {
    int err = errno;
    return fail_errno("read kernel image " + image, err,
                      err == EACCES ? "vmlinuz in /boot is readable by root only: run as root "
                                      "(sudo)"
                                    : "");
  }
  // x86 boot protocol: "HdrS" at 0x202; at 0x20E a u16 pointing (minus 0x200) at the
  // NUL-terminated version string.
  char hdr[0x210] = {};
  in.read(hdr, sizeof hdr);
  if (in.gcount() != sizeof hdr || std::memcmp(hdr + 0x202, "HdrS", 4) != 0)
    return fail(image + " is not an x86 bzImage kernel", "pass the vmlinuz file, e.g. /boot/vmlinuz-VERSION");
  unsigned offset = static_cast<unsigned char>(hdr[0x20E]) | static_cast<unsigned char>(hdr[0x20F]) << 8;
  in.seekg(offset + 0x200);
  std::string version;
  for (char c; in.get(c) && c != '\0' && c != ' ' && version.size() < 256;) version += c;
  if (version.empty()) return fail(image + " carries no kernel version string");
  return version;
}

Result<VmKernel> resolve_vm_kernel(const KernelQuery& q) {
  if (!q.image.empty()) return from_image(q.image, q.modules);
  if (!q.env_image.empty()) {
    auto k = from_image(q.env_image, q.modules.empty() ? q.env_modules : q.modules);
    if (!k) k.error().context("LABCTL_VM_KERNEL");
    return k;
  }
  if (!q.modules.empty() || !q.env_modules.empty())
    return fail("a modules directory was given without a kernel image",
                "pass --kernel too (or LABCTL_VM_KERNEL)");
  return from_cache(q.cache_dir);
}

}  // namespace labctl
