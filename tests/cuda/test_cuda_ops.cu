// test_cuda_ops.cu: the cuda backend's ops. Every op of the contract against cpu_ref is the op
// suite (support/op_suite.hpp: the cases, tolerances and the upload / poison / read-back path are
// shared with the host runners in backend/test_op_suite.cpp), run here on backend::cuda with the
// tables' tolerances as they are; below it, only what is particular to CUDA: device_memory, the
// context (stream, TF32 flag, workspace) and the fused attention kernel's head_dim limit.
// CI compiles this with nvcc but has no GPU: the program then prints "no CUDA device: skipped".
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "cuda_test_util.cuh"
#include "hyena/tensor/tensor.hpp"

using namespace cuda_test;
namespace op_suite = hyena::testing::op_suite;

TEST_CASE_TEMPLATE("op suite: cuda against cpu_ref", T, float, double) { op_suite::run<gpu, T>(dctx()); }

TEST_CASE("device_memory and cuda_context basics") {
  using buffer = op_suite::buffer<hyena::device_memory, float>;
  auto h = op_suite::random_vec<float>(1000, 1);
  buffer a(h), b(std::vector<float>(1000, 3.0f));
  hyena::device_memory::copy(b.get(), a.get(), sizeof(float) * 1000);
  CHECK(b.to_host() == h);
  hyena::device_memory::zero(b.get(), sizeof(float) * 1000);
  CHECK(b.to_host() == std::vector<float>(1000, 0.0f));
  auto& c = dctx();
  CHECK(!c.allow_tf32());
  c.set_allow_tf32(true);
  CHECK(c.allow_tf32());
  c.set_allow_tf32(false);
  CHECK(c.workspace(1 << 20) != nullptr);
  CHECK(c.workspace_bytes() >= (1u << 20));
  CHECK_THROWS_AS(gpu::context(1 << 20), hyena::error);  // no such device
  std::string name = gpu::name;
  CHECK(name == "cuda");
  // tensor / view over device memory: the owning type works unchanged; ops run on the context's
  // stream, so read back after synchronize().
  hyena::tensor<float, hyena::device_memory> t(hyena::shape{4, 250});
  t.zero();
  hyena::view_of<gpu, float> v = t.v();
  gpu::axpy<float>(c, v.numel(), 2.0f, a.get(), v.data);
  std::vector<float> back(1000);
  c.synchronize();
  hyena::device_memory::to_host(back.data(), t.data(), sizeof(float) * 1000);
  for (auto& x : h) x *= 2.0f;
  CHECK(back == h);
}

TEST_CASE_TEMPLATE("fused causal attention: head_dim beyond the kernel's limit is refused by name", T, float,
                   double) {
  op_suite::buffer<hyena::device_memory, T> any(std::vector<T>(64, T(1)));
  CHECK_THROWS_WITH_AS(
      gpu::causal_attention_forward<T>(dctx(), 1, 1, 1, 1, 300, T(1), any.get(), 900, any.get(), 300, any.get()),
      doctest::Contains("head_dim 300"), hyena::error);
}
