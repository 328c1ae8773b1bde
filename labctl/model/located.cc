#include "labctl/model/located.h"

#include <algorithm>

namespace labctl {
namespace {

Pos or_fallback(Pos p, Pos fallback) { return p.line ? p : fallback; }

}  // namespace

void KeyPositions::add(std::string key, Pos value, std::vector<Pos> elements) {
  keys_.push_back({std::move(key), {std::move(elements), value}});
}

const KeyPositions::Key* KeyPositions::find(std::string_view key) const {
  auto it = std::find_if(keys_.begin(), keys_.end(), [&](const Key& k) { return k.name == key; });
  return it == keys_.end() ? nullptr : &*it;
}

Pos KeyPositions::of(std::string_view key, Pos fallback) const {
  const Key* k = find(key);
  return k ? or_fallback(k->value.pos, fallback) : fallback;
}

Pos KeyPositions::of(std::string_view key, std::size_t index, Pos fallback) const {
  const Key* k = find(key);
  if (!k || index >= k->value.value.size()) return fallback;
  return or_fallback(k->value.value[index], fallback);
}

}  // namespace labctl
