// hyena/testing/layer_check.hpp: checks a layer or mixer against the contract of nn/layer.hpp,
// with no test framework: every check returns a check_report.
//
//   auto report = hyena::testing::layer_check<my_mixer>(my_config{.hidden = 8}, /*batch=*/2, /*seq=*/5);
//   report.print();                      // "layer check: ok", or one line per failure
//   return report.ok() ? 0 : 1;
//
// What is checked (the CPU backends only; the layer must compile for cpu_ref/double and cpu/float):
//   gradient_check  backward's input and parameter gradients against central differences of
//                   sum(y * dy), in double on cpu_ref (up to max_checks entries per tensor)
//   parity_check    the fast `cpu` backend against cpu_ref in float: output, input gradient and every
//                   parameter gradient, all outputs NaN-filled first so an unwritten element fails
//   contract_check  on cpu_ref in double:
//                   - backward with an empty dx neither writes through it nor crashes (run in a
//                     forked child process on POSIX systems)
//                   - parameter gradients accumulate: backward twice gives twice the gradients (to 1e-9)
//                   - dx is assigned: a second backward over a filled dx gives the same dx
//                   - nothing is written outside the cache tensors, the output or dx (sentinel guard
//                     elements around each keep their value), and x and dy are left unchanged
//                   - a mixer (nn::mixer) maps (batch, seq, d) to the same shape
//   layer_check     all three
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <ostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

// ThreadSanitizer does not support a fork after threads have started (OpenMP's pool): under it
// the empty-dx call is skipped (the other sanitizer runs make it).
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define HYENA_LAYER_CHECK_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define HYENA_LAYER_CHECK_TSAN 1
#endif

#if (defined(__unix__) || defined(__APPLE__)) && !defined(HYENA_LAYER_CHECK_TSAN)
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>
#define HYENA_LAYER_CHECK_FORK 1
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#include "../backend/backend.hpp"
#include "../backend/cpu/cpu.hpp"
#include "../nn/concepts.hpp"
#include "../tensor/arena.hpp"
#include "../tensor/random.hpp"

namespace hyena::testing {

// The outcome of one or more checks: ok() when nothing failed, else one line per failure.
struct check_report {
  std::vector<std::string> failures;

  bool ok() const { return failures.empty(); }
  void fail(std::string what) { failures.push_back(std::move(what)); }
  check_report& operator+=(const check_report& o) {
    failures.insert(failures.end(), o.failures.begin(), o.failures.end());
    return *this;
  }
  std::string str() const {
    if (ok()) return "layer check: ok";
    std::string s = "layer check: " + std::to_string(failures.size()) + " failure(s)";
    for (const auto& f : failures) s += "\n  " + f;
    return s;
  }
  void print(std::FILE* out = stderr) const { std::fprintf(out, "%s\n", str().c_str()); }
  friend std::ostream& operator<<(std::ostream& os, const check_report& r) { return os << r.str(); }
};

inline bool close(double a, double b, double rtol, double atol) {
  return std::isfinite(a) && std::isfinite(b) && std::abs(a - b) <= atol + rtol * std::max(std::abs(a), std::abs(b));
}

// Host storage for named tensors with `guard` sentinel elements before, between and after them,
// so a write just outside any tensor is seen by damaged().
template <class T>
class guarded_storage {
 public:
  static constexpr index_t guard = 64;  // a multiple of every alignment, so each part stays aligned
  static constexpr T sentinel = T(-1.5e30);

  // Allocates the parts, zeroed, each followed by a guard; returns their first elements.
  std::vector<T*> layout(const std::vector<std::pair<std::string, shape>>& parts) {
    parts_.clear();
    index_t total = guard;
    for (const auto& [name, s] : parts) {
      parts_.push_back({name, total, s.numel()});
      total += round_up(s.numel()) + guard;
    }
    storage_ = tensor<T>(shape{total});
    fill_value(storage_.v(), sentinel);
    std::vector<T*> starts;
    for (const auto& p : parts_) {
      std::fill(storage_.data() + p.offset, storage_.data() + p.offset + p.size, T(0));
      starts.push_back(storage_.data() + p.offset);
    }
    return starts;
  }

