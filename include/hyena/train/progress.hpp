// train/progress.hpp: a one-line progress bar on stderr (step, loss, tokens/s, ETA).
// On a terminal it redraws in place; otherwise it prints a line every ~5% of the work.
#pragma once
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "../config.hpp"

namespace hyena::train {

class progress_bar {
 public:
  progress_bar(std::string label, index_t total_steps, index_t tokens_per_step, bool enabled = true)
      : label_(std::move(label)), total_(total_steps), tokens_per_step_(tokens_per_step), enabled_(enabled),
        tty_(isatty(fileno(stderr))), start_(clock::now()) {}

  // Called after step `step` (1-based count of finished steps) with its loss.
  void update(index_t step, double loss, const std::string& extra = {}) {
    if (!enabled_) return;
    const double elapsed = seconds();
    const bool last = step >= total_;
    const index_t every = std::max<index_t>(1, total_ / 20);
    if (!tty_ && !last && step % every != 0) return;
    if (tty_ && !last && elapsed - last_draw_ < 0.1) return;
    last_draw_ = elapsed;
    const double tok_s = elapsed > 0 ? double(step - first_step_) * tokens_per_step_ / elapsed : 0.0;
    const double eta = step > first_step_ ? elapsed / double(step - first_step_) * double(total_ - step) : 0.0;
    const int width = 24;
    const int filled = total_ > 0 ? int(width * double(step) / double(total_)) : width;
    std::string bar(filled, '#');
    bar.resize(width, '.');
    std::fprintf(stderr, "%s%s [%s] %lld/%lld loss %.4f  %.0f tok/s  ETA %s%s%s", tty_ ? "\r" : "", label_.c_str(),
                 bar.c_str(), (long long)step, (long long)total_, loss, tok_s, format_time(eta).c_str(),
                 extra.empty() ? "" : "  ", extra.c_str());
    if (!tty_ || last) std::fputc('\n', stderr);
    std::fflush(stderr);
  }
  // Steps finished before this bar started (a resumed run): excluded from the rate.
  void set_first_step(index_t s) { first_step_ = s; }
  double seconds() const { return std::chrono::duration<double>(clock::now() - start_).count(); }

  static std::string format_time(double s) {
    char buf[32];
    int t = int(s + 0.5);
    if (t >= 3600) std::snprintf(buf, sizeof buf, "%dh%02dm", t / 3600, t / 60 % 60);
    else std::snprintf(buf, sizeof buf, "%dm%02ds", t / 60, t % 60);
    return buf;
  }

 private:
  using clock = std::chrono::steady_clock;
  std::string label_;
  index_t total_, tokens_per_step_;
  bool enabled_, tty_;
  clock::time_point start_;
  double last_draw_ = -1;
  index_t first_step_ = 0;
};

}  // namespace hyena::train
