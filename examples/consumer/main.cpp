// Composes a teacher and its Hyena student from an installed hyena and runs both.
#include <hyena/hyena.hpp>

#include <cstdio>

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
  std::printf("consumer ok: teacher logit %.6f, student logit %.6f, student params %lld\n", t.data[0], s.data[0],
              static_cast<long long>(student.parameter_count()));
  return 0;
}