  // Where a guard lost its sentinel: "after <part>" (or "before <first part>").
  std::vector<std::string> damaged() const {
    std::vector<std::string> out;
    const T* d = storage_.data();
    index_t gap = 0;  // start of the guard before parts_[i]
    for (std::size_t i = 0; i <= parts_.size(); ++i) {
      index_t end = i < parts_.size() ? parts_[i].offset : storage_.numel();
      bool intact = std::all_of(d + gap, d + end, [](T v) { return v == sentinel; });
      if (!intact) out.push_back(i == 0 ? "before " + parts_[0].name : "after " + parts_[i - 1].name);
      if (i < parts_.size()) gap = parts_[i].offset + parts_[i].size;
    }
    return out;
  }

 private:
  struct part {
    std::string name;
    index_t offset, size;
  };
  static index_t round_up(index_t n) { return (n + guard - 1) / guard * guard; }
  tensor<T> storage_;
  std::vector<part> parts_;
};

// One guarded host tensor (a layer's x, y, dy or dx).
template <class T>
class guarded_tensor {
 public:
  guarded_tensor() = default;
  explicit guarded_tensor(const shape& s, std::string name = "tensor") : shape_(s) {
    data_ = store_.layout({{std::move(name), s}})[0];
  }
  T* data() { return data_; }
  const T* data() const { return data_; }
  index_t numel() const { return shape_.numel(); }
  const hyena::shape& shape() const { return shape_; }
  view<T> v() { return {data_, shape_}; }
  view<const T> v() const { return {data_, shape_}; }
  bool guards_intact() const { return store_.damaged().empty(); }

 private:
  guarded_storage<T> store_;
  T* data_ = nullptr;
  hyena::shape shape_{};
};

// A cache (or any visit()-described structure) laid out with guards around each of its tensors.
template <class T>
class guarded_arena {
 public:
  template <class S, class... Args>
  void bind(S& s, const Args&... args) {
    std::vector<std::pair<std::string, shape>> parts;
    for_each_tensor<T>(s, [&](const std::string& n, view<T>&, const shape& sh) { parts.push_back({n, sh}); }, args...);
    auto starts = store_.layout(parts);
    std::size_t i = 0;
    for_each_tensor<T>(s, [&](const std::string&, view<T>& v, const shape& sh) { v = view<T>(starts[i++], sh); }, args...);
  }
  std::vector<std::string> damaged() const { return store_.damaged(); }

 private:
  guarded_storage<T> store_;
};

// Everything one layer needs to run: params, grads, cache, input, output, gradients. The cache,
// x, y, dy and dx are guarded; params and grads live in ordinary arenas (flat() copies them).
template <template <class, class> class L, class B, class T>
struct layer_rig {
  using layer = L<B, T>;
  static_assert(std::is_same_v<typename B::memory, host_memory>, "hyena: the layer checker runs on host backends");
  typename layer::config cfg;
  index_t batch, seq;
  typename B::context ctx{};
  typename layer::params p, g;
  typename layer::cache k;
  arena<T> p_arena, g_arena;
  guarded_arena<T> k_arena;
  guarded_tensor<T> x, y, dy, dx;

  layer_rig(const typename layer::config& c, index_t b, index_t s) : cfg(c), batch(b), seq(s) {
    p_arena.bind(p, cfg);
    g_arena.bind(g, cfg);
    k_arena.bind(k, cfg, batch, seq);
    x = guarded_tensor<T>(layer::input_shape(cfg, batch, seq), "x");
    dx = guarded_tensor<T>(layer::input_shape(cfg, batch, seq), "dx");
    y = guarded_tensor<T>(layer::output_shape(cfg, batch, seq), "y");
    dy = guarded_tensor<T>(layer::output_shape(cfg, batch, seq), "dy");
  }
  void forward() { layer::forward(ctx, cfg, p, k, x.v(), y.v()); }
  void backward() { layer::backward(ctx, cfg, p, k, dy.v(), dx.v(), g); }
  void backward_without_dx() { layer::backward(ctx, cfg, p, k, dy.v(), view<T>{}, g); }

