// stories260k_distill: data-free distillation of Karpathy's stories260K (a real pretrained
// Llama) into a Hyena student, against the same student trained from scratch.
//
//   stories260k_distill [out_dir] [budget_scale]
//
// 1. load the teacher (llama2.c checkpoint) and its tokenizer from HYENA_DATA_DIR;
// 2. sample a training corpus and a held-out corpus from the teacher (other seed);
// 3. train the Hyena student from scratch on the training corpus (cross-entropy), and
//    distil one (make_student + stage 1 + stage 2) with the same number of tokens;
// 4. score all three on the held-out samples: perplexity and KL(teacher || model);
// 5. print greedy and sampled stories from each.
// budget_scale (default 1) multiplies the corpus and training budgets, for quick trials.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <hyena/io/llama2c.hpp>
#include <hyena/io/llama2c_tokenizer.hpp>
#include <hyena/io/token_file.hpp>
#include <hyena/models/student.hpp>
#include <hyena/train/distill.hpp>
#include <hyena/train/evaluate.hpp>
#include <hyena/train/generate.hpp>
#include <hyena/train/sample_corpus.hpp>
#include <hyena/train/trainer.hpp>

using namespace hyena;
using teacher_t = models::llama<backend::cpu>;
using student_t = models::hyena_student<teacher_t>;

