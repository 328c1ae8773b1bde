#include "labctl/vm/qemu.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include <gtest/gtest.h>

#include "labctl/vm/initramfs.h"

namespace labctl {
namespace {

// Runs `script` with the host's /bin/sh (what the guest runs it with) and returns stdout.
std::string run_sh(const std::string& script) {
  char path[] = "/tmp/labctl-vm-test.XXXXXX";
  int fd = ::mkstemp(path);
  EXPECT_GE(fd, 0);
  ::close(fd);
  std::ofstream(path) << script;
  std::string out;
  FILE* p = ::popen((std::string("/bin/sh ") + path).c_str(), "r");
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  ::pclose(p);
  ::unlink(path);
  return out;
}

TEST(Vm, ShellQuoteSurvivesTheShell) {
  for (std::string s : {"plain", "a b", "it's", "'", "\"q\"", "$HOME `id` $(id)", "new\nline", "", "\\"})
    EXPECT_EQ(run_sh("printf '%s' " + shell_quote(s)), s) << s;
}

TEST(Vm, CommandScriptPassesArgvCwdAndEnvExactly) {
  std::vector<std::string> argv = {"printf", "[%s]\\n", "a b", "it's", "\"q\"", "$X", "", "*"};
  std::string out = run_sh(command_script(argv, "/", {"X=not expanded", "LABCTL_T=a'b"}));
  EXPECT_EQ(out, "[a b]\n[it's]\n[\"q\"]\n[$X]\n[]\n[*]\n");
  EXPECT_EQ(run_sh(command_script({"sh", "-c", "printf '%s|%s' \"$PWD\" \"$LABCTL_T\""}, "/usr",
                                  {"LABCTL_T=a'b", "1BAD=x", "NOEQUALS"})),
            "/usr|a'b");
}

TEST(Vm, CommandScriptFailsClearlyWhenTheCwdIsMissing) {
  std::string s = command_script({"true"}, "/nonexistent-labctl-dir", {});
  EXPECT_EQ(::system(("/bin/sh -c " + shell_quote(s) + " 2>/dev/null").c_str()) >> 8, 125);
}

// Issue 21 item 6: the cwd was pasted into the error message's double quotes unquoted.
TEST(Vm, NothingInTheCwdOrTheEnvironmentRunsInTheScript) {
  const std::string evil = "w\"; }; echo INJECTED; { \"";
  std::string out = run_sh(command_script({"true"}, "/nonexistent/" + evil, {}) + "\n");  // stdout
  EXPECT_EQ(out.find("INJECTED"), std::string::npos) << out;
  // The message names the folder as it is.
  char dir[] = "/tmp/labctl-vm-test-cwd.XXXXXX";
  ASSERT_TRUE(::mkdtemp(dir));
  const std::string missing = std::string(dir) + "/" + evil;
  std::string err_path = std::string(dir) + "/err";
  std::string s = command_script({"true"}, missing, {});
  int rc = ::system(("/bin/sh -c " + shell_quote(s) + " >" + err_path + " 2>&1").c_str());
  EXPECT_EQ(rc >> 8, 125);
  std::ifstream in(err_path);
  std::string err((std::istreambuf_iterator<char>(in)), {});
  // After the shell's own complaint, ours, naming the folder as it is.
  EXPECT_TRUE(err.ends_with("\nlabctl vm: cannot enter " + missing + " in the guest\n")) << err;
  // A folder of that name exists: the command runs there, and env values arrive verbatim.
  const std::string there = std::string(dir) + "/" + evil;
  ASSERT_EQ(::mkdir(there.c_str(), 0700), 0);
  const std::string value = "a'b\"c $(echo INJECTED) `echo INJECTED` \\ \n; echo INJECTED";
  out = run_sh(command_script({"sh", "-c", "printf '%s|%s' \"$PWD\" \"$LABCTL_T\""}, there,
                              {"LABCTL_T=" + value}));
  EXPECT_EQ(out, there + "|" + value);
  ::rmdir(there.c_str());
  ::unlink(err_path.c_str());
  ::rmdir(dir);
}

TEST(Vm, QemuArgvSharesRootReadOnlyAndEscapesCommas) {
  QemuConfig c{"/usr/bin/qemu-system-x86_64", "/k/vmlinuz", "/c/init.cpio", "/tmp/io,x",
               "/tmp/io,x/console.log", 512, false, false};
  auto a = qemu_argv(c);
  auto has = [&](const std::string& s) { return std::find(a.begin(), a.end(), s) != a.end(); };
  EXPECT_TRUE(has("local,path=/,mount_tag=labctl_root,security_model=none,readonly=on,multidevs=remap"));
  EXPECT_TRUE(has("local,path=/tmp/io,,x,mount_tag=labctl_io,security_model=none"));
  EXPECT_TRUE(has("file,id=console,path=/tmp/io,,x/console.log"));
  EXPECT_TRUE(has("512"));
  EXPECT_TRUE(has("tcg"));
  EXPECT_FALSE(has("-enable-kvm"));
  EXPECT_TRUE(has("none")) << "-nic none";
  EXPECT_TRUE(has("console=ttyS0 panic=-1 quiet"));
  c.kvm = true;
  c.verbose = true;
  a = qemu_argv(c);
  EXPECT_TRUE(has("-enable-kvm"));
  EXPECT_TRUE(has("console=ttyS0 panic=-1"));
}

TEST(Vm, PathsTheGuestReplacesAreRecognised) {
  EXPECT_FALSE(hidden_in_guest("/tmp/build")) << "the overlay shows the host's /tmp";
  EXPECT_TRUE(hidden_in_guest("/run"));
  EXPECT_TRUE(hidden_in_guest("/run/user/0"));
  EXPECT_FALSE(hidden_in_guest("/runfoo"));
  EXPECT_FALSE(hidden_in_guest("/work/labctl/build"));
  EXPECT_FALSE(hidden_in_guest("/"));
}

TEST(Vm, NoCommandIsAnError) {
  auto r = vm_exec(VmOptions{});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("no command"), std::string::npos);
}

}  // namespace
}  // namespace labctl
