// The usual helper for std::visit with one lambda per alternative.
#pragma once

namespace labctl {

template <class... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

}  // namespace labctl
