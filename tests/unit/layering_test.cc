// The layer rule of ARCHITECTURE.md, kept true: a file under labctl/<layer>/ includes only
// headers of the layers below it. An upward include fails here, naming the line.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

// What each layer may include besides itself. cli/ sits on top and may include anything.
const std::map<std::string, std::set<std::string>>& allowed() {
  static const std::map<std::string, std::set<std::string>> rules = {
      {"base", {}},
      {"model", {"base"}},
      {"plan", {"base", "model"}},
      {"kernel", {"base", "model"}},
      {"vm", {"base", "kernel"}},
      {"lab", {"base", "model", "plan", "kernel"}},
      // checks/, trace/, measure/ and doctor/ are siblings: none includes another.
      {"checks", {"base", "model", "plan", "kernel", "lab"}},
      {"trace", {"base", "model", "plan", "kernel", "lab"}},
      {"measure", {"base", "model", "plan", "kernel", "lab"}},
      {"doctor", {"base", "model", "kernel", "vm"}},
      {"cli", {"base", "model", "plan", "kernel", "lab", "checks", "vm", "trace", "doctor", "measure"}},
  };
  return rules;
}

struct Violation {
  std::string where;  // file:line
  std::string what;
};

// Every `#include "labctl/<layer>/..."` in `file` that its layer may not include.
std::vector<Violation> upward_includes(const fs::path& file, const std::string& layer) {
  static const std::regex include_re(R"re(^\s*#\s*include\s*"labctl/([^/"]+)/[^"]*")re");
  std::vector<Violation> found;
  std::ifstream in(file);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    std::smatch m;
    if (!std::regex_search(line, m, include_re)) continue;
    const std::string target = m[1];
    if (target == layer || allowed().at(layer).contains(target)) continue;
    found.push_back({file.string() + ":" + std::to_string(n),
                     layer + "/ may not include " + target + "/: " + line});
  }
  return found;
}

TEST(Layering, EveryLayerFolderHasARuleAndAReadme) {
  const fs::path root = fs::path(LABCTL_SOURCE_DIR) / "labctl";
  for (const auto& entry : fs::directory_iterator(root)) {
    if (!entry.is_directory()) continue;
    const std::string layer = entry.path().filename();
    EXPECT_TRUE(allowed().contains(layer)) << "labctl/" << layer << "/ is not a known layer";
    if (layer != "cli") {
      EXPECT_TRUE(fs::exists(entry.path() / "README.md")) << "labctl/" << layer << "/README.md";
    }
  }
  // Every source file lives in a layer folder: none loose in labctl/ itself.
  for (const auto& entry : fs::directory_iterator(root)) {
    const std::string ext = entry.path().extension();
    EXPECT_FALSE(entry.is_regular_file() && (ext == ".h" || ext == ".cc"))
        << entry.path() << " is outside every layer";
  }
}

TEST(Layering, NoIncludePointsUpward) {
  const fs::path root = fs::path(LABCTL_SOURCE_DIR) / "labctl";
  std::vector<Violation> all;
  int files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    const std::string ext = entry.path().extension();
    if (!entry.is_regular_file() || (ext != ".h" && ext != ".cc")) continue;
    const std::string layer = fs::relative(entry.path(), root).begin()->string();
    if (!allowed().contains(layer)) continue;  // reported by the test above
    ++files;
    for (auto& v : upward_includes(entry.path(), layer)) all.push_back(std::move(v));
  }
  EXPECT_GT(files, 60) << "the scan found too few sources under " << root;
  for (const auto& v : all) ADD_FAILURE() << v.where << ": " << v.what;
}

// The scanner itself: an upward include in a file it reads is reported with its line.
TEST(Layering, TheScanReportsAnUpwardInclude) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("labctl-layering-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const fs::path file = dir / "x.h";
  std::ofstream(file) << "#pragma once\n#include \"labctl/base/error.h\"\n"
                         "#include \"labctl/lab/state.h\"\n";
  auto found = upward_includes(file, "kernel");
  fs::remove_all(dir);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_THAT(found[0].where, testing::EndsWith("x.h:3"));
  EXPECT_THAT(found[0].what, testing::HasSubstr("kernel/ may not include lab/"));
}

}  // namespace
