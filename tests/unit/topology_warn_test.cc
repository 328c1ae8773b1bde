// Every file in tests/data/warn is a topology that loads but must be warned about; its
// header says which warnings ("# warn: LINE:COL: message substring", one line each).
// Loading it must produce each of them as a warning at exactly that position, and no error.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "labctl/model/load.h"

namespace labctl {
namespace {

namespace fs = std::filesystem;

struct Expect {
  int line = 0, col = 0;
  std::string text;
};

std::vector<std::string> warn_files() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(fs::path(LABCTL_TEST_DATA) / "warn"))
    if (e.path().extension() == ".toml") out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<Expect> expectations(const fs::path& p) {
  static const std::regex re(R"(^# warn: (\d+):(\d+): (.+)$)");
  std::vector<Expect> out;
  std::ifstream in(p);
  std::string line;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, m, re)) out.push_back({std::stoi(m[1]), std::stoi(m[2]), m[3]});
  }
  return out;
}

class WarnTopology : public ::testing::TestWithParam<std::string> {};

TEST_P(WarnTopology, LoadsWithTheExpectedWarnings) {
  fs::path path = fs::path(LABCTL_TEST_DATA) / "warn" / GetParam();
  auto expects = expectations(path);
  ASSERT_FALSE(expects.empty()) << path << " has no '# warn: LINE:COL: text' header";
  LoadResult res = load_topology(path.string());
  std::string all;
  for (const auto& d : res.diagnostics) all += "  " + format_diagnostic(d) + "\n";
  EXPECT_TRUE(res.ok()) << all;
  EXPECT_TRUE(res.topology.has_value()) << all;
  for (const auto& e : expects) {
    bool found =
        std::any_of(res.diagnostics.begin(), res.diagnostics.end(), [&](const Diagnostic& d) {
          return d.severity == Diagnostic::Severity::Warning && d.line == e.line &&
                 d.col == e.col && d.message.find(e.text) != std::string::npos &&
                 d.file == path.string();
        });
    EXPECT_TRUE(found) << "expected warning " << e.line << ":" << e.col << ": " << e.text
                       << "\ngot:\n"
                       << all;
  }
}

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string n = fs::path(info.param).stem().string();
  std::replace(n.begin(), n.end(), '-', '_');
  return n;
}

INSTANTIATE_TEST_SUITE_P(Data, WarnTopology, ::testing::ValuesIn(warn_files()), test_name);

}  // namespace
}  // namespace labctl
