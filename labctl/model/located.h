// Positions that travel with values: where in the TOML text a value was written, kept at
// parse time so that a later check reports it without looking a path up again.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace labctl {

struct Pos {
  int line = 0;  ///< 1-based; 0 when the value has no source position.
  int col = 0;
};

/// A value with the position it was written at.
template <class T>
struct Located {
  T value{};
  Pos pos;
};

/// Where each key of one TOML table had its value written, and each element of a list
/// value. A model object keeps its table's (`keys`), so a check that blames one key of it
/// (a route's `via`, the third of an interface's addresses) points at that key.
class KeyPositions {
 public:
  void add(std::string key, Pos value, std::vector<Pos> elements = {});
  /// The position of `key`'s value, or `fallback` when the table has no such key (or it
  /// has no position).
  [[nodiscard]] Pos of(std::string_view key, Pos fallback) const;
  /// The position of element `index` of `key`'s list, or `fallback` when there is no such
  /// element (the key is absent, not a list, or shorter).
  [[nodiscard]] Pos of(std::string_view key, std::size_t index, Pos fallback) const;

 private:
  struct Key {
    std::string name;
    Located<std::vector<Pos>> value;  ///< The value's position; its elements' if a list.
  };
  [[nodiscard]] const Key* find(std::string_view key) const;
  std::vector<Key> keys_;  ///< A table has a handful of keys: a scan beats a map.
};

}  // namespace labctl
