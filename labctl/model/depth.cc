#include "labctl/model/depth.h"

#include <vector>

#include <fmt/format.h>

#include "labctl/model/rules.h"

namespace labctl::topo {
namespace {

bool bare_key_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

// Walks the text keeping line and column as toml++ counts them (1-based, columns in code
// points: UTF-8 continuation bytes do not start a column).
class Scanner {
 public:
  explicit Scanner(std::string_view t) : t_(t) {}
  std::optional<DepthError> run();

 private:
  // One open inline table or array. `depth` is the depth of the nodes directly inside it:
  // an array's elements, or an inline table's keys before their own dotted parts.
  struct Frame {
    bool table;
    int depth;
  };

  bool done() const { return i_ >= t_.size(); }
  char peek(std::size_t k = 0) const { return i_ + k < t_.size() ? t_[i_ + k] : '\0'; }
  void advance() {
    char c = t_[i_++];
    if (c == '\n') {
      ++line_;
      col_ = 1;
    } else if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) {
      ++col_;
    }
  }
  Pos here() const { return Pos{line_, col_}; }
  void skip_blanks() {
    while (!done() && (peek() == ' ' || peek() == '\t')) advance();
  }
  void skip_comment() {
    while (!done() && peek() != '\n') advance();
  }
  void skip_string();
  /// Reads a (dotted) key; returns its number of parts (0 when there is no key here).
  std::size_t key();
  std::optional<DepthError> key_too_deep(Pos p, std::size_t parts, int base);
  std::optional<DepthError> open_array(Pos p, int elem_depth);

  std::string_view t_;
  std::size_t i_ = 0;
  int line_ = 1, col_ = 1;
};

void Scanner::skip_string() {
  char q = peek();
  bool multi = peek(1) == q && peek(2) == q;
  for (int k = 0; k < (multi ? 3 : 1); ++k) advance();
  while (!done()) {
    char c = peek();
    if (q == '"' && c == '\\') {
      advance();
      if (!done()) advance();
      continue;
    }
    if (!multi && c == '\n') return;  // unterminated: toml++ says so
    if (c == q && (!multi || (peek(1) == q && peek(2) == q))) {
      for (int k = 0; k < (multi ? 3 : 1); ++k) advance();
      // A multi-line string may end in up to two more quotes (""""" closes after "").
      while (multi && peek() == q) advance();
      return;
    }
    advance();
  }
}

std::size_t Scanner::key() {
  std::size_t parts = 0;
  for (;;) {
    skip_blanks();
    if (peek() == '"' || peek() == '\'') {
      skip_string();
    } else if (!done() && bare_key_char(peek())) {
      while (!done() && bare_key_char(peek())) advance();
    } else {
      return parts;
    }
    ++parts;
    skip_blanks();
    if (peek() != '.') return parts;
    advance();
  }
}

std::optional<DepthError> Scanner::key_too_deep(Pos p, std::size_t parts, int base) {
  if (parts > static_cast<std::size_t>(kMaxDepth))
    return DepthError{p, fmt::format("this key has {} dotted parts, more than the limit of {}", parts,
                                     kMaxDepth)};
  if (base + static_cast<int>(parts) > kMaxDepth)
    return DepthError{p, fmt::format("this key nests {} levels deep (tables, dotted key parts, inline "
                                     "tables and arrays together), more than the limit of {}",
                                     base + static_cast<int>(parts), kMaxDepth)};
  return std::nullopt;
}

std::optional<DepthError> Scanner::open_array(Pos p, int elem_depth) {
  if (elem_depth > kMaxDepth)
    return DepthError{p, fmt::format("arrays and inline tables nest {} levels deep here (with the "
                                     "keys around them), more than the limit of {}",
                                     elem_depth, kMaxDepth)};
  return std::nullopt;
}

std::optional<DepthError> Scanner::run() {
  std::vector<Frame> stack;
  int table_depth = 0;  // of the last [header] or [[header]]
  enum class Mode { Key, Value } mode = Mode::Key;
  int value_depth = 0;  // the depth of the value about to be read, in Value mode
  while (!done()) {
    char c = peek();
    if (c == ' ' || c == '\t' || c == '\r') {
      advance();
    } else if (c == '#') {
      skip_comment();
    } else if (c == '\n') {
      advance();
      // Arrays may span lines; anything else ends at the end of its line.
      if (stack.empty()) mode = Mode::Key;
    } else if (mode == Mode::Key) {
      int base = stack.empty() ? table_depth : stack.back().depth;
      if (c == '}' && !stack.empty()) {
        stack.pop_back();  // {} or a trailing ','
        mode = Mode::Value;
        value_depth = stack.empty() ? 0 : stack.back().depth;
        continue;
      }
      if (c == '[' && stack.empty()) {
        Pos p = here();
        advance();
        bool array_of_tables = peek() == '[';
        if (array_of_tables) advance();
        std::size_t parts = key();
        // [[a.b]] makes b an array whose elements are the tables: one level more.
        int depth = static_cast<int>(parts) + (array_of_tables ? 1 : 0);
        if (auto e = key_too_deep(p, parts, depth - static_cast<int>(parts))) return e;
        table_depth = depth;
        while (!done() && peek() != '\n' && peek() != '#') advance();
        continue;
      }
      Pos p = here();
      std::size_t parts = key();
      if (parts == 0) {
        advance();  // not a key: leave it to toml++
        continue;
      }
      if (auto e = key_too_deep(p, parts, base)) return e;
      skip_blanks();
      if (peek() == '=') advance();
      mode = Mode::Value;
      value_depth = base + static_cast<int>(parts);
    } else {  // Mode::Value
      if (c == '"' || c == '\'') {
        skip_string();
      } else if (c == '[') {
        if (auto e = open_array(here(), value_depth + 1)) return e;
        advance();
        stack.push_back({false, value_depth + 1});
        value_depth += 1;
      } else if (c == '{') {
        advance();
        stack.push_back({true, value_depth});
        mode = Mode::Key;
      } else if (c == ']' || c == '}') {
        advance();
        if (!stack.empty()) stack.pop_back();
        value_depth = stack.empty() ? 0 : stack.back().depth;
      } else if (c == ',') {
        advance();
        if (!stack.empty() && stack.back().table) mode = Mode::Key;
        if (!stack.empty()) value_depth = stack.back().depth;
      } else {
        advance();  // numbers, booleans, dates: flat
      }
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<DepthError> too_deep(std::string_view text) { return Scanner(text).run(); }

}  // namespace labctl::topo
