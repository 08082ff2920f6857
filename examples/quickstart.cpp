// quickstart: the README's example. Composes a teacher and its Hyena student as types and
// trains the student for a few steps on a byte-level toy text.
#include <hyena/hyena.hpp>
#include <hyena/nn/loss.hpp>
#include <hyena/train/trainer.hpp>

#include <cstdio>
#include <string>

using namespace hyena;
using Teacher = models::gpt_neox<backend::cpu>;   // attention mixer
using Student = models::hyena_student<Teacher>;    // the same model with a Hyena mixer

int main() {
  auto cfg = models::gpt_neox_config(/*vocab*/ 256, /*hidden*/ 64, /*layers*/ 2, /*heads*/ 4,
                                     /*intermediate*/ 256, /*max_seq*/ 64);
  Teacher teacher(cfg);
  rng r(0);
  teacher.init(r);
  Student student = models::make_student<Student>(teacher, r);  // shares embeddings, norms, MLPs

  std::string text;
  for (int i = 0; i < 400; ++i) text += "the quick brown fox jumps over the lazy dog. ";
  std::vector<std::int32_t> tokens(text.begin(), text.end());

  train::trainer_options o;
  o.batch = 4, o.seq = 64, o.steps = 50, o.lr = 3e-3;
  backend::host_context ctx;
  auto result = train::trainer<Student>(student, o).run(ctx, std::span<const std::int32_t>(tokens));
  std::printf("loss %.3f -> %.3f\n", result.history.front().loss, result.history.back().loss);
}
