#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include <hyena/backend/cpu_ref/loss.hpp>
#include <hyena/train/data_loader.hpp>

using namespace hyena;
using train::random_window_loader;
using train::sequential_loader;
using train::token_batch;

// The walk's padding must be what the losses skip.
static_assert(train::ignore_target == backend::ignore_target);

namespace {
// Token i has id i % 1000, so a window's content reveals where it starts.
std::vector<std::uint16_t> ramp(index_t n) {
  std::vector<std::uint16_t> v(n);
  for (index_t i = 0; i < n; ++i) v[i] = std::uint16_t(i % 1000);
  return v;
}
bool same(const token_batch& a, const token_batch& b) {
  auto n = a.inputs.numel() * sizeof(std::int32_t);
  return std::memcmp(a.inputs.data(), b.inputs.data(), n) == 0 &&
         std::memcmp(a.targets.data(), b.targets.data(), n) == 0;
}
}  // namespace

TEST_CASE("random windows: targets are inputs shifted by one, starts in range") {
  auto toks = ramp(500);
  random_window_loader l(std::span<const std::uint16_t>(toks), 4, 16, 7);
  token_batch b(4, 16);
  index_t lowest = 1 << 30, highest = -1, repeated_rows = 0;
  for (int s = 0; s < 200; ++s) {
    l.next(b);
    repeated_rows += b.inputs.v()(0, 0) == b.inputs.v()(1, 0);
    for (index_t r = 0; r < 4; ++r) {
      std::int32_t start = b.inputs.v()(r, 0);
      lowest = std::min<index_t>(lowest, start);
      highest = std::max<index_t>(highest, start);
      for (index_t t = 0; t < 16; ++t) {
        CHECK(b.inputs.v()(r, t) == start + t);
        CHECK(b.targets.v()(r, t) == start + t + 1);
      }
    }
  }
  CHECK(l.step() == 200);
  CHECK(lowest >= 0);
  CHECK(highest <= 500 - 17);  // the last window ends on the last token
  CHECK(highest > 400);        // and offsets spread over the file
  CHECK(lowest < 50);
  CHECK(repeated_rows < 10);  // rows of a batch draw their own offsets
}

TEST_CASE("random windows: same seed same batches, another seed differs, resume continues exactly") {
  auto toks = ramp(10000);
  std::span<const std::uint16_t> s(toks);
  random_window_loader a(s, 3, 8, 42), b(s, 3, 8, 42), c(s, 3, 8, 43);
  token_batch ba(3, 8), bb(3, 8), bc(3, 8);
  std::vector<token_batch> run;
  for (int i = 0; i < 6; ++i) {
    a.next(ba);
    b.next(bb);
    c.next(bc);
    CHECK(same(ba, bb));
    CHECK_FALSE(same(ba, bc));
    run.emplace_back(3, 8);
    std::memcpy(run.back().inputs.data(), ba.inputs.data(), 24 * sizeof(std::int32_t));
    std::memcpy(run.back().targets.data(), ba.targets.data(), 24 * sizeof(std::int32_t));
  }
  // A fresh loader told the saved step continues with batch 4, 5 of the uninterrupted run.
  random_window_loader resumed(s, 3, 8, 42);
  resumed.set_step(4);
  resumed.next(ba);
  CHECK(same(ba, run[4]));
  random_window_loader ctor_resumed(s, 3, 8, 42, 5);
  ctor_resumed.next(ba);
  CHECK(same(ba, run[5]));
  // Consecutive steps differ.
  CHECK_FALSE(same(run[0], run[1]));
}

TEST_CASE("random windows: from int32 and uint32 storage alike") {
  std::vector<std::int32_t> a{5, 6, 7, 8, 9};
  std::vector<std::uint32_t> b{5, 6, 7, 8, 9};
  random_window_loader la(std::span<const std::int32_t>(a), 2, 4, 1), lb(std::span<const std::uint32_t>(b), 2, 4, 1);
  token_batch x(2, 4), y(2, 4);
  la.next(x);
  lb.next(y);
  CHECK(same(x, y));
  CHECK(x.inputs.v()(0, 0) == 5);  // only one window fits
  CHECK(x.targets.v()(1, 3) == 9);
}

TEST_CASE("validation walk: every token but the first is a target exactly once, in order") {
  for (index_t n : {2, 17, 33, 64, 65, 100}) {
    for (index_t seq : {1, 4, 8}) {
      for (index_t batch : {1, 3}) {
        auto toks = ramp(n);
        sequential_loader l(std::span<const std::uint16_t>(toks), batch, seq);
        token_batch b(batch, seq);
        std::vector<int> hits(n, 0);
        index_t expect_next = 1, windows = 0, batches = 0, targets = 0;
        for (;;) {
          auto f = l.next(b);
          if (f.windows == 0) break;
          ++batches;
          windows += f.windows;
          targets += f.targets;
          for (index_t r = 0; r < batch; ++r)
            for (index_t t = 0; t < seq; ++t) {
              std::int32_t tg = b.targets.v()(r, t);
              if (tg == train::ignore_target) {
                CHECK(b.inputs.v()(r, t) == 0);
                continue;
              }
              CHECK(tg == expect_next);  // in order, no gaps, no repeats
              CHECK(b.inputs.v()(r, t) == tg - 1);
              ++hits[tg];
              ++expect_next;
            }
        }
        CHECK(expect_next == n);
        CHECK(hits[0] == 0);
        for (index_t i = 1; i < n; ++i) CHECK(hits[i] == 1);
        CHECK(windows == l.windows());
        CHECK(batches == l.batches());
        CHECK(targets == n - 1);
        CHECK(l.next(b).windows == 0);  // stays done
      }
    }
  }
}

TEST_CASE("validation walk: partial last window is right-padded; reset and resume") {
  std::vector<std::int32_t> toks{10, 11, 12, 13, 14, 15};  // 5 targets, seq 4: windows of 4 and 1
  sequential_loader l(std::span<const std::int32_t>(toks), 1, 4);
  token_batch b(1, 4);
  CHECK(l.windows() == 2);
  auto f = l.next(b);
  CHECK(f.targets == 4);
  CHECK(b.targets.v()(0, 3) == 14);
  f = l.next(b);
  CHECK(f.windows == 1);
  CHECK(f.targets == 1);
  CHECK(b.inputs.v()(0, 0) == 14);
  CHECK(b.targets.v()(0, 0) == 15);
  CHECK(b.targets.v()(0, 1) == train::ignore_target);
  l.reset();
  CHECK(l.position() == 0);
  l.set_position(1);
  l.next(b);
  CHECK(b.targets.v()(0, 0) == 15);
}

TEST_CASE("data loaders: bad input throws hyena::error") {
  auto toks = ramp(10);
  std::span<const std::uint16_t> s(toks);
  CHECK_THROWS_AS(random_window_loader(s, 2, 10, 0), hyena::error);  // needs seq + 1 tokens
  CHECK_THROWS_AS(random_window_loader(s, 0, 4, 0), hyena::error);
  CHECK_THROWS_AS(sequential_loader(s.first(1), 1, 4), hyena::error);
  random_window_loader l(s, 2, 4, 0);
  token_batch wrong(2, 5);
  CHECK_THROWS_AS(l.next(wrong), hyena::error);
  CHECK_THROWS_AS(l.set_step(-1), hyena::error);
  sequential_loader v(s, 2, 4);
  CHECK_THROWS_AS(v.next(wrong), hyena::error);
  CHECK_THROWS_AS(v.set_position(99), hyena::error);
}
