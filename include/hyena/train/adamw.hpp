// train/adamw.hpp: AdamW (Loshchilov & Hutter) with decoupled weight decay and
// parameter groups, over a flat list of named (param, grad) views.
//
// The update is PyTorch's torch.optim.AdamW, per element, with lr_g = lr * group.lr_scale:
//   p <- p * (1 - lr_g * wd)
//   m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2
//   p <- p - (lr_g / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// Element math runs in double, so float parameters see one rounding per stored value; it is the
// backend's fused `adamw_step` op (backend/optimizer.hpp), one call per step for the whole model.
// m, v and the step counter live in one arena; `state_tensors()` names them for checkpoints
// ("step", "m.<param>", "v.<param>"), and writing those views restores the optimizer exactly.
//
// Sharded (ZeRO stage 1, Rajbhandari et al. 2020): after shard(begin, end) the optimizer keeps
// m and v, and updates, only the parameter elements whose addresses lie in [begin, end); each
// data-parallel rank owns one such range and the ranks all-gather the parameters after the step
// (train/trainer.hpp). A sharded tensor's "m.<param>" / "v.<param>" views hold only its owned
// elements (flat); copy_state_to / copy_state_from move them to and from an unsharded optimizer.
#pragma once
#include <algorithm>
#include <cmath>
#include <concepts>
#include <functional>
#include <limits>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "../backend/cpu/cpu.hpp"
#include "param_entry.hpp"

namespace hyena::train {

struct param_group {
  double lr_scale = 1.0;
  double weight_decay = 0.0;
  bool frozen = false;  // left untouched and given no optimizer state
};

struct adamw_config {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double weight_decay = 0.1;     // for ordinary weight matrices and embeddings
  double filter_lr_scale = 1.0;  // lr multiplier for every tensor under a Hyena "filter."

  void validate() const {
    HYENA_CHECK(beta1 >= 0 && beta1 < 1, "adamw: beta1 ", beta1, " not in [0, 1)");
    HYENA_CHECK(beta2 >= 0 && beta2 < 1, "adamw: beta2 ", beta2, " not in [0, 1)");
    HYENA_CHECK(eps > 0, "adamw: eps must be positive, got ", eps);
    HYENA_CHECK(weight_decay >= 0, "adamw: weight_decay must be >= 0, got ", weight_decay);
    HYENA_CHECK(filter_lr_scale >= 0, "adamw: filter_lr_scale must be >= 0, got ", filter_lr_scale);
  }
};

// Maps a parameter name to its group.
using group_rule = std::function<param_group(const std::string& name)>;

namespace detail {
inline bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}
inline bool contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }
}  // namespace detail

// True for tensors that weight decay would only harm: biases, norm gains, and the Hyena
// filter's positional table ("filter.pos"), sin frequencies ("filter.freq") and decay
// modulation ("filter.delta", "filter.modulation"), whose scale carries meaning.
inline bool default_no_decay(std::string_view name) {
  return name == "bias" || detail::ends_with(name, ".bias") || detail::contains(name, "norm") ||
         detail::contains(name, "filter.pos") || detail::contains(name, "filter.freq") ||
         detail::contains(name, "filter.delta") || detail::contains(name, "filter.modulation");
}

// The default grouping: config.weight_decay except where default_no_decay says none,
// and config.filter_lr_scale for every tensor whose name contains "filter.".
inline group_rule default_group_rule(const adamw_config& c) {
  return [c](const std::string& name) {
    param_group g;
    g.weight_decay = default_no_decay(name) ? 0.0 : c.weight_decay;
    if (detail::contains(name, "filter.")) g.lr_scale = c.filter_lr_scale;
    return g;
  };
}

template <class T, class Memory = host_memory>
struct named_view {
  std::string name;
  view<T, Memory> v;
};

// T: the parameters' scalar type; B: the backend whose `adamw_step` updates them (the views are
// host views today: cpu_ref and cpu).
template <class T, class B = backend::cpu>
class adamw {
 public:
  using config = adamw_config;
  using context = typename B::context;
  using memory = typename B::memory;
  using entry_type = param_entry<T, memory>;

