#include <doctest/doctest.h>

#include <cmath>
#include <numbers>

#include <hyena/train/schedule.hpp>

using namespace hyena;

TEST_CASE("schedule: warmup, cosine and constant tail, known values") {
  train::cosine_schedule s{.max_lr = 1e-3, .min_lr = 1e-4, .warmup = 10, .total = 110};
  CHECK(s(0) == 0.0);
  CHECK(s(1) == doctest::Approx(1e-4));
  CHECK(s(5) == doctest::Approx(5e-4));
  CHECK(s(10) == doctest::Approx(1e-3));                    // peak right after warmup
  CHECK(s(60) == doctest::Approx(5.5e-4));                  // halfway: mean of max and min
  CHECK(s(35) == doctest::Approx(1e-4 + 9e-4 * 0.5 * (1 + std::cos(std::numbers::pi / 4))));
  CHECK(s(110) == doctest::Approx(1e-4));
  CHECK(s(100000) == doctest::Approx(1e-4));
  CHECK(s(109) > s(110));
  for (index_t t = 10; t < 110; ++t) CHECK(s(t + 1) <= s(t));  // monotone decay
}

TEST_CASE("schedule: no warmup, and warmup == total") {
  train::cosine_schedule a{.max_lr = 2.0, .min_lr = 0.0, .warmup = 0, .total = 4};
  CHECK(a(0) == doctest::Approx(2.0));
  CHECK(a(2) == doctest::Approx(1.0));
  CHECK(a(4) == 0.0);
  train::cosine_schedule b{.max_lr = 2.0, .min_lr = 0.5, .warmup = 4, .total = 4};
  CHECK(b(2) == doctest::Approx(1.0));
  CHECK(b(4) == doctest::Approx(0.5));
}

TEST_CASE("schedule: bad settings throw hyena::error") {
  CHECK_THROWS_AS((train::cosine_schedule{.warmup = 10, .total = 5})(0), hyena::error);
  CHECK_THROWS_AS((train::cosine_schedule{.max_lr = -1})(0), hyena::error);
  CHECK_THROWS_AS((train::cosine_schedule{})(-1), hyena::error);
}
