// arena.hpp: one allocation holding every tensor of a structure.
//
// Parameter, gradient, optimizer-state and activation structures describe their
// tensors with a `visit(walker, args...)` member that calls `w("name", view, shape)`
// once per tensor and `w.child("name")` for nested structures. The same description
// sizes the arena, lays the views out inside it and names tensors for checkpoints.
#pragma once
#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include "tensor.hpp"

namespace hyena {

// Visits named tensors; `prefix` gives dotted names like "blocks.3.mixer.in_proj.weight".
template <class T, class Memory = host_memory>
struct walker {
  using callback = std::function<void(const std::string& name, view<T, Memory>& v, const shape& s)>;
  callback fn;
  std::string prefix;

  void operator()(std::string_view name, view<T, Memory>& v, const shape& s) const {
    fn(prefix + std::string(name), v, s);
  }
  walker child(std::string_view name) const { return {fn, prefix + std::string(name) + "."}; }
  walker child(index_t i) const { return child(std::to_string(i)); }
};

// Calls fn(name, view, shape) for every tensor of `s`.
template <class T, class Memory = host_memory, class S, class Fn, class... Args>
void for_each_tensor(S& s, Fn&& fn, const Args&... args) {
  walker<T, Memory> w{[&](const std::string& n, view<T, Memory>& v, const shape& sh) { fn(n, v, sh); }, ""};
  s.visit(w, args...);
}

template <class T, class Memory = host_memory>
class arena {
 public:
  static constexpr index_t align = Memory::alignment / sizeof(T) > 0 ? Memory::alignment / sizeof(T) : 1;

  arena() = default;

  // Sizes one allocation for every tensor of `s`, zeroes it and points s's views into it.
  template <class S, class... Args>
  void bind(S& s, const Args&... args) {
    index_t total = 0;
    for_each_tensor<T, Memory>(s, [&](const std::string&, view<T, Memory>&, const shape& sh) {
      total += round_up(sh.numel());
    }, args...);
    storage_ = tensor<T, Memory>(shape{total});
    storage_.zero();
    index_t offset = 0;
    for_each_tensor<T, Memory>(s, [&](const std::string&, view<T, Memory>& v, const shape& sh) {
      v = view<T, Memory>(storage_.data() + offset, sh);
      offset += round_up(sh.numel());
    }, args...);
  }

  // All of the arena as one flat view (padding between tensors stays zero).
  view<T, Memory> flat() { return storage_.v(); }
  index_t size() const { return storage_.numel(); }
  std::size_t bytes() const { return sizeof(T) * static_cast<std::size_t>(size()); }
  void zero() { storage_.zero(); }

 private:
  static index_t round_up(index_t n) { return (n + align - 1) / align * align; }
  tensor<T, Memory> storage_;
};

}  // namespace hyena
