#include "labctl/model/load.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "labctl/base/display.h"
#include "labctl/base/fd.h"
#include "labctl/model/builtins.h"
#include "labctl/model/depth.h"
#include "labctl/model/diag.h"
#include "labctl/model/rules.h"

namespace labctl {

LoadResult parse_topology(std::string_view text, const std::string& file) {
  topo::Reporter r(file);
  LoadResult out;
  out.text = std::string(text);
  toml::table root;
  // toml++ recurses per nesting level: too deep a text would crash it, so it never sees one.
  if (auto deep = topo::too_deep(text)) {
    r.error(deep->pos, deep->message,
            fmt::format("a topology needs a handful of levels; {} is the limit", topo::kMaxDepth));
    out.diagnostics = r.take();
    return out;
  }
  try {
    root = toml::parse(text, file);
  } catch (const toml::parse_error& e) {
    r.error(topo::pos_of(e.source()), std::string(e.description()));
    out.diagnostics = r.take();
    return out;
  }
  Topology t = topo::parse_tables(root, r);
  t.source = file;
  topo::validate_topology(t, r);
  if (!r.has_errors()) out.topology = std::move(t);
  out.diagnostics = r.take();
  return out;
}

static bool looks_like_path(const std::string& s) {
  struct stat st {};
  return s.find('/') != std::string::npos ||
         (s.size() > 5 && s.compare(s.size() - 5, 5, ".toml") == 0) ||
         ::stat(s.c_str(), &st) == 0;
}

static LoadResult single_error(const std::string& file, std::string message, std::string hint) {
  LoadResult out;
  out.diagnostics.push_back(
      {Diagnostic::Severity::Error, file, 0, 0, std::move(message), std::move(hint)});
  return out;
}

// What a path that is not a regular file is, for the message that refuses it.
static const char* file_kind(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO (named pipe)";
  if (S_ISSOCK(m)) return "a socket";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  return "not a regular file";
}

static std::string mib(std::size_t bytes) { return fmt::format("{} MiB", bytes >> 20); }

// Reads a topology file safely: opened without blocking (a FIFO with no writer would
// block open(2) forever), checked to be a regular file of at most kMaxFileBytes, and read
// with that bound even if the file grows after fstat.
static LoadResult read_file(const std::string& path) {
  const std::string file = shown(path);
  Fd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (!fd)
    return single_error(path, fmt::format("cannot open topology file {}: {}", file, std::strerror(errno)),
                        "check the path, or give a built-in name (see `labctl list`)");
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    return single_error(path, fmt::format("cannot stat topology file {}: {}", file, std::strerror(errno)), "");
  if (!S_ISREG(st.st_mode))
    return single_error(path, fmt::format("{} is {}, not a topology file", file, file_kind(st.st_mode)),
                        "give the path of a .toml file");
  if (static_cast<std::size_t>(st.st_size) > topo::kMaxFileBytes)
    return single_error(path,
                        fmt::format("topology file {} is {} bytes, more than the limit of {} ({} bytes)",
                                    file, st.st_size, mib(topo::kMaxFileBytes), topo::kMaxFileBytes),
                        "a topology is a few KB of TOML: is this the right file?");
  // Sized by fstat (a topology is a few KB; no 4 MiB buffer to fill), grown only if the
  // file grows meanwhile, and never past one byte over the limit, which shows that it did.
  const std::size_t cap = topo::kMaxFileBytes + 1;
  std::string text(static_cast<std::size_t>(st.st_size) + 1, '\0');
  std::size_t got = 0;
  while (got < cap) {
    if (got == text.size()) text.resize(std::min(cap, text.size() * 2));
    ssize_t n = ::read(fd.get(), text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      return single_error(path, fmt::format("cannot read topology file {}: {}", file, std::strerror(errno)), "");
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got > topo::kMaxFileBytes)
    return single_error(path,
                        fmt::format("topology file {} grew past the limit of {} while being read", file,
                                    mib(topo::kMaxFileBytes)),
                        "");
  text.resize(got);
  return parse_topology(text, path);
}

LoadResult load_topology(const std::string& name_or_path) {
  if (!looks_like_path(name_or_path)) {
    const BuiltinTopology* b = find_builtin(name_or_path);
    if (!b) {
      std::vector<std::string> names;
      for (const auto& x : builtin_topologies()) names.emplace_back(x.name);
      return single_error(name_or_path, "no built-in topology and no file named " + shown(name_or_path),
                          topo::did_you_mean(name_or_path, names,
                                             "`labctl list` shows the built-in topologies"));
    }
    LoadResult res = parse_topology(b->text, std::string(b->name) + ".toml");
    if (res.topology) res.topology->source = "builtin:" + std::string(b->name);
    return res;
  }
  return read_file(name_or_path);
}

}  // namespace labctl
