// bench_decode: decoding speed against context length (benchmarks/decode_compare.py runs it
// beside Hugging Face transformers and writes docs/results/decode.json).
//
//   bench_decode [--contexts 128,1024,4096,16384,65536] [--tokens 64] [--modes 16] [--threads 1]
//                [--hf-out DIR]
//
// One GPT-NeoX teacher (Pythia's layout: parallel residual, rotary on a quarter of each head;
// width 128, 4 layers, 4 heads, MLP 512, vocab 512; random weights: speed does not depend on
// them) and its Hyena student (order 2). For each context C: a C-token prompt goes through
// prefill, then `tokens` greedy tokens are decoded one at a time; the decode time alone gives
// tokens/s (from the median step). Paths: the teacher with the key/value cache, the student exact (O(t) per token),
// the student modal (O(modes) per token). Prints one JSON object per (path, context) with the
// decode state's bytes. --hf-out writes the teacher as a Hugging Face folder for the peer.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
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

// Prefill C tokens, then decode `tokens` greedily; prints the JSON line.
template <class M>
void run(const char* path, M& m, backend::host_context& ctx, index_t C, index_t tokens, const nn::hyena_modal_form<float>* modal,
         int threads) {
  const index_t V = m.config().vocab;
  models::decoder<M> dec(m, ctx, 1, C + tokens, modal);
  tensor<std::int32_t> prompt(shape{1, C});
  rng r{static_cast<std::uint64_t>(C)};
  for (index_t i = 0; i < C; ++i) prompt.data()[i] = std::int32_t(r.below(V));
  double t0 = now();
  std::int32_t next = argmax(dec.prefill(ctx, prompt.v()), V);
  const double prefill = now() - t0;
  // Each step timed on its own: the median is the per-token cost, robust to a step the OS
  // interrupts (a 1 ms step is easily doubled by one).
  std::vector<double> step_s(static_cast<std::size_t>(tokens));
  for (index_t i = 0; i < tokens; ++i) {
    t0 = now();
    next = argmax(dec.step(ctx, std::span(&next, 1)), V);
    step_s[std::size_t(i)] = now() - t0;
  }
  double decode = 0;
  for (double s : step_s) decode += s;
  std::nth_element(step_s.begin(), step_s.begin() + tokens / 2, step_s.end());
  const double median = step_s[std::size_t(tokens / 2)];
  std::printf("{\"impl\": \"hyena\", \"path\": \"%s\", \"context\": %lld, \"tokens\": %lld, \"tok_s\": %.2f, "
              "\"ms_per_token\": %.4f, \"ms_per_token_mean\": %.4f, \"prefill_s\": %.3f, \"state_bytes\": %zu, "
              "\"threads\": %d}\n",
              path, (long long)C, (long long)tokens, 1.0 / median, 1e3 * median, 1e3 * decode / double(tokens), prefill,
              dec.state_bytes(), threads);
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"decoding speed against context length"};
  std::string contexts = "128,1024,4096,16384,65536", hf_out, paths = "teacher_kv,student_exact,student_modal";
  index_t tokens = 64, modes = 16;
  int threads = 1;
  app.add_option("--contexts", contexts)->capture_default_str();
  app.add_option("--tokens", tokens, "tokens decoded after the prompt")->capture_default_str();
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
  auto cfg = models::gpt_neox_config(512, 128, 4, 4, 512, longest + tokens);
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
  for (auto C : cs) {
    if (paths.find("teacher_kv") != std::string::npos) run("teacher_kv", teacher, ctx, C, tokens, nullptr, threads);
    if (paths.find("student_exact") != std::string::npos) run("student_exact", student, ctx, C, tokens, nullptr, threads);
    if (paths.find("student_modal") != std::string::npos) run("student_modal", student, ctx, C, tokens, &form, threads);
  }
  return 0;
}
