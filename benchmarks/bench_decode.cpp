// bench_decode: decoding speed against context length (benchmarks/decode_compare.py runs it
// beside Hugging Face transformers and writes docs/results/decode.json).
//
//   bench_decode [--contexts 128,1024,4096,16384,65536] [--tokens 64] [--rounds 1] [--modes 16]
//                [--threads 1] [--paths teacher_kv,student_exact,student_modal] [--hf-out DIR]
//
// One GPT-NeoX teacher (Pythia's layout: parallel residual, rotary on a quarter of each head;
// width 128, 4 layers, 4 heads, MLP 512, vocab 512; random weights: speed does not depend on
// them) and its Hyena student (order 2). For each context C: a C-token prompt goes through
// prefill, then greedy tokens are decoded one at a time (`rounds` x `tokens`, the contexts
// taking turns); the decode time alone gives tokens/s (from the median step). Paths: the teacher with the key/value cache, the student exact (O(t) per token),
// the student modal (O(modes) per token). Prints one JSON object per (path, context) with the
// decode state's bytes. --hf-out writes the teacher as a Hugging Face folder for the peer.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <hyena/io/hf_checkpoint.hpp>
#include <hyena/models/decoder.hpp>
#include <hyena/models/gpt_neox.hpp>
#include <hyena/models/modal.hpp>
#include <hyena/models/student.hpp>

using namespace hyena;
using teacher_t = models::gpt_neox<backend::cpu>;
using student_t = models::hyena_student<teacher_t>;

namespace {

double now() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

std::int32_t argmax(const float* l, index_t n) {
  index_t b = 0;
  for (index_t i = 1; i < n; ++i)
    if (l[i] > l[b]) b = i;
  return std::int32_t(b);
}

// One path over every context: each context's C-token random prompt goes through prefill, then
// `rounds` rounds each decode `tokens` greedy tokens per context, the contexts taking turns, so a
// slow spell of the machine (another process, a frequency change) falls on every context alike
// rather than on whichever ran then. Each step is timed on its own and the per-token cost is the
// median over all of a context's steps (robust to a step the OS interrupts: a 1 ms step is easily
// doubled by one). Prints one JSON line per context.
template <class M>
void run(const char* path, M& m, backend::host_context& ctx, const std::vector<index_t>& contexts, index_t tokens,
         index_t rounds, const nn::hyena_modal_form<float>* modal, int threads) {
  const index_t V = m.config().vocab;
  struct one_context {
    std::unique_ptr<models::decoder<M>> dec;
    std::int32_t next = 0;
    double prefill_s = 0;
    std::vector<double> step_s;
  };
  std::vector<one_context> runs(contexts.size());
  for (std::size_t c = 0; c < contexts.size(); ++c) {
    const index_t C = contexts[c];
    auto& run = runs[c];
    run.dec = std::make_unique<models::decoder<M>>(m, ctx, 1, C + tokens * rounds, modal);
    tensor<std::int32_t> prompt(shape{1, C});
    rng r{static_cast<std::uint64_t>(C)};
    for (index_t i = 0; i < C; ++i) prompt.data()[i] = std::int32_t(r.below(V));
    const double t0 = now();
    run.next = argmax(run.dec->prefill(ctx, prompt.v()), V);
    run.prefill_s = now() - t0;
  }
  for (index_t round = 0; round < rounds; ++round)
    for (auto& run : runs)
      for (index_t i = 0; i < tokens; ++i) {
        const double t0 = now();
        run.next = argmax(run.dec->step(ctx, std::span(&run.next, 1)), V);
        run.step_s.push_back(now() - t0);
      }
  for (std::size_t c = 0; c < contexts.size(); ++c) {
    auto& run = runs[c];
    const index_t n = index_t(run.step_s.size());
    double decode = 0;
    for (double s : run.step_s) decode += s;
    std::nth_element(run.step_s.begin(), run.step_s.begin() + n / 2, run.step_s.end());
    const double median = run.step_s[std::size_t(n / 2)];
    std::printf("{\"impl\": \"hyena\", \"path\": \"%s\", \"context\": %lld, \"tokens\": %lld, \"rounds\": %lld, "
                "\"tok_s\": %.2f, \"ms_per_token\": %.4f, \"ms_per_token_mean\": %.4f, \"prefill_s\": %.3f, "
                "\"state_bytes\": %zu, \"threads\": %d}\n",
                path, (long long)contexts[c], (long long)tokens, (long long)rounds, 1.0 / median, 1e3 * median,
                1e3 * decode / double(n), run.prefill_s, run.dec->state_bytes(), threads);
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"decoding speed against context length"};
  std::string contexts = "128,1024,4096,16384,65536", hf_out, paths = "teacher_kv,student_exact,student_modal";
  index_t tokens = 64, modes = 16, rounds = 1;
  int threads = 1;
  app.add_option("--contexts", contexts)->capture_default_str();
  app.add_option("--tokens", tokens, "tokens decoded after the prompt")->capture_default_str();
  app.add_option("--rounds", rounds, "rounds of --tokens per context, the contexts taking turns")
      ->capture_default_str();
  app.add_option("--modes", modes, "modal states per channel")->capture_default_str();
  app.add_option("--threads", threads)->capture_default_str();
  app.add_option("--paths", paths, "which of teacher_kv, student_exact, student_modal")->capture_default_str();
  app.add_option("--hf-out", hf_out, "also write the teacher as a Hugging Face folder here");
  CLI11_PARSE(app, argc, argv);
  std::vector<index_t> cs;
  std::stringstream ss(contexts);
  for (std::string x; std::getline(ss, x, ',');) cs.push_back(std::stoll(x));
  index_t longest = 0;
  for (auto c : cs) longest = std::max(longest, c);
#ifdef _OPENMP
  omp_set_num_threads(threads);
#endif
  backend::host_context ctx(threads);
  auto cfg = models::gpt_neox_config(512, 128, 4, 4, 512, longest + tokens * rounds);
  cfg.rotary_pct = 0.25;
  teacher_t teacher(cfg);
  rng r(1);
  teacher.init(r);
  if (!hf_out.empty()) io::save_hf(hf_out, teacher, "gpt_neox");
  auto student = models::make_student<student_t>(teacher, r);
  const double t0 = now();
  auto form = models::fit_modal_form(student, ctx, {.modes = modes, .length = std::min<index_t>(4096, cfg.max_seq)});
  double err = 0;
  for (double e : form.filter_error) err = std::max(err, e);
  std::fprintf(stderr, "modal fit: %lld modes, worst layer filter error %.2e (%.1f s)\n", (long long)modes, err,
               now() - t0);
  if (paths.find("teacher_kv") != std::string::npos) run("teacher_kv", teacher, ctx, cs, tokens, rounds, nullptr, threads);
  if (paths.find("student_exact") != std::string::npos)
    run("student_exact", student, ctx, cs, tokens, rounds, nullptr, threads);
  if (paths.find("student_modal") != std::string::npos) run("student_modal", student, ctx, cs, tokens, rounds, &form, threads);
  return 0;
}
