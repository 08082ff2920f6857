// The op suite (support/op_suite.hpp) on the host: every op of the backend contract on `cpu`
// (SIMD, threaded) against cpu_ref within the suite's tolerances, and on `offhost` (cpu_ref's own
// ops over a memory that is not host memory: support/offhost.hpp) bit for bit, which checks the
// suite's own upload, poison and download path. cuda/test_cuda_ops.cu runs the same suite on cuda.
#include <doctest/doctest.h>

#include <hyena/backend/backend.hpp>
#include <hyena/backend/cpu/cpu.hpp>

#include "../support/offhost.hpp"
#include "../support/op_suite.hpp"

namespace op_suite = hyena::testing::op_suite;
using hyena::backend::cpu;
using hyena::testing::offhost;

// cpu evaluates in float much of what cpu_ref (and cuda) evaluate in double (SIMD maps, exp and sin,
// partial sums in T flushed into double), and contracts into FMAs: its float results are within a
// few ulps of the largest value rather than of each element. Hence its slack over the tables'
// tolerances (which are cuda's): 100 for float (the KL gradients need 28, sin 7), 10 for double
// (axpby's and the KL gradients' FMAs need 2).
TEST_CASE_TEMPLATE("op suite: cpu against cpu_ref", T, float, double) {
  cpu::context ctx;  // OMP_NUM_THREADS threads
  op_suite::run<cpu, T>(ctx, {.slack = {100, 10}});
}

// The same with three threads whatever OMP_NUM_THREADS says (ctest runs each program on one):
// the ops that split rows, columns or depths among threads, then add per-thread partial sums.
TEST_CASE_TEMPLATE("op suite: cpu on three threads against cpu_ref", T, float, double) {
  cpu::context ctx(3);
  op_suite::run<cpu, T>(ctx, {.slack = {100, 10}});
}

TEST_CASE_TEMPLATE("op suite: offhost (cpu_ref over non-host memory) equals cpu_ref bit for bit", T, float, double) {
  offhost::context ctx(1);
  const long before = hyena::testing::offhost_memory::transfers;
  op_suite::run<offhost, T>(ctx, {.exact = true});
  CHECK(hyena::testing::offhost_memory::transfers > before);  // the suite went through the memory's transfers
}