  // Where forward/backward wrote outside the cache, y or dx (empty when nowhere).
  std::vector<std::string> guard_damage() const {
    std::vector<std::string> out;
    for (const auto& d : k_arena.damaged()) out.push_back("the cache (" + d + ")");
    if (!y.guards_intact()) out.push_back("the output y");
    if (!dx.guards_intact()) out.push_back("the input gradient dx");
    return out;
  }
};

// Initialises the layer, then nudges every parameter so no value is exactly zero, and fills x
// and dy with normal noise.
template <class Rig>
void randomize(Rig& rig, std::uint64_t seed) {
  using T = typename Rig::layer::tview::value_type;
  rng r(seed);
  Rig::layer::init(rig.cfg, rig.p, r);
  auto flat = rig.p_arena.flat();
  for (index_t i = 0; i < flat.numel(); ++i) flat.data[i] += static_cast<T>(r.normal(0, 0.05));
  fill_normal(rig.x.v(), r);
  fill_normal(rig.dy.v(), r);
}

namespace detail {
template <class T>
std::vector<std::pair<std::string, view<T>>> tensors_of(auto& s, const auto& cfg) {
  std::vector<std::pair<std::string, view<T>>> out;
  for_each_tensor<T>(s, [&](const std::string& n, view<T>& v, const shape&) { out.push_back({n, v}); }, cfg);
  return out;
}
inline std::string number(double v) {
  std::ostringstream os;
  os.precision(9);
  os << v;
  return os.str();
}
}  // namespace detail

struct gradient_options {
  std::uint64_t seed = 1;
  double rtol = 1e-5, atol = 1e-8;
  index_t max_checks = 48;  // probed entries per tensor (all of them when the tensor is smaller)
  double eps = 1e-6;        // central-difference step
};

// Backward against central differences of loss = sum(y * dy), in double on cpu_ref, for the input
// and every parameter tensor.
template <template <class, class> class L>
check_report gradient_check(const typename L<backend::cpu_ref, double>::config& cfg, index_t batch, index_t seq,
                            const gradient_options& o = {}) {
  static_assert(nn::check_layer<L<backend::cpu_ref, double>>());
  layer_rig<L, backend::cpu_ref, double> rig(cfg, batch, seq);
  randomize(rig, o.seed);
  rig.forward();
  rig.backward();

  auto loss = [&] {
    rig.forward();
    double s = 0;
    for (index_t i = 0; i < rig.y.numel(); ++i) s += rig.y.data()[i] * rig.dy.data()[i];
    return s;
  };
  check_report report;
  rng pick(o.seed + 99);
  auto probe = [&](const std::string& name, double* value, const double* analytic, index_t n) {
    const index_t checks = std::min(n, o.max_checks);
    index_t bad = 0;
    std::string first;
    for (index_t c = 0; c < checks; ++c) {
      const index_t i = n <= o.max_checks ? c : pick.below(n);
      const double saved = value[i];
      value[i] = saved + o.eps;
      const double up = loss();
      value[i] = saved - o.eps;
      const double down = loss();
      value[i] = saved;
      const double numeric = (up - down) / (2 * o.eps);
      if (!close(analytic[i], numeric, o.rtol, o.atol) && bad++ == 0)
        first = name + "[" + std::to_string(i) + "]: analytic " + detail::number(analytic[i]) + ", numeric " +
                detail::number(numeric);
    }
    if (bad)
      report.fail("gradient of " + name + ": " + std::to_string(bad) + " of " + std::to_string(checks) +
                  " probed entries differ from central differences; first " + first);
  };
  // The probes rerun forward only, so the analytic gradients stay where backward put them.
  std::vector<double> dx(rig.dx.data(), rig.dx.data() + rig.dx.numel());
  probe("input", rig.x.data(), dx.data(), rig.x.numel());
  auto grads = detail::tensors_of<double>(rig.g, cfg);
  std::size_t gi = 0;
  for (auto& [name, v] : detail::tensors_of<double>(rig.p, cfg)) probe(name, v.data, grads[gi++].second.data, v.numel());
  return report;
}

struct parity_options {
  std::uint64_t seed = 2;
  double rtol = 1e-4, atol = 1e-5;
};

// The `cpu` backend against cpu_ref on the same random float inputs: output, input gradient and
// every parameter gradient. Outputs start as NaN, so an element either backend skips fails.
template <template <class, class> class L>
check_report parity_check(const typename L<backend::cpu, float>::config& cfg, index_t batch, index_t seq,
                          const parity_options& o = {}) {
  static_assert(nn::check_layer<L<backend::cpu, float>>());
  layer_rig<L, backend::cpu_ref, float> ref(cfg, batch, seq);
  layer_rig<L, backend::cpu, float> fast(cfg, batch, seq);
  randomize(ref, o.seed);
  std::copy_n(ref.p_arena.flat().data, ref.p_arena.size(), fast.p_arena.flat().data);
  std::copy_n(ref.x.data(), ref.x.numel(), fast.x.data());
  std::copy_n(ref.dy.data(), ref.dy.numel(), fast.dy.data());
  const float nan = std::numeric_limits<float>::quiet_NaN();
  fill_value(fast.y.v(), nan);
  fill_value(fast.dx.v(), nan);
  fill_value(ref.y.v(), nan);
  fill_value(ref.dx.v(), nan);
  ref.forward();
  fast.forward();
  ref.backward();
  fast.backward();

  check_report report;
  auto compare = [&](const std::string& name, const float* a, const float* b, index_t n) {
    index_t bad = 0, first = -1;
    for (index_t i = 0; i < n; ++i)
      if (!close(a[i], b[i], o.rtol, o.atol)) {
        if (first < 0) first = i;
        ++bad;
      }
    if (bad)
      report.fail("cpu vs cpu_ref, " + name + ": " + std::to_string(bad) + " of " + std::to_string(n) +
                  " differ; first at " + std::to_string(first) + ": cpu " + detail::number(a[first]) + ", cpu_ref " +
                  detail::number(b[first]));
  };
  compare("output", fast.y.data(), ref.y.data(), ref.y.numel());
  compare("input gradient", fast.dx.data(), ref.dx.data(), ref.dx.numel());
  auto gref = detail::tensors_of<float>(ref.g, cfg);
  std::size_t gi = 0;
  for (auto& [name, v] : detail::tensors_of<float>(fast.g, cfg))
    compare("gradient of " + name, v.data, gref[gi++].second.data, v.numel());
  return report;
}

namespace detail {

// Runs fn() in a child process; "" when it returned normally, else what went wrong. The child
// gets one OpenMP thread (the parent's thread pool does not survive fork), default signal
// handlers (a test framework's crash handler must not report the child's crash as its own) and
// no output.
template <class Fn>
std::string run_isolated(Fn&& fn, int timeout_s = 120) {
#ifdef HYENA_LAYER_CHECK_FORK
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return "could not fork";
  if (pid == 0) {
#ifdef _OPENMP
    omp_set_num_threads(1);
#endif
    for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT}) signal(sig, SIG_DFL);
    rlimit no_core{0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    const int null = open("/dev/null", O_WRONLY);
    if (null >= 0) {
      dup2(null, 1);
      dup2(null, 2);
    }
    try {
      fn();
    } catch (...) {
      _exit(3);
    }
    _exit(0);
  }
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return "did not finish in " + std::to_string(timeout_s) + " s";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (WIFSIGNALED(status))
    return "died by signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")";
  if (WIFEXITED(status) && WEXITSTATUS(status) == 3) return "threw an exception";
  if (WIFEXITED(status) && WEXITSTATUS(status) != 0) return "exited with status " + std::to_string(WEXITSTATUS(status));
  return "";
#else
  (void)fn;
  (void)timeout_s;
  return "";  // no fork (or TSan): the empty-dx call is not made (it could crash the caller)
#endif
}

}  // namespace detail

