// train/schedule.hpp: learning rate as a function of the step.
#pragma once
#include <cmath>
#include <numbers>

#include "../config.hpp"

namespace hyena::train {

// Linear warmup from 0 to max_lr over `warmup` steps, then half a cosine from max_lr down to
// min_lr at step `total`, then min_lr for ever:
//   step < warmup:           max_lr * step / warmup        (so step 0 has lr 0)
//   warmup <= step < total:  min_lr + (max_lr - min_lr) * (1 + cos(pi * (step - warmup) / (total - warmup))) / 2
//   step >= total:           min_lr
struct cosine_schedule {
  double max_lr = 3e-4, min_lr = 3e-5;
  index_t warmup = 0, total = 1;

  void validate() const {
    HYENA_CHECK(std::isfinite(max_lr) && max_lr >= 0, "cosine_schedule: max_lr must be finite and >= 0, got ", max_lr);
    HYENA_CHECK(std::isfinite(min_lr) && min_lr >= 0, "cosine_schedule: min_lr must be finite and >= 0, got ", min_lr);
    HYENA_CHECK(warmup >= 0, "cosine_schedule: warmup must be >= 0, got ", warmup);
    HYENA_CHECK(total >= warmup, "cosine_schedule: total (", total, ") must be >= warmup (", warmup, ")");
  }

  double operator()(index_t step) const {
    validate();
    HYENA_CHECK(step >= 0, "cosine_schedule: negative step ", step);
    if (step < warmup) return max_lr * double(step) / double(warmup);
    if (step >= total) return min_lr;
    const double progress = double(step - warmup) / double(total - warmup);
    return min_lr + (max_lr - min_lr) * 0.5 * (1 + std::cos(std::numbers::pi * progress));
  }
};

}  // namespace hyena::train
