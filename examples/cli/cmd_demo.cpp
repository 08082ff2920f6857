// hyena demo: the whole mission on one corpus.
//   1. a GPT-NeoX teacher is trained from scratch;
//   2. its Hyena student is trained from scratch (the baseline);
//   3. a Hyena student is distilled from the teacher with the same token budget;
//   4. all three are evaluated on held-out text; runs/<name>/report.md gets the table and
//      val_loss.png the validation curves of the two students.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include <hyena/io/byte_tokenizer.hpp>

#include "commands.hpp"
#include "pipeline.hpp"

namespace hyena::cli {

namespace {
namespace fs = std::filesystem;

struct demo_args {
  std::string corpus, out = "runs/demo", preset = "small", teacher;
  index_t teacher_tokens = 0, student_tokens = 0, eval_tokens = -1, batch = 0;
  double stage1_fraction = train::recommended_stage1_fraction, lr = 0;
  train::distill_options d;  // the measured recipe; the demo sets the budget, lr and folders
  std::string init = "attention", kd = "forward";
  index_t rank = train::recommended_rank;  // both students' Hyena rank (order 2)
  bool operator_fraction_given = false;
  std::uint64_t seed = 0;
  int threads = 0;
};

// Budgets that finish the preset on 2 cores in about 22 minutes ("small" at rank 4, measured) or
// seconds ("tiny"). The small teacher reads about one pass over WikiText-2's training split (10.8M
// bytes): a teacher trained on 3M tokens is matched by a student from scratch within 600k tokens,
// which leaves distillation nothing to show (docs/results.md section 2).
struct preset_budget {
  index_t batch, teacher_tokens, student_tokens, eval_tokens, eval_points;
  double lr;
};
inline preset_budget budget_for(const std::string& preset) {
  if (preset == "tiny") return {4, 40 * 4 * 64, 30 * 4 * 64, 4096, 3, 3e-3};
  if (preset == "small") return {8, 10'000'000, 600'000, 131'072, 8, 1e-3};
  return {8, 4'000'000, 2'000'000, 0, 10, 6e-4};
}

struct split_corpus {
  std::string name;          // what the report calls it
  std::string train, valid, test;
  bool wikitext = false;
};

std::string read_all(const fs::path& p) { return io::read_text_file(p.string()); }

// The corpus: --corpus FILE (split 90/5/5), else WikiText-2 from the data folder, else the
// fortunes that scripts/demo.sh installs from Debian.
split_corpus find_corpus(const std::string& explicit_path) {
  split_corpus c;
  auto split = [&](const std::string& text, const std::string& name) {
    HYENA_CHECK(text.size() >= 10000, "demo: corpus ", name, " has only ", text.size(), " bytes; need at least 10000");
    const std::size_t a = text.size() * 90 / 100, b = text.size() * 95 / 100;
    c.name = name;
    c.train = text.substr(0, a);
    c.valid = text.substr(a, b - a);
    c.test = text.substr(b);
  };
  if (!explicit_path.empty()) {
    split(read_all(explicit_path), explicit_path + " (first 90% train, next 5% validation, last 5% test)");
    return c;
  }
  const fs::path wt = fs::path(data_dir()) / "wikitext-2";
  if (fs::exists(wt / "wiki.train.tokens")) {
    c.name = "WikiText-2 (" + wt.string() + ": wiki.train / wiki.valid / wiki.test)";
    c.train = read_all(wt / "wiki.train.tokens");
    c.valid = read_all(wt / "wiki.valid.tokens");
    c.test = read_all(wt / "wiki.test.tokens");
    c.wikitext = true;
    return c;
  }
  const fs::path fortunes = "/usr/share/games/fortunes";
  if (fs::is_directory(fortunes)) {
    std::vector<fs::path> files;
    for (auto& e : fs::directory_iterator(fortunes))
      if (e.is_regular_file() && !e.path().has_extension()) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    std::string text;
    for (auto& f : files) text += read_all(f);
    split(text, "Debian's fortunes corpus (" + fortunes.string() + ", first 90% train, next 5% validation, last 5% test)");
    return c;
  }
  HYENA_FAIL("demo: no corpus found: pass --corpus FILE, set HYENA_DATA_DIR to a folder with wikitext-2/, or install "
             "Debian's 'fortunes' package (scripts/demo.sh does)");
}

// Words as WikiText counts them: whitespace-separated tokens plus one end-of-line per line.
double count_words(const std::string& text) {
  std::istringstream in(text);
  double words = 0;
  for (std::string line; std::getline(in, line);) {
    std::istringstream ls(line);
    for (std::string w; ls >> w;) ++words;
    ++words;
  }
  return words;
}

struct scored {
  train::eval_result valid, test;
};

template <class Model>
scored score(Model& m, backend::host_context& ctx, const io::token_file& valid, const io::token_file& test,
             const split_corpus& c, index_t batch, index_t seq, index_t max_tokens) {
  train::eval_options o{batch, seq, max_tokens, double(valid.source_bytes()), c.wikitext ? count_words(c.valid) : 0};
  scored s;
  s.valid = train::evaluate(m, ctx, valid.tokens(), o);
  o.source_bytes = double(test.source_bytes());
  o.source_words = c.wikitext ? count_words(c.test) : 0;
  s.test = train::evaluate(m, ctx, test.tokens(), o);
  return s;
}

void write_plot(const fs::path& dir, const stage_report& scratch, const stage_report& distilled, double teacher_loss) {
  std::ofstream dat(dir / "val_loss.dat");
  dat << "# tokens  val_loss   (block 0: from scratch, block 1: distilled)\n";
  for (auto& [t, l] : scratch.curve) dat << t << ' ' << l << '\n';
  dat << "\n\n";
  for (auto& [t, l] : distilled.curve) dat << t << ' ' << l << '\n';
  dat.close();
  std::ofstream gp(dir / "val_loss.gp");
  gp << "set terminal pngcairo size 900,560 noenhanced\n"
     << "set output '" << (dir / "val_loss.png").string() << "'\n"
     << "set title 'Hyena students: validation loss against training tokens'\n"
     << "set xlabel 'tokens seen by the student'\nset ylabel 'validation loss (nats per byte)'\nset grid\n"
     << "plot '" << (dir / "val_loss.dat").string() << "' index 0 with linespoints title 'from scratch', "
     << "'' index 1 with linespoints title 'distilled from the teacher', " << teacher_loss
     << " with lines dashtype 2 title 'teacher (attention)'\n";
  gp.close();
  const std::string cmd = "gnuplot '" + (dir / "val_loss.gp").string() + "' 2>/dev/null";
  if (std::system(cmd.c_str()) != 0) {
    // pngcairo is not in every gnuplot build; the plain png terminal is.
    std::string script = read_all(dir / "val_loss.gp");
    script.replace(script.find("pngcairo"), 8, "png");
    std::ofstream(dir / "val_loss.gp") << script;
    if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "demo: gnuplot failed or is missing; no val_loss.png\n");
  }
}

// Tokens the distilled student needed to reach `target` validation loss (-1: never).
index_t tokens_to_reach(const stage_report& r, double target) {
  for (auto& [t, l] : r.curve)
    if (l <= target) return t;
  return -1;
}

void run_demo(const demo_args& a) {
  const auto budget = budget_for(a.preset);
  const index_t batch = a.batch > 0 ? a.batch : budget.batch;
  const index_t teacher_tokens = a.teacher_tokens > 0 ? a.teacher_tokens : budget.teacher_tokens;
  const index_t student_tokens = a.student_tokens > 0 ? a.student_tokens : budget.student_tokens;
  const index_t eval_tokens = a.eval_tokens >= 0 ? a.eval_tokens : budget.eval_tokens;
  const fs::path dir = a.out;
  fs::create_directories(dir / "data");
  auto ctx = make_context(a.threads);

  // Data: byte-level tokens (the real tokenizers plug into the same interface).
  auto corpus = find_corpus(a.corpus);
  std::fprintf(stderr, "demo: corpus %s\n", corpus.name.c_str());
  io::byte_tokenizer tok;
  auto write = [&](const std::string& text, const std::string& name) {
    auto ids = tok.encode(text);
    io::write_token_file((dir / "data" / name).string(), ids, tok.vocab_size(), text.size());
    return io::token_file((dir / "data" / name).string());
  };
  auto train_f = write(corpus.train, "train.tok"), valid_f = write(corpus.valid, "valid.tok"),
       test_f = write(corpus.test, "test.tok");

  auto cfg = preset(a.preset, "gpt_neox", tok.vocab_size());
  auto hyena = preset_hyena(a.preset);
  hyena.rank = a.rank;  // the scratch student has the distilled one's architecture, rank included
  const index_t seq = cfg.max_seq;
  auto trainer_opts = [&](index_t tokens, const std::string& label, const std::string& run) {
    train::trainer_options o;
    o.label = label;
    o.batch = batch;
    o.seq = seq;
    o.steps = steps_for(tokens, batch, seq);
    o.warmup = std::max<index_t>(1, o.steps / 20);
    o.lr = a.lr > 0 ? a.lr : budget.lr;
    o.min_lr = o.lr / 10;
    o.seed = a.seed;
    o.eval_every = std::max<index_t>(1, o.steps / budget.eval_points);
    o.eval.max_tokens = eval_tokens;
    o.run_dir = (dir / run).string();
    o.resume = false;
    return o;
  };

  // 1. Teacher: trained here, or an earlier run's (--teacher) so several student budgets
  //    can share one teacher.
  gpt_neox teacher(cfg);
  stage_report t_rep{"teacher", 0, 0, teacher.parameter_count(), {}};
  if (!a.teacher.empty()) {
    HYENA_CHECK(checkpoint_arch(a.teacher) == "gpt_neox", "demo: --teacher ", a.teacher, " is not a gpt_neox checkpoint");
    HYENA_CHECK(models::to_json(train::checkpoint_config(a.teacher)) == models::to_json(cfg), "demo: --teacher ", a.teacher,
                " has another shape than preset ", a.preset);
    train::load_checkpoint(a.teacher, teacher);
    auto meta = io::safetensors_file::open(a.teacher).metadata();
    if (meta.count("demo.tokens")) t_rep.tokens = std::stoll(meta["demo.tokens"]);
    if (meta.count("demo.seconds")) t_rep.seconds = std::stod(meta["demo.seconds"]);
  } else {
    rng r(a.seed);
    teacher.init(r);
    t_rep = train_from_scratch(teacher, ctx, trainer_opts(teacher_tokens, "teacher", "teacher"), train_f.tokens(),
                               valid_f.tokens(), "teacher");
  }
  save_model((dir / "teacher" / "model.safetensors").string(), teacher, "gpt_neox",
             {{"demo.tokens", std::to_string(t_rep.tokens)}, {"demo.seconds", std::to_string(t_rep.seconds)}});

  // 2. Hyena student from scratch, same architecture as the distilled one.
  hyena_gpt_neox scratch({cfg, hyena});
  rng rs(a.seed + 1);
  scratch.init(rs);
  auto s_rep = train_from_scratch(scratch, ctx, trainer_opts(student_tokens, "scratch student", "scratch"),
                                  train_f.tokens(), valid_f.tokens(), "scratch");
  save_model((dir / "scratch" / "model.safetensors").string(), scratch, "hyena_gpt_neox");

  // 3. Distilled student: the measured recipe, stage 1 on a fraction of the budget, stage 2
  //    on the rest.
  rng rd(a.seed + 1);
  auto distilled = models::make_student<hyena_gpt_neox>(teacher, rd, hyena);
  train::distill_options d = a.d;
  d.train = trainer_opts(student_tokens, "stage 2", "distilled");
  d.train.lr = a.lr > 0 ? a.lr : train::recommended_stage2().lr;  // the recipe's, not the scratch runs'
  d.train.min_lr = d.train.lr / 10;
  d.init = a.init == "random" ? train::student_init::random : train::student_init::attention;
  train::parse_kd(a.kd, d);
  // Operator alignment fits one mixing matrix per channel (rank 1); asked for by name at a higher
  // rank, the distiller refuses it.
  if (hyena.rank > 1 && !a.operator_fraction_given) d.stage1_operator_fraction = 0;
  train::set_token_budget(d, student_tokens, cfg.layers, a.stage1_fraction);
  d.train.warmup = std::max<index_t>(1, d.train.steps / 20);
  d.train.eval_every = std::max<index_t>(1, d.train.steps / budget.eval_points);
  train::distiller<gpt_neox, hyena_gpt_neox> distiller(teacher, distilled, d);
  std::fprintf(stderr, "%s", distiller.describe().c_str());
  train::distill_result d_res;
  auto d_rep = run_distiller(distiller, distilled, ctx, train_f.tokens(), valid_f.tokens(), "distilled", &d_res);
  save_model((dir / "distilled" / "model.safetensors").string(), distilled, "hyena_gpt_neox");

  // 4. Evaluation on the held-out splits and the report.
  std::fprintf(stderr, "demo: evaluating on validation and test\n");
  auto ts = score(teacher, ctx, valid_f, test_f, corpus, batch, seq, eval_tokens);
  auto ss = score(scratch, ctx, valid_f, test_f, corpus, batch, seq, eval_tokens);
  auto ds = score(distilled, ctx, valid_f, test_f, corpus, batch, seq, eval_tokens);
  write_plot(dir, s_rep, d_rep, ts.valid.loss);

  const double scratch_final = s_rep.curve.empty() ? ss.valid.loss : s_rep.curve.back().second;
  const index_t needed = tokens_to_reach(d_rep, scratch_final);
  std::ofstream md(dir / "report.md");
  md << "# hyena demo report\n\n"
     << "- corpus: " << corpus.name << "\n"
     << "- tokenizer: byte-level (vocab 256); tokens: train " << train_f.size() << ", validation " << valid_f.size()
     << ", test " << test_f.size() << "\n"
     << "- preset `" << a.preset << "`: GPT-NeoX shape, width " << cfg.hidden << ", " << cfg.layers << " layers, "
     << cfg.heads << " heads, MLP " << cfg.intermediate << ", context " << seq << ", batch " << batch
     << "; the students replace attention by an order-" << hyena.order << ", rank-" << hyena.rank
     << " Hyena operator (filter FFN " << hyena.filter_order << ")\n"
     << "- evaluation: " << (eval_tokens > 0 ? "the first " + std::to_string(eval_tokens) + " tokens" : std::string("all tokens"))
     << " of each split, non-overlapping windows of " << seq << "\n"
     << "- distillation (" << d_rep.tokens << " tokens):\n\n```\n" << distiller.describe() << "```\n\n";
  md << "| model | parameters | training tokens | wall time (s) | valid loss | valid ppl | valid bits/byte | test loss | test ppl | test bits/byte";
  md << (corpus.wikitext ? " | test word ppl |\n|---|---|---|---|---|---|---|---|---|---|---|\n" : " |\n|---|---|---|---|---|---|---|---|---|---|\n");
  auto row = [&](const char* name, const stage_report& r, const scored& s) {
    char buf[512];
    std::snprintf(buf, sizeof buf, "| %s | %lld | %lld | %.1f | %.4f | %.3f | %.4f | %.4f | %.3f | %.4f", name,
                  (long long)r.parameters, (long long)r.tokens, r.seconds, s.valid.loss, s.valid.perplexity,
                  s.valid.bits_per_byte, s.test.loss, s.test.perplexity, s.test.bits_per_byte);
    md << buf;
    if (corpus.wikitext) md << " | " << std::lround(s.test.word_perplexity);
    md << " |\n";
  };
  row("teacher (GPT-NeoX, attention)", t_rep, ts);
  row("Hyena student, from scratch", s_rep, ss);
  row("Hyena student, distilled", d_rep, ds);
  md << "\nPerplexities are per byte (the tokenizer is byte-level)"
     << (corpus.wikitext ? "; word perplexity divides the same total loss by WikiText's word count (words + line ends)" : "")
     << ".\n\n";
  if (needed >= 0)
    md << "The distilled student reached the from-scratch student's final validation loss (" << scratch_final << ") after "
       << needed << " of its " << d_rep.tokens << " tokens.\n\n";
  else
    md << "The distilled student did not reach the from-scratch student's final validation loss (" << scratch_final
       << ") within its " << d_rep.tokens << " tokens.\n\n";
  if (!d_res.fit_initial.empty()) {
    // Columns for the points the run reached: after stage 0, after stage 1 (when it ran), at the end.
    std::vector<std::pair<std::string, const std::vector<train::layer_fit>*>> cols{{"after stage 0", &d_res.fit_initial}};
    if (!d_res.fit.empty()) cols.push_back({"after stage 1", &d_res.fit});
    if (!d_res.fit_final.empty()) cols.push_back({"distilled", &d_res.fit_final});
    // The operator error exists for rank-1 students only (one mixing matrix per channel).
    const bool has_operator = !std::isnan(d_res.fit_initial[0].operator_error);
    md << "How well each Hyena mixer fits its teacher layer (normalised errors on held-out windows, given the "
          "teacher's input to the layer; 0 is exact, 1 is no better than zero; "
       << (has_operator ? "operator: the mixing matrices against the attention matrices, " : "")
       << "output: the mixer output):\n\n| layer |";
    for (auto& c : cols) md << (has_operator ? " operator, " + c.first + " |" : "") << " output, " << c.first << " |";
    md << "\n|---|";
    for (std::size_t i = 0; i < cols.size(); ++i) md << (has_operator ? "---|---|" : "---|");
    md << "\n";
    for (std::size_t l = 0; l < d_res.fit_initial.size(); ++l) {
      md << "| " << l << " |";
      for (auto& c : cols) {
        char buf[64];
        if (has_operator) {
          std::snprintf(buf, sizeof buf, " %.4f |", (*c.second)[l].operator_error);
          md << buf;
        }
        std::snprintf(buf, sizeof buf, " %.4f |", (*c.second)[l].output_error);
        md << buf;
      }
      md << "\n";
    }
    md << "\n";
  }
  md << "![validation loss](val_loss.png)\n\nValidation curves: `val_loss.dat`; per-step metrics: `*/metrics.jsonl`; "
        "models: `*/model.safetensors`.\n";
  md.close();
  std::printf("%s", read_all(dir / "report.md").c_str());
  std::printf("\nreport: %s\n", (dir / "report.md").string().c_str());
}
}  // namespace

