// bench_util.hpp: timing helpers shared by the benchmark programs.
#pragma once
#include <algorithm>
#include <chrono>
#include <functional>
#include <vector>

namespace hyena::bench {

// Median wall time in seconds of `reps` runs of fn after one warm-up run.
inline double median_seconds(int reps, const std::function<void()>& fn) {
  fn();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    auto a = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Repetitions that keep one measurement near `budget` seconds, given a first timing.
inline int reps_for(double seconds_per_run, double budget = 2.0, int lo = 1, int hi = 20) {
  if (seconds_per_run <= 0) return hi;
  return std::clamp(static_cast<int>(budget / seconds_per_run), lo, hi);
}

}  // namespace hyena::bench