  // `rule` defaults to default_group_rule(c). The views must outlive the optimizer.
  adamw(std::vector<entry_type> entries, const config& c = {}, group_rule rule = {}) : cfg_(c) {
    cfg_.validate();
    if (!rule) rule = default_group_rule(cfg_);
    std::set<std::string> seen;
    for (auto& e : entries) {
      HYENA_CHECK(seen.insert(e.name).second, "adamw: duplicate parameter name ", e.name);
      HYENA_CHECK(e.param.shape == e.grad.shape, "adamw: ", e.name, ": param shape ", e.param.shape,
                  " != grad shape ", e.grad.shape);
      HYENA_CHECK(e.param.contiguous() && e.grad.contiguous(), "adamw: ", e.name, ": views must be contiguous");
      HYENA_CHECK(e.param.numel() == 0 || (e.param.data && e.grad.data), "adamw: ", e.name, ": unbound view");
      param_group g = rule(e.name);
      HYENA_CHECK(g.lr_scale >= 0 && g.weight_decay >= 0, "adamw: ", e.name, ": group needs lr_scale >= 0 and ",
                  "weight_decay >= 0");
      const index_t n = e.param.numel();
      slots_.push_back({std::move(e.name), e.param, e.grad, {}, {}, g, 0, n});
    }
    bind_state();
  }

  // ZeRO-1: keep state for, and update, only the parameter elements at addresses [begin, end)
  // (the other tensors' elements are some other rank's). Resets the state; call before the first
  // step, or restore it after.
  void shard(const T* begin, const T* end) {
    HYENA_CHECK(begin <= end, "adamw: shard range ends before it begins");
    for (auto& s : slots_) {
      const T* p = s.param.data;
      const index_t n = s.param.numel();
      s.lo = std::clamp<index_t>(index_t(begin - p), 0, n);
      s.hi = std::clamp<index_t>(index_t(end - p), s.lo, n);
    }
    sharded_ = true;
    bind_state();
  }
  bool sharded() const { return sharded_; }

  // Writes this optimizer's state (its owned elements, and the step) into `full`, an unsharded
  // optimizer over the same tensors; copy_state_from reads it back. Checkpoints of a sharded
  // run go through them.
  void copy_state_to(adamw& full) const { move_state(const_cast<adamw&>(*this), full, true); }
  void copy_state_from(const adamw& full) { move_state(*this, const_cast<adamw&>(full), false); }

  // One update of every non-frozen tensor at learning rate `lr` (before group scaling), with the
  // gradients multiplied by `grad_scale` on the way in (the clip factor: the gradients themselves
  // are left as they are). One backend op (`adamw_step`) does all the element work.
  void step(context& ctx, double lr, double grad_scale = 1.0) {
    HYENA_CHECK(std::isfinite(lr) && lr >= 0, "adamw: learning rate must be finite and >= 0, got ", lr);
    HYENA_CHECK(std::isfinite(grad_scale) && grad_scale > 0, "adamw: gradient scale must be finite and > 0, got ",
                grad_scale);
    index_t t = step_count() + 1;
    HYENA_CHECK(t < (index_t(1) << std::min(std::numeric_limits<T>::digits, 62)), "adamw: step ", t,
                " is not exactly representable in the state type");
    backend::adamw_hyper h;
    h.beta1 = cfg_.beta1;
    h.beta2 = cfg_.beta2;
    h.eps = cfg_.eps;
    h.bias_correction1 = 1 - std::pow(cfg_.beta1, double(t));
    h.bias_correction2_sqrt = std::sqrt(1 - std::pow(cfg_.beta2, double(t)));
    h.grad_scale = grad_scale;
    for (std::size_t k = 0; k < segments_.size(); ++k) {
      const param_group& g = slots_[segment_slot_[k]].group;
      segments_[k].lr = lr * g.lr_scale;
      segments_[k].decay = 1 - segments_[k].lr * g.weight_decay;
    }
    B::adamw_step(ctx, segments_.data(), index_t(segments_.size()), h);
    set_step_count(t);
  }
  // The same on a default context (host backends).
  void step(double lr, double grad_scale = 1.0)
    requires std::default_initializable<context>
  {
    context ctx;
    step(ctx, lr, grad_scale);
  }

  void set_step_count(index_t t) {
    const T v = T(t);
    memory::to_device(step_view_.data, &v, sizeof(T));
  }
  // Updates taken so far (read from the state, so restoring "step" restores it).
  index_t step_count() const {
    T v;
    memory::to_host(&v, step_view_.data, sizeof(T));  // the state may live on a device
    double s = static_cast<double>(v);
    HYENA_CHECK(s >= 0 && s == std::floor(s), "adamw: corrupt step counter ", s);
    return static_cast<index_t>(s);
  }

