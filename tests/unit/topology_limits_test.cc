// Inputs that used to crash or hang the loader, and the limits that now refuse them: a
// path that is not a regular file, a file too large, nesting too deep for toml++'s
// recursion, a switch with more ports than a bridge holds, and user strings too long or
// too strange to echo. Each load runs on a thread of its own with a deadline, so a
// regression fails the test instead of hanging the unit tier.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <thread>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "labctl/model/load.h"
#include "labctl/model/rules.h"

namespace labctl {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

std::string dump(const LoadResult& r) {
  std::string s;
  for (const auto& d : r.diagnostics) s += format_diagnostic(d) + "\n";
  return s;
}

// Runs `f` on a detached thread and waits at most `limit`: a load that blocks or recurses
// forever then fails the test (nullopt) instead of hanging it. `unblock` runs on timeout,
// to free the thread where the test can (the FIFO's write side).
std::optional<LoadResult> within(std::function<LoadResult()> f, std::chrono::seconds limit = 10s,
                                 std::function<void()> unblock = {}) {
  auto done = std::make_shared<std::promise<LoadResult>>();
  auto fut = done->get_future();
  std::thread([done, f = std::move(f)] {
    try {
      done->set_value(f());
    } catch (...) {
      done->set_exception(std::current_exception());
    }
  }).detach();
  if (fut.wait_for(limit) != std::future_status::ready) {
    if (unblock) unblock();
    return std::nullopt;
  }
  return fut.get();
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "labctl-limits-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data()) ? tmpl : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  [[nodiscard]] fs::path path() const { return path_; }

 private:
  std::string path_;
};

const Diagnostic& only(const LoadResult& r) {
  EXPECT_EQ(r.diagnostics.size(), 1u) << dump(r);
  return r.diagnostics.at(0);
}

TEST(FileKind, FifoFailsFastInsteadOfBlocking) {
  TempDir d;
  ASSERT_FALSE(d.path().empty());
  std::string fifo = (d.path() / "lab.toml").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto r = within([&] { return load_topology(fifo); }, 10s, [&] {
    // A blocked open(O_RDONLY) returns once a writer comes and goes.
    int w = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    if (w >= 0) ::close(w);
  });
  ASSERT_TRUE(r) << "loading a FIFO blocked";
  EXPECT_FALSE(r->ok());
  EXPECT_THAT(only(*r).message, HasSubstr("is a FIFO (named pipe), not a topology file"));
}

TEST(FileKind, DirectoryIsNotReadAsAnEmptyFile) {
  TempDir d;
  std::string dir = (d.path() / "lab.toml").string();
  ASSERT_TRUE(fs::create_directory(dir));
  auto r = within([&] { return load_topology(dir); });
  ASSERT_TRUE(r);
  EXPECT_THAT(only(*r).message, HasSubstr("is a directory, not a topology file"));
  EXPECT_THAT(only(*r).message, Not(HasSubstr("version")));
}

TEST(FileKind, SocketIsRefused) {
  TempDir d;
  std::string path = (d.path() / "s.toml").string();
  int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(s, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  ASSERT_LT(path.size(), sizeof sa.sun_path);
  std::memcpy(sa.sun_path, path.c_str(), path.size());
  ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  auto r = within([&] { return load_topology(path); });
  ::close(s);
  ASSERT_TRUE(r);
  // open(2) of a socket fails with ENXIO; either way the message must say what it is.
  EXPECT_THAT(only(*r).message, testing::AnyOf(HasSubstr("is a socket"), HasSubstr("No such device")));
}

TEST(FileKind, DevZeroIsADeviceNotAnEndlessFile) {
  auto r = within([] { return load_topology("/dev/zero"); });
  ASSERT_TRUE(r) << "loading /dev/zero did not return";
  EXPECT_THAT(only(*r).message, HasSubstr("'/dev/zero' is a character device, not a topology file"));
}

TEST(FileSize, LargerThanTheLimitSaysTheSize) {
  TempDir d;
  std::string big = (d.path() / "big.toml").string();
  {
    std::ofstream out(big, std::ios::binary);
    std::string line(1023, '#');
    line += '\n';
    for (std::size_t i = 0; i <= topo::kMaxFileBytes / line.size(); ++i) out << line;
  }
  auto size = fs::file_size(big);
  ASSERT_GT(size, topo::kMaxFileBytes);
  auto r = within([&] { return load_topology(big); });
  ASSERT_TRUE(r);
  EXPECT_THAT(only(*r).message,
              HasSubstr(fmt::format("is {} bytes, more than the limit of 4 MiB (4194304 bytes)", size)));
}

TEST(FileSize, AtTheLimitIsRead) {
  // Exactly the limit is allowed: the file is read (and then judged as TOML).
  TempDir d;
  std::string f = (d.path() / "edge.toml").string();
  {
    std::ofstream out(f, std::ios::binary);
    std::string head = "version = 1\nname = \"edge\"\n";
    out << head << std::string(topo::kMaxFileBytes - head.size() - 1, '#') << '\n';
  }
  ASSERT_EQ(fs::file_size(f), topo::kMaxFileBytes);
  auto r = within([&] { return load_topology(f); });
  ASSERT_TRUE(r);
  EXPECT_THAT(dump(*r), HasSubstr("the topology has no nodes"));
}

TEST(Depth, FiftyThousandPartKeyIsRefusedBeforeTomlxx) {
  std::string key = "a";
  for (int i = 1; i < 50000; ++i) key += ".a";
  std::string text = "version = 1\n" + key + " = 1\n";
  auto r = within([&] { return parse_topology(text, "deep.toml"); });
  ASSERT_TRUE(r) << "the parser did not return";
  const Diagnostic& d = only(*r);
  EXPECT_EQ(d.line, 2);
  EXPECT_EQ(d.col, 1);
  EXPECT_THAT(d.message, HasSubstr("this key has 50000 dotted parts, more than the limit of 64"));
}

TEST(Depth, DeeplyNestedArraysAndInlineTablesAreRefused) {
  std::string arrays = "x = " + std::string(20000, '[') + std::string(20000, ']') + "\n";
  std::string tables = "x = ";
  for (int i = 0; i < 20000; ++i) tables += "{a=";
  tables += "1" + std::string(20000, '}') + "\n";
  std::string mixed = "x = ";
  for (int i = 0; i < 20000; ++i) mixed += "[{a=";
  for (const auto& text : {arrays, tables, mixed}) {
    auto r = within([&] { return parse_topology(text, "deep.toml"); });
    ASSERT_TRUE(r);
    EXPECT_THAT(only(*r).message, HasSubstr("more than the limit of 64"));
    EXPECT_EQ(only(*r).line, 1);
  }
}

TEST(Depth, TheLimitItselfIsAllowedAndStringsDoNotCount) {
  // 63 arrays under a key of one part: 64 levels, parsed by toml++ (which then says what
  // is wrong with the topology, not with the depth).
  std::string text = "x = " + std::string(63, '[') + std::string(63, ']') + "\n" +
                     "y = \"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"\n" +
                     "z = '''{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{'''\n";
  LoadResult r = parse_topology(text, "edge.toml");
  EXPECT_THAT(dump(r), Not(HasSubstr("limit of 64")));
  EXPECT_THAT(dump(r), HasSubstr("unknown key 'x'"));
  std::string deeper = "x = " + std::string(64, '[') + std::string(64, ']') + "\n";
  EXPECT_THAT(dump(parse_topology(deeper, "edge.toml")), HasSubstr("limit of 64"));
}

TEST(Messages, HugeBuiltinNameIsShownBounded) {
  std::string name(1 << 20, 'x');
  auto r = within([&] { return load_topology(name); });
  ASSERT_TRUE(r) << "a 1 MiB name did not return";
  std::string text = format_diagnostic(only(*r));
  EXPECT_LT(text.size(), 600u) << text.substr(0, 600);
  EXPECT_THAT(text, HasSubstr("... (1048576 bytes)"));
}

TEST(Messages, ControlBytesInAPathAreVisible) {
  LoadResult r = load_topology("/nonexistent/\a\x1b[31mlab.toml");
  std::string text = format_diagnostic(only(r));
  EXPECT_EQ(text.find('\a'), std::string::npos) << text;
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
  EXPECT_THAT(text, HasSubstr("\\a"));
}

std::string switch_lab(int ports) {
  std::string t = "version = 1\nname = \"big\"\n[switches.lan]\n[nodes.a]\n";
  for (int i = 0; i < ports; ++i) t += fmt::format("interfaces.e{0} = {{ switch = \"lan\", port = \"p{0}\" }}\n", i);
  return t;
}

TEST(BridgePorts, MoreThan1024AreAnError) {
  LoadResult r = parse_topology(switch_lab(1025), "big.toml");
  EXPECT_FALSE(r.ok());
  EXPECT_THAT(dump(r), HasSubstr("big.toml:3:11: error: switch lan has 1025 ports, more than a Linux bridge "
                                 "holds (1024, BR_MAX_PORTS)"));
  LoadResult ok = parse_topology(switch_lab(1024), "big.toml");
  EXPECT_TRUE(ok.ok()) << dump(ok);
}

}  // namespace
}  // namespace labctl
