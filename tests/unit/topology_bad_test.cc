// Every file in tests/data/bad is a broken topology whose header says which diagnostics it
// must produce ("# expect: LINE:COL: message substring", one line each). Loading it must
// produce each of them as an error at exactly that position, and no topology.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "labctl/model/load.h"

namespace labctl {
namespace {

namespace fs = std::filesystem;

struct Expect {
  int line = 0, col = 0;
  std::string text;
};

std::vector<std::string> bad_files() {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(fs::path(LABCTL_TEST_DATA) / "bad"))
    if (e.path().extension() == ".toml") out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<Expect> expectations(const fs::path& p) {
  static const std::regex re(R"(^# expect: (\d+):(\d+): (.+)$)");
  std::vector<Expect> out;
  std::ifstream in(p);
  std::string line;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, m, re)) out.push_back({std::stoi(m[1]), std::stoi(m[2]), m[3]});
  }
  return out;
}

class BadTopology : public ::testing::TestWithParam<std::string> {};

TEST_P(BadTopology, ReportsExpectedDiagnostics) {
  fs::path path = fs::path(LABCTL_TEST_DATA) / "bad" / GetParam();
  auto expects = expectations(path);
  ASSERT_FALSE(expects.empty()) << path << " has no '# expect: LINE:COL: text' header";
  LoadResult res = load_topology(path.string());
  EXPECT_FALSE(res.topology.has_value());
  EXPECT_FALSE(res.ok());
  std::string all;
  for (const auto& d : res.diagnostics) all += "  " + format_diagnostic(d) + "\n";
  for (const auto& e : expects) {
    bool found = std::any_of(res.diagnostics.begin(), res.diagnostics.end(), [&](const Diagnostic& d) {
      return d.severity == Diagnostic::Severity::Error && d.line == e.line && d.col == e.col &&
             d.message.find(e.text) != std::string::npos && d.file == path.string();
    });
    EXPECT_TRUE(found) << "expected " << e.line << ":" << e.col << ": " << e.text << "\ngot:\n" << all;
  }
}

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string n = fs::path(info.param).stem().string();
  std::replace(n.begin(), n.end(), '-', '_');
  return n;
}

INSTANTIATE_TEST_SUITE_P(Data, BadTopology, ::testing::ValuesIn(bad_files()), test_name);

TEST(BadTopologyData, CoversEnoughCases) { EXPECT_GE(bad_files().size(), 40u); }

}  // namespace
}  // namespace labctl
