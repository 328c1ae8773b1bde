// What spawn_in_netns says before it forks, when the program cannot be run: no root needed.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <cstdlib>
#include <string>

#include "labctl/kernel/process.h"

namespace labctl {
namespace {

class ScopedPath {
 public:
  explicit ScopedPath(const char* value) {
    if (const char* p = std::getenv("PATH")) old_ = p;
    ::setenv("PATH", value, 1);
  }
  ~ScopedPath() { ::setenv("PATH", old_.c_str(), 1); }
  ScopedPath(const ScopedPath&) = delete;
  ScopedPath& operator=(const ScopedPath&) = delete;

 private:
  std::string old_;
};

TEST(SpawnErrors, AProgramNotInPathNamesItAndWherePathLooked) {
  ScopedPath path("/nonexistent/bin:/also/not/here");
  SpawnOptions o;
  o.argv = {"no-such-agent-program"};
  auto r = spawn_in_netns(o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().errnum, ENOENT);
  const std::string s = r.error().str();
  EXPECT_NE(s.find("program 'no-such-agent-program' not found in PATH"), std::string::npos) << s;
  EXPECT_NE(s.find("PATH looked in '/nonexistent/bin:/also/not/here'"), std::string::npos) << s;
  EXPECT_NE(s.find("full path"), std::string::npos) << s;
}

TEST(SpawnErrors, AFullPathThatIsMissingOrNotExecutableSaysWhich) {
  SpawnOptions o;
  o.argv = {"/nonexistent/agent"};
  auto r = spawn_in_netns(o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().errnum, ENOENT);
  EXPECT_NE(r.error().str().find("there is no file '/nonexistent/agent'"), std::string::npos)
      << r.error().str();
  const std::string plain = ::testing::TempDir() + "/labctl-not-executable-" + std::to_string(::getpid());
  std::ofstream(plain) << "#!/bin/sh\n";
  ::chmod(plain.c_str(), 0644);
  o.argv = {plain};
  r = spawn_in_netns(o);
  std::remove(plain.c_str());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().errnum, EACCES);
  EXPECT_NE(r.error().str().find("is not executable"), std::string::npos) << r.error().str();
  // A name with a control byte is shown visibly, never raw.
  o.argv = {"/nonexistent/a\x07gent"};
  r = spawn_in_netns(o);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().str().find('\x07'), std::string::npos);
  EXPECT_NE(r.error().str().find("a\\agent"), std::string::npos) << r.error().str();
}

}  // namespace
}  // namespace labctl