// The calling conventions of nn/layer.hpp, on cpu_ref in double: an empty dx is never written
// through, parameter gradients accumulate, dx is assigned, nothing is written outside the
// cache, y and dx, x and dy stay unchanged, and a mixer keeps its input's shape.
template <template <class, class> class L>
check_report contract_check(const typename L<backend::cpu_ref, double>::config& cfg, index_t batch, index_t seq,
                            std::uint64_t seed = 3) {
  using layer = L<backend::cpu_ref, double>;
  static_assert(nn::check_layer<layer>());
  check_report report;
  if constexpr (nn::mixer<layer>) {
    const shape in = layer::input_shape(cfg, batch, seq), out = layer::output_shape(cfg, batch, seq);
    if (!(in == out) || in.rank != 3 || in[0] != batch || in[1] != seq)
      report.fail("a mixer maps (batch, seq, hidden) to the same shape: input_shape and output_shape must both be "
                  "(batch, seq, hidden)");
  }
  layer_rig<L, backend::cpu_ref, double> rig(cfg, batch, seq);
  randomize(rig, seed);
  const std::vector<double> x0(rig.x.data(), rig.x.data() + rig.x.numel());
  const std::vector<double> dy0(rig.dy.data(), rig.dy.data() + rig.dy.numel());

  // Empty dx: in a child, so a write through the null view cannot take the caller down.
  rig.forward();
  const std::string empty_dx = detail::run_isolated([&] { rig.backward_without_dx(); });
  if (!empty_dx.empty())
    report.fail("backward wrote to an empty dx (or crashed): it must test dx.empty() [the child " + empty_dx + "]");

  // Backward twice from zero gradients: twice the gradients, the same dx.
  rig.g_arena.zero();
  rig.forward();
  rig.backward();
  const std::vector<double> once(rig.g_arena.flat().data, rig.g_arena.flat().data + rig.g_arena.size());
  const std::vector<double> dx1(rig.dx.data(), rig.dx.data() + rig.dx.numel());
  fill_value(rig.dx.v(), 7.0);  // an accumulating dx would keep this
  rig.forward();
  rig.backward();
  // Adding onto a non-zero gradient rounds differently, so "twice" is up to 1e-9 of the
  // tensor's largest entry; an overwrite misses by a whole gradient.
  const double* twice = rig.g_arena.flat().data;
  auto same = [](const double* a, const double* b, double factor, index_t n) {
    double scale = 0;
    for (index_t i = 0; i < n; ++i) scale = std::max(scale, std::abs(b[i]));
    index_t bad = 0;
    for (index_t i = 0; i < n; ++i) bad += !(std::abs(a[i] - factor * b[i]) <= 1e-9 * factor * scale);
    return bad;
  };
  for (auto& [name, v] : detail::tensors_of<double>(rig.g, cfg)) {
    const index_t off = v.data - twice;
    const index_t bad = same(twice + off, once.data() + off, 2, v.numel());
    if (bad)
      report.fail("gradient of " + name + ": backward twice did not give twice the gradient (" + std::to_string(bad) +
                  " of " + std::to_string(v.numel()) + " entries): parameter gradients must accumulate (+=)");
  }
  const index_t dx_bad = same(rig.dx.data(), dx1.data(), 1, rig.dx.numel());
  if (dx_bad)
    report.fail("dx: a second backward over a filled dx gave another dx (" + std::to_string(dx_bad) + " of " +
                std::to_string(rig.dx.numel()) + " entries): the input gradient must be assigned, not accumulated");

  for (const auto& where : rig.guard_damage()) report.fail("wrote outside " + where);
  if (!std::equal(x0.begin(), x0.end(), rig.x.data()) || !rig.x.guards_intact())
    report.fail("forward or backward changed its input x");
  if (!std::equal(dy0.begin(), dy0.end(), rig.dy.data()) || !rig.dy.guards_intact())
    report.fail("backward changed its output gradient dy");
  return report;
}

// Every check above: gradients and conventions on cpu_ref in double, parity on cpu in float.
// `cfg` must convert to both (a config shared by every backend and scalar always does).
template <template <class, class> class L>
check_report layer_check(const typename L<backend::cpu_ref, double>::config& cfg, index_t batch, index_t seq) {
  check_report r = contract_check<L>(cfg, batch, seq);
  r += gradient_check<L>(cfg, batch, seq);
  r += parity_check<L>(cfg, batch, seq);
  return r;
}

}  // namespace hyena::testing
