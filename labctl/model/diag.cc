#include "labctl/model/diag.h"

#include <algorithm>

#include <fmt/format.h>

#include "labctl/base/display.h"

namespace labctl {

bool LoadResult::ok() const {
  return std::none_of(diagnostics.begin(), diagnostics.end(), [](const Diagnostic& d) {
    return d.severity == Diagnostic::Severity::Error;
  });
}

// Longer than any sane path to a lab file, short enough that a line stays readable.
constexpr std::size_t kMaxPlainFile = 255;

static const char* severity_name(Diagnostic::Severity s) {
  return s == Diagnostic::Severity::Error ? "error" : "warning";
}

std::string format_diagnostic(const Diagnostic& d) {
  // A diagnostic about the file as a whole (it cannot be opened) has no position.
  // The file is as the user gave it: printed plainly when it is a readable path, so editors
  // and scripts can follow "file:line:col", and through shown() when it could flood or
  // garble the terminal (a megabyte-long name, control bytes).
  std::string file = plainly_printable(d.file) && d.file.size() <= kMaxPlainFile ? d.file : shown(d.file);
  std::string where = d.line ? fmt::format("{}:{}:{}", file, d.line, d.col) : file;
  std::string out = fmt::format("{}: {}: {}", where, severity_name(d.severity), d.message);
  if (!d.hint.empty()) out += "\n  hint: " + d.hint;
  return out;
}

nlohmann::json diagnostics_json(const std::vector<Diagnostic>& diags) {
  auto out = nlohmann::json::array();
  for (const auto& d : diags) {
    nlohmann::json j = {{"severity", severity_name(d.severity)},
                        {"file", d.file},
                        {"line", d.line},
                        {"col", d.col},
                        {"message", d.message}};
    if (!d.hint.empty()) j["hint"] = d.hint;
    out.push_back(std::move(j));
  }
  return out;
}

namespace topo {

void Reporter::error(Pos p, std::string message, std::string hint) {
  diags_.push_back({Diagnostic::Severity::Error, file_, p.line, p.col, std::move(message),
                    std::move(hint)});
}

void Reporter::warning(Pos p, std::string message, std::string hint) {
  diags_.push_back({Diagnostic::Severity::Warning, file_, p.line, p.col, std::move(message),
                    std::move(hint)});
}

bool Reporter::has_errors() const {
  return std::any_of(diags_.begin(), diags_.end(), [](const Diagnostic& d) {
    return d.severity == Diagnostic::Severity::Error;
  });
}

std::vector<Diagnostic> Reporter::take() {
  std::stable_sort(diags_.begin(), diags_.end(), [](const Diagnostic& a, const Diagnostic& b) {
    return std::tie(a.line, a.col) < std::tie(b.line, b.col);
  });
  // One mistake can be seen by two checks at the same spot; say it once.
  diags_.erase(std::unique(diags_.begin(), diags_.end(),
                           [](const Diagnostic& a, const Diagnostic& b) {
                             return a.line == b.line && a.col == b.col && a.message == b.message;
                           }),
               diags_.end());
  return std::move(diags_);
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  // Optimal string alignment: Levenshtein plus adjacent swaps ("nmae", "lna"), the most
  // common typo in hand-written files.
  std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
  for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i)
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  return d[a.size()][b.size()];
}

std::string nearest(std::string_view word, const std::vector<std::string>& candidates) {
  // Up to half the word's length (at least 1, at most 3) counts as a plausible typo.
  std::size_t limit = std::clamp<std::size_t>(word.size() / 2, 1, 3);
  std::string best;
  // Ties go to the candidate of the same length: "prot" is "port" swapped, not "proto" cut.
  auto score = [&](const std::string& c) {
    std::size_t len_diff = c.size() > word.size() ? c.size() - word.size() : word.size() - c.size();
    return std::pair(edit_distance(word, c), len_diff);
  };
  std::pair<std::size_t, std::size_t> best_score{limit + 1, 0};
  for (const auto& c : candidates) {
    // The length difference bounds the distance from below; checking it first keeps a
    // megabyte-long word from costing a megabyte-sized table per candidate.
    std::size_t len_diff = c.size() > word.size() ? c.size() - word.size() : word.size() - c.size();
    if (len_diff > limit) continue;
    auto sc = score(c);
    if (sc < best_score) {
      best_score = sc;
      best = c;
    }
  }
  return best;
}

std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates,
                         std::string otherwise) {
  auto n = nearest(word, candidates);
  if (!n.empty()) return fmt::format("did you mean {}?", shown(n));
  return otherwise;
}

std::string plain(std::string_view name) {
  bool word = !name.empty() && name.size() <= kShownMax && plainly_printable(name) &&
              name.find_first_of(" '\"\\") == std::string_view::npos;
  return word ? std::string(name) : shown(name);
}

Pos pos_of(const toml::source_region& r) {
  return Pos{static_cast<int>(r.begin.line), static_cast<int>(r.begin.column)};
}

Pos pos_or(const toml::node& n, Pos fallback) {
  Pos p = pos_of(n.source());
  return p.line ? p : fallback;
}

const char* type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    default: return "a date or time";
  }
}

Pos pos_at(const toml::table& root, std::string_view path, Pos fallback) {
  auto view = root.at_path(path);
  if (!view) return fallback;
  Pos p = pos_of(view.node()->source());
  return p.line ? p : fallback;
}

}  // namespace topo
}  // namespace labctl
