// block_golden.hpp: one transformer block against a PyTorch fixture
// (tests/reference/*_block_golden.py): output, input gradient and every weight gradient.
#pragma once
#include <hyena/models/block.hpp>

#include "fixture.hpp"

namespace hyena::testing {

template <class Block>
void check_block_against_fixture(const fixture& fx, const models::model_config& c, double tol = 1e-5) {
  typename Block::params p, g;
  typename Block::cache k;
  arena<float> pa, ga, ka;
  pa.bind(p, c);
  ga.bind(g, c);
  const index_t batch = fx.meta["batch"], seq = fx.meta["seq"];
  ka.bind(k, c, batch, seq);
  for_each_tensor<float>(p, [&](const std::string& n, view<float>& v, const shape&) { fx.copy_to(n, v); }, c);
  const shape s{batch, seq, c.hidden};
  tensor<float> x(s), y(s), dy(s), dx(s);
  fx.copy_to("input", x.v());
  fx.copy_to("r", dy.v());
  backend::host_context ctx;
  Block::forward(ctx, c, p, k, x.v(), y.v());
  CHECK(relative_error(y.data(), fx.values<double>("output")) <= tol);
  Block::backward(ctx, c, p, k, dy.v(), dx.v(), g);
  CHECK(relative_error(dx.data(), fx.values<double>("grad.input")) <= tol);
  for_each_tensor<float>(g, [&](const std::string& n, view<float>& v, const shape&) {
    INFO("grad.", n);
    CHECK(relative_error(v.data, fx.values<double>("grad." + n)) <= tol);
  }, c);
}

}  // namespace hyena::testing
