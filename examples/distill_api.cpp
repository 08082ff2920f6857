// distill_api: distilling a teacher into a Hyena student with the library API directly
// (the same algorithm `hyena distill` runs). Usage: example_distill_api [TEXT_FILE]
#include <hyena/hyena.hpp>
#include <hyena/io/token_file.hpp>
#include <hyena/train/distill.hpp>

#include <cstdio>

using namespace hyena;
using Teacher = models::gpt_neox<backend::cpu>;
using Student = models::hyena_student<Teacher>;

int main(int argc, char** argv) {
  std::string text;
  if (argc > 1) text = io::read_text_file(argv[1]);
  else
    for (int i = 0; i < 2000; ++i) text += i % 3 ? "a cat sat on the mat. " : "the dog ran to the park. ";
  std::vector<std::int32_t> ids(text.begin(), text.end());
  std::span<const std::int32_t> train_tokens(ids.data(), ids.size() * 9 / 10), valid(ids.data() + ids.size() * 9 / 10, ids.size() / 10);

  auto cfg = models::gpt_neox_config(256, 64, 2, 4, 256, 64);
  backend::host_context ctx;
  rng r(0);

  // A teacher, trained briefly from scratch.
  Teacher teacher(cfg);
  teacher.init(r);
  train::trainer_options to;
  to.batch = 8, to.seq = 64, to.steps = 80, to.lr = 3e-3, to.label = "teacher";
  train::trainer<Teacher>(teacher, to).run(ctx, train_tokens, valid);

  // Stage 0: the student shares everything but its mixers with the teacher; the distiller
  // starts each mixer from its layer's attention.
  auto student = models::make_student<Student>(teacher, r);
  // Stages 1 and 2 (the defaults are the measured recipe; the budget is ours to pick).
  train::distill_options d;
  d.train.batch = 8, d.train.seq = 64, d.train.lr = 2e-3, d.train.progress = false;
  train::set_token_budget(d, 40 * 8 * 64, cfg.layers, train::recommended_stage1_fraction);
  train::distiller<Teacher, Student> distiller(teacher, student, d);
  std::printf("%s", distiller.describe().c_str());
  auto res = distiller.run(ctx, train_tokens, valid);
  for (auto& f : res.fit)
    std::printf("layer %lld after stage 1: operator error %.3f, mixer-output error %.3f\n", (long long)f.layer,
                f.operator_error, f.output_error);
  train::eval_options e{.batch = 8, .seq = 64};
  std::printf("validation loss: teacher %.3f, distilled student %.3f\n", train::evaluate(teacher, ctx, valid, e).loss,
              train::evaluate(student, ctx, valid, e).loss);
}
