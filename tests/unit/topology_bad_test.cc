// Every file in tests/data/bad is a broken topology whose header says which diagnostics it
// must produce ("# expect: LINE:COL: message substring", one line each). Loading it must
// produce each of them as an error at exactly that position, and no topology.
// Every file in tests/data/warn is a topology that loads but must be warned about
// ("# warn: LINE:COL: message substring"): each as a warning at exactly that position, and
// no error.
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

// The .toml files of tests/data/<dir>, sorted.
std::vector<std::string> fixture_files(const char* dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(fs::path(LABCTL_TEST_DATA) / dir))
    if (e.path().extension() == ".toml") out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// The file's "# <tag>: LINE:COL: text" header lines.
std::vector<Expect> expectations(const fs::path& p, const std::string& tag) {
  const std::regex re("^# " + tag + R"(: (\d+):(\d+): (.+)$)");
  std::vector<Expect> out;
  std::ifstream in(p);
  std::string line;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, m, re)) out.push_back({std::stoi(m[1]), std::stoi(m[2]), m[3]});
  }
  return out;
}

// Loads tests/data/<dir>/<file> and expects each header line as a diagnostic of `severity`
// at exactly its position in that file. Returns the load result for further checks.
LoadResult expect_diagnostics(const char* dir, const std::string& file, const std::string& tag,
                              Diagnostic::Severity severity) {
  const fs::path path = fs::path(LABCTL_TEST_DATA) / dir / file;
  const auto expects = expectations(path, tag);
  EXPECT_FALSE(expects.empty()) << path << " has no '# " << tag << ": LINE:COL: text' header";
  LoadResult res = load_topology(path.string());
  std::string all;
  for (const auto& d : res.diagnostics) all += "  " + format_diagnostic(d) + "\n";
  for (const auto& e : expects) {
    const bool found = std::any_of(res.diagnostics.begin(), res.diagnostics.end(), [&](const Diagnostic& d) {
      return d.severity == severity && d.line == e.line && d.col == e.col &&
             d.message.find(e.text) != std::string::npos && d.file == path.string();
    });
    EXPECT_TRUE(found) << "expected " << tag << " " << e.line << ":" << e.col << ": " << e.text << "\ngot:\n" << all;
  }
  return res;
}

class BadTopology : public ::testing::TestWithParam<std::string> {};

TEST_P(BadTopology, ReportsExpectedDiagnostics) {
  LoadResult res = expect_diagnostics("bad", GetParam(), "expect", Diagnostic::Severity::Error);
  EXPECT_FALSE(res.topology.has_value());
  EXPECT_FALSE(res.ok());
}

class WarnTopology : public ::testing::TestWithParam<std::string> {};

TEST_P(WarnTopology, LoadsWithTheExpectedWarnings) {
  LoadResult res = expect_diagnostics("warn", GetParam(), "warn", Diagnostic::Severity::Warning);
  std::string all;
  for (const auto& d : res.diagnostics) all += "  " + format_diagnostic(d) + "\n";
  EXPECT_TRUE(res.ok()) << all;
  EXPECT_TRUE(res.topology.has_value()) << all;
}

std::string test_name(const ::testing::TestParamInfo<std::string>& info) {
  std::string n = fs::path(info.param).stem().string();
  std::replace(n.begin(), n.end(), '-', '_');
  return n;
}

INSTANTIATE_TEST_SUITE_P(Data, BadTopology, ::testing::ValuesIn(fixture_files("bad")), test_name);
INSTANTIATE_TEST_SUITE_P(Data, WarnTopology, ::testing::ValuesIn(fixture_files("warn")), test_name);

TEST(BadTopologyData, CoversEnoughCases) { EXPECT_GE(fixture_files("bad").size(), 40u); }

}  // namespace
}  // namespace labctl
