// Composes a teacher and its Hyena student from an installed hyena and runs both, then checks
// a user mixer (examples/ema_mixer.hpp) with the installed layer checker, as docs/guide.md shows.
#include <hyena/hyena.hpp>
#include <hyena/testing/layer_check.hpp>

#include <cstdio>

#include "../ema_mixer.hpp"

int main() {
  using namespace hyena;
  using Teacher = models::gpt_neox<backend::cpu>;
  using Student = models::hyena_student<Teacher>;

  auto cfg = models::gpt_neox_config(/*vocab=*/64, /*hidden=*/32, /*layers=*/2, /*heads=*/4,
                                     /*intermediate=*/64, /*max_seq=*/16);
  Teacher teacher(cfg);
  rng r(0);
  teacher.init(r);
  Student student = models::make_student<Student>(teacher, r);

  tensor<std::int32_t> tokens({1, 16});
  for (index_t i = 0; i < 16; ++i) tokens.data()[i] = static_cast<std::int32_t>(i * 3 % 64);
  backend::host_context ctx;
  teacher.reserve(1, 16, models::mode::infer);
  student.reserve(1, 16, models::mode::infer);
  auto t = teacher.forward(ctx, tokens.v());
  auto s = student.forward(ctx, tokens.v());
  // A user mixer: the contract at compile time, the calling conventions and gradients at run time.
  static_assert(nn::check_mixer<example::ema_mixer<backend::cpu, float>>());
  auto report = testing::layer_check<example::ema_mixer>({.hidden = 8}, /*batch=*/2, /*seq=*/5);
  report.print(stdout);
  if (!report.ok()) return 1;
  using EmaModel = models::with_mixer<Teacher, example::ema_mixer>;
  EmaModel ema(cfg);
  ema.init(r);
  ema.reserve(1, 16, models::mode::infer);
  ema.forward(ctx, tokens.v());

  std::printf("consumer ok: teacher logit %.6f, student logit %.6f, student params %lld\n", t.data[0], s.data[0],
              static_cast<long long>(student.parameter_count()));
  return 0;
}