  // "step" (shape (1)), then "m.<name>" and "v.<name>" for every non-frozen tensor.
  std::vector<named_view<T, memory>> state_tensors() {
    std::vector<named_view<T, memory>> out;
    layout l{this};
    for_each_tensor<T, memory>(l, [&](const std::string& n, view<T, memory>& v, const shape&) { out.push_back({n, v}); });
    return out;
  }

  // Zeroes m, v and the step counter (a fresh start with the same groups).
  void reset() { arena_.zero(); }

  const config& cfg() const { return cfg_; }
  index_t size() const { return static_cast<index_t>(slots_.size()); }
  const std::string& name(index_t i) const { return slots_.at(i).name; }
  const param_group& group(index_t i) const { return slots_.at(i).group; }
  entry_type entry(index_t i) const { return {slots_.at(i).name, slots_.at(i).param, slots_.at(i).grad}; }
  std::size_t state_bytes() const { return arena_.bytes(); }
  // m, v and the step counter as one flat view (what a data-parallel start broadcasts).
  view<T, memory> state_arena() { return arena_.flat(); }

 private:
  struct slot {
    std::string name;
    view<T, memory> param, grad, m, v;
    param_group group;
    index_t lo = 0, hi = 0;  // the elements this optimizer owns (all of them unless sharded)
  };

  // Sizes the state arena for the owned elements and lists the update's work: every owned
  // range cut into segments of at most `piece` values, so that the backend spreads small
  // tensors (biases, norms, filters) over its threads as well as large ones.
  void bind_state() {
    layout l{this};
    arena_.bind(l);
    segments_.clear();
    segment_slot_.clear();
    constexpr index_t piece = index_t(1) << 14;
    for (std::size_t k = 0; k < slots_.size(); ++k) {
      slot& s = slots_[k];
      if (s.group.frozen) continue;
      for (index_t b = s.lo; b < s.hi; b += piece) {
        const index_t e = std::min(s.hi, b + piece);
        // m and v hold the owned elements [lo, hi) from their start
        segments_.push_back({s.param.data + b, s.grad.data + b, s.m.data + (b - s.lo), s.v.data + (b - s.lo), e - b});
        segment_slot_.push_back(k);
      }
    }
  }

  // Copies the owned state between a sharded optimizer and an unsharded one over the same tensors.
  static void move_state(adamw& part, adamw& full, bool to_full) {
    HYENA_CHECK(!full.sharded_ && part.slots_.size() == full.slots_.size(),
                "adamw: state copies go between an optimizer and an unsharded one over the same tensors");
    for (std::size_t k = 0; k < part.slots_.size(); ++k) {
      slot &a = part.slots_[k], &f = full.slots_[k];
      HYENA_CHECK(a.name == f.name && a.group.frozen == f.group.frozen, "adamw: state copy between different tensors at ",
                  a.name);
      if (a.group.frozen) continue;
      const index_t n = a.hi - a.lo;
      if (to_full) {
        memory::copy(f.m.data + a.lo, a.m.data, sizeof(T) * std::size_t(n));
        memory::copy(f.v.data + a.lo, a.v.data, sizeof(T) * std::size_t(n));
      } else {
        memory::copy(a.m.data, f.m.data + a.lo, sizeof(T) * std::size_t(n));
        memory::copy(a.v.data, f.v.data + a.lo, sizeof(T) * std::size_t(n));
      }
    }
    if (to_full) full.set_step_count(part.step_count());
    else part.set_step_count(full.step_count());
  }
  // Describes the state arena in the usual visit form.
  struct layout {
    adamw* self;
    template <class W>
    void visit(W& w) {
      w("step", self->step_view_, shape{1});
      auto wm = w.child("m"), wv = w.child("v");
      // Unsharded, the state has its parameter's shape; sharded, the owned elements, flat.
      auto state_shape = [&](const slot& s) { return self->sharded_ ? shape{s.hi - s.lo} : s.param.shape; };
      for (auto& s : self->slots_)
        if (!s.group.frozen) wm(s.name, s.m, state_shape(s));
      for (auto& s : self->slots_)
        if (!s.group.frozen) wv(s.name, s.v, state_shape(s));
    }
  };

  config cfg_;
  std::vector<slot> slots_;
  std::vector<backend::adamw_segment<T>> segments_;  // the update's work (bind_state)
  std::vector<std::size_t> segment_slot_;            // the slot each segment belongs to
  bool sharded_ = false;
  arena<T, memory> arena_;
  view<T, memory> step_view_;  // (1): the update count, stored as T so it checkpoints with m and v
};

}  // namespace hyena::train