namespace {

std::string data_dir() {
  if (const char* d = std::getenv("HYENA_DATA_DIR"); d && *d) return d;
  return HYENA_DEFAULT_DATA_DIR;
}

double now() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

struct scores {
  double loss = 0, ppl = 0, kl = 0;
};

// Held-out perplexity (train::evaluate) and the mean over scored positions of
// KL(teacher || model) at temperature 1, in double.
template <class Model>
scores score(Model& m, teacher_t& teacher, backend::host_context& ctx, io::token_span held, index_t batch,
             index_t seq) {
  scores s;
  auto e = train::evaluate(m, ctx, held, train::eval_options{.batch = batch, .seq = seq});
  s.loss = e.loss;
  s.ppl = e.perplexity;
  const index_t V = teacher.config().vocab;
  teacher.reserve(batch, seq, models::mode::infer);
  m.reserve(batch, seq, models::mode::infer);
  train::sequential_loader loader(held, batch, seq);
  train::token_batch b(batch, seq);
  double kl = 0;
  index_t n = 0;
  std::vector<double> pt(std::size_t(V), 0.0);
  while (loader.next(b).windows > 0) {
    auto tl = teacher.forward(ctx, b.inputs.v());
    auto ml = m.forward(ctx, b.inputs.v());
    for (index_t r = 0; r < batch * seq; ++r) {
      if (b.targets.data()[r] == train::ignore_target) continue;
      const float *a = tl.data + r * V, *c = ml.data + r * V;
      double ma = a[0], mc = c[0], za = 0, zc = 0, cross = 0;
      for (index_t v = 1; v < V; ++v) ma = std::max(ma, double(a[v])), mc = std::max(mc, double(c[v]));
      for (index_t v = 0; v < V; ++v) za += pt[std::size_t(v)] = std::exp(a[v] - ma), zc += std::exp(c[v] - mc);
      const double lza = std::log(za) + ma, lzc = std::log(zc) + mc;
      for (index_t v = 0; v < V; ++v) cross += pt[std::size_t(v)] / za * ((a[v] - lza) - (c[v] - lzc));
      kl += cross;
      ++n;
    }
  }
  s.kl = kl / double(std::max<index_t>(n, 1));
  return s;
}

template <class Model>
void stories(const char* name, Model& m, backend::host_context& ctx, const io::llama2c_tokenizer& tok) {
  const char* prompts[] = {"Once upon a time", "Tom had a red ball", "One day, the sun"};
  std::printf("\n### %s\n\n", name);
  for (int i = 0; i < 3; ++i) {
    std::vector<std::int32_t> p{io::llama2c_tokenizer::bos};
    for (auto t : tok.encode(prompts[i])) p.push_back(t);
    auto out = train::generate(m, ctx, p, 120, train::sampling{.temperature = 0}, io::llama2c_tokenizer::bos);
    if (out.back() == io::llama2c_tokenizer::bos) out.pop_back();
    std::printf("greedy, prompt \"%s\":\n> %s\n\n", prompts[i], tok.decode(out).c_str());
  }
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    auto out = train::generate(m, ctx, {io::llama2c_tokenizer::bos}, 120,
                               train::sampling{.temperature = 1.0, .seed = seed}, io::llama2c_tokenizer::bos);
    if (out.back() == io::llama2c_tokenizer::bos) out.pop_back();
    std::printf("sampled (temperature 1, seed %llu):\n> %s\n\n", (unsigned long long)seed, tok.decode(out).c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  const std::string out_dir = argc > 1 ? argv[1] : "stories260k_distill_out";
  const double scale = argc > 2 ? std::atof(argv[2]) : 1.0;
  std::filesystem::create_directories(out_dir);
  const std::string dir = data_dir() + "/stories260k";
  const double t_start = now();
  backend::host_context ctx;

  auto teacher = io::load_llama2c<backend::cpu>(dir + "/stories260K.bin");
  io::llama2c_tokenizer tok(dir + "/tok512.bin", teacher.config().vocab);
  const std::int32_t bos = io::llama2c_tokenizer::bos, eos = io::llama2c_tokenizer::eos;
  const index_t seq = 256, batch = 8;
  const index_t n_train = index_t(150000 * scale), n_held = index_t(15000 * scale);

  // Data-free corpora: documents sampled from the teacher at temperature 1.
  double t0 = now();
  train::sample_corpus_file(out_dir + "/train.tok", teacher, ctx, n_train, {.temperature = 1.0, .seed = 1}, bos, seq,
                            {.eos_id = eos, .parallel_docs = 1});
  train::sample_corpus_file(out_dir + "/held_out.tok", teacher, ctx, n_held, {.temperature = 1.0, .seed = 2}, bos,
                            seq, {.eos_id = eos, .parallel_docs = 1});
  io::token_file train_file(out_dir + "/train.tok"), held_file(out_dir + "/held_out.tok");
  const double t_sample = now() - t0;

  // Equal token budgets: scratch steps x batch x seq == stage 1 (all layers) + stage 2.
  const index_t step_tokens = batch * seq;
  const index_t total_steps = std::max<index_t>(10, index_t(240 * scale));
  const index_t stage1_steps_per_layer = std::max<index_t>(1, total_steps / 20);  // 5 layers: a quarter of the budget
  const index_t layers = teacher.config().layers;
  const index_t stage2_steps = total_steps - stage1_steps_per_layer * layers;

  t0 = now();
  student_t scratch(teacher.config());
  {
    rng r(11);
    scratch.init(r);
    train::trainer_options o;
    o.label = "scratch";
    o.batch = batch;
    o.seq = seq;
    o.steps = total_steps;
    o.warmup = total_steps / 20;
    o.lr = 3e-3;
    o.min_lr = 3e-4;
    o.seed = 5;
    o.progress = false;
    train::trainer<student_t> tr(scratch, o);
    tr.run(ctx, train_file.tokens());
  }
  const double t_scratch = now() - t0;

  t0 = now();
  rng r(11);
  auto distilled = models::make_student<student_t>(teacher, r);
  train::distill_options d;  // the library's recipe (attention init, operator + output alignment, forward KL)
  d.train.batch = batch;
  d.train.seq = seq;
  d.train.seed = 5;
  d.train.progress = false;
  d.train.lr = 2e-3;
  d.train.min_lr = 2e-4;
  d.stage1_steps_per_layer = stage1_steps_per_layer;
  d.train.steps = stage2_steps;
  d.train.warmup = stage2_steps / 20;
  train::distiller<teacher_t, student_t> dist(teacher, distilled, d);
  auto dr = dist.run(ctx, train_file.tokens());
  const double t_distill = now() - t0;

  t0 = now();
  auto st = score(teacher, teacher, ctx, held_file.tokens(), batch, seq);
  auto ss = score(scratch, teacher, ctx, held_file.tokens(), batch, seq);
  auto sd = score(distilled, teacher, ctx, held_file.tokens(), batch, seq);
  const double t_eval = now() - t0;

  std::printf("## stories260K -> Hyena student, data-free (teacher samples only)\n\n");
  std::printf("Teacher: llama2.c stories260K (dim 64, 5 layers, 8 heads / 4 kv heads, vocab 512), %lld parameters.\n",
              (long long)teacher.parameter_count());
  std::printf("Student: the same model with Hyena mixers (order 2), %lld parameters.\n",
              (long long)scratch.parameter_count());
  std::printf("Corpora sampled from the teacher (temperature 1, documents from BOS to BOS/EOS, at most %lld tokens):\n"
              "train %lld tokens (seed 1), held-out %lld tokens (seed 2); sampling took %.1f s.\n",
              (long long)seq, (long long)train_file.size(), (long long)held_file.size(), t_sample);
  std::printf("Token budget per student: %lld tokens (batch %lld x seq %lld x %lld steps).\n",
              (long long)(total_steps * step_tokens), (long long)batch, (long long)seq, (long long)total_steps);
  std::printf("- scratch: cross-entropy, AdamW lr 3e-3 cosine, %.1f s\n", t_scratch);
  std::printf("- distilled (%lld + %lld tokens, %.1f s):\n%s", (long long)dr.stage1_tokens, (long long)dr.stage2.tokens,
              t_distill, dist.describe().c_str());
  for (std::size_t i = 0; i < dr.fit.size(); ++i)
    std::printf("  layer %lld fit (normalised operator / mixer-output error): after stage 0 %.4f / %.4f, after "
                "stage 1 %.4f / %.4f\n",
                (long long)dr.fit[i].layer, dr.fit_initial[i].operator_error, dr.fit_initial[i].output_error,
                dr.fit[i].operator_error, dr.fit[i].output_error);
  std::printf("\n| model | held-out loss (nats/token) | perplexity | KL(teacher \\|\\| model) (nats/token) |\n");
  std::printf("|---|---|---|---|\n");
  std::printf("| teacher (attention, pretrained) | %.4f | %.3f | %.4f |\n", st.loss, st.ppl, st.kl);
  std::printf("| Hyena student, from scratch | %.4f | %.3f | %.4f |\n", ss.loss, ss.ppl, ss.kl);
  std::printf("| Hyena student, distilled | %.4f | %.3f | %.4f |\n", sd.loss, sd.ppl, sd.kl);
  std::printf("\n(held-out: %lld scored positions; evaluation took %.1f s)\n", (long long)(held_file.size() - 1),
              t_eval);

  t0 = now();
  stories("teacher", teacher, ctx, tok);
  stories("Hyena student, from scratch", scratch, ctx, tok);
  stories("Hyena student, distilled", distilled, ctx, tok);
  std::printf("(stories took %.1f s; whole run %.1f s)\n", now() - t0, now() - t_start);
  return 0;
}
