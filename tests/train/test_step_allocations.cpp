// A training step allocates nothing once the first one has run: activations live in the
// arena, op scratch in the context, optimizer state in the optimizer. Counted by replacing
// the global operator new (std::vector, std::function, std::map, ... go through it; the
// 64-byte aligned buffers of the gemm and FFT scratch use aligned_alloc and are not seen,
// but they only ever grow), for the teacher and the Hyena student, on one and two threads.
#include <doctest/doctest.h>

// GCC cannot see that the replaced operator new below pairs with the free in operator delete.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <atomic>
#include <cstdlib>
#include <new>

#include <hyena/hyena.hpp>
#include <hyena/nn/loss.hpp>
#include <hyena/train/adamw.hpp>

namespace {
std::atomic<long> allocations{0};
}

void* operator new(std::size_t n) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void* operator new[](std::size_t n) { return operator new(n); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

using namespace hyena;

namespace {

// Allocations made by the third of three identical training steps.
template <class Model>
long allocations_in_a_step(int threads) {
  typename Model::config_type cfg(models::gpt_neox_config(256, 64, 2, 4, 128, 64));
  if constexpr (requires { cfg.mixer.filter_order; }) cfg.mixer.filter_order = 16;
  Model m(cfg);
  rng r(0);
  m.init(r);
  train::adamw<float> opt(train::param_entries<float>(m.parameters(), m.gradients(), m.config()));
  backend::host_context ctx(threads);
  tensor<std::int32_t> in({4, 64}), tg({4, 64});
  for (index_t i = 0; i < in.numel(); ++i) {
    in.data()[i] = std::int32_t(r.below(256));
    tg.data()[i] = std::int32_t(r.below(256));
  }
  long before = 0;
  for (int step = 0; step < 3; ++step) {
    if (step == 2) before = allocations.load();
    auto logits = m.forward(ctx, in.v());
    nn::cross_entropy_loss<backend::cpu>(ctx, logits, tg.v(), m.dlogits());
    m.zero_grad();
    m.backward(ctx);
    opt.step(1e-3);
  }
  return allocations.load() - before;
}

}  // namespace

TEST_CASE("a training step allocates nothing after the first (teacher and Hyena student, 1 and 2 threads)") {
  using teacher = models::gpt_neox<backend::cpu>;
  using student = models::hyena_student<teacher>;
  for (int threads : {1, 2}) {
    INFO("threads ", threads);
    CHECK(allocations_in_a_step<teacher>(threads) == 0);
    CHECK(allocations_in_a_step<student>(threads) == 0);
  }
}