void add_demo_command(CLI::App& app) {
  auto a = std::make_shared<demo_args>();
  auto* c = app.add_subcommand("demo", "train a teacher, a Hyena student from scratch and a distilled one; report");
  c->add_option("--corpus", a->corpus, "a text file (default: WikiText-2 from HYENA_DATA_DIR, else Debian's fortunes)")
      ->check(CLI::ExistingFile);
  c->add_option("--out", a->out, "run folder")->capture_default_str();
  c->add_option("--preset", a->preset, "tiny (seconds), small (~22 min on 2 cores) or pythia-70m")
      ->check(CLI::IsMember({"tiny", "small", "pythia-70m"}))->capture_default_str();
  c->add_option("--teacher-tokens", a->teacher_tokens, "teacher training tokens (default: the preset's)");
  c->add_option("--teacher", a->teacher, "reuse this teacher (a demo's teacher/model.safetensors) instead of training one")
      ->check(CLI::ExistingFile);
  c->add_option("--student-tokens", a->student_tokens, "tokens for each student (default: the preset's)");
  c->add_option("--stage1-fraction", a->stage1_fraction, "share of the student budget spent in stage 1")->capture_default_str();
  c->add_option("--stage1-lr", a->d.stage1_lr, "stage 1 learning rate")->capture_default_str();
  c->add_option("--init", a->init, "distilled student's mixers: from the teacher's attention, or at random")
      ->check(CLI::IsMember({"attention", "random"}))->capture_default_str();
  auto* operator_fraction = c->add_option("--operator-fraction", a->d.stage1_operator_fraction,
                                          "share of stage 1 spent on operator alignment (rank 1 only)")
                                ->capture_default_str();
  c->add_option("--rank", a->rank, "Hyena rank R of both students (R gate pairs of an order-2 operator)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  c->add_option("--kd", a->kd, "stage 2 divergence: forward, reverse or topk:K")->capture_default_str();
  c->add_option("--lr", a->lr, "peak learning rate (default: the preset's)");
  c->add_option("--tau", a->d.tau, "distillation temperature")->capture_default_str();
  c->add_option("--alpha", a->d.alpha, "weight of the divergence in stage 2 (1-alpha on cross-entropy)")->capture_default_str();
  c->add_option("--beta", a->d.beta, "weight of the hidden-state MSE in stage 2")->capture_default_str();
  c->add_option("--batch", a->batch, "sequences per step (default: the preset's)");
  c->add_option("--eval-tokens", a->eval_tokens, "tokens of each split to evaluate (0: all; default: the preset's)");
  c->add_option("--seed", a->seed, "seed")->capture_default_str();
  c->add_option("--threads", a->threads, "threads (default: all)");
  c->callback([a, operator_fraction] {
    a->operator_fraction_given = operator_fraction->count() > 0;
    run_demo(*a);
  });
}

}  // namespace hyena::cli
