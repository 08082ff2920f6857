// distill_command.hpp: `hyena distill` on any backend (cmd_distill.cpp parses the options and runs
// it on the CPU; cuda_commands.cu on the GPU).
//
// With no budget flags it runs the recipe docs/results.md measured best (attention
// initialisation, operator then mixer-output alignment, forward KL end to end) over one pass
// of the training file, and prints the plan before it starts. Rerunning with the same --out
// resumes in the stage the checkpoint was written by.
#pragma once
#include <cmath>
#include <cstdio>
#include <string>

#include "pipeline.hpp"

namespace hyena::cli {

struct distill_args {
  std::string teacher, train, valid, out, target = "mixer", init = "attention", gates = "ones", kd = "forward",
              branches = "off";
  train::distill_options o;  // the library's defaults are the measured recipe
  // rank 0: train::recommended_rank at order 2, else 1 (student_rank()).
  index_t tokens = 0, stage1_tokens_per_layer = -1, stage2_tokens = -1, filter_order = 0, order = 2, rank = 0;
  double stage1_fraction = train::recommended_stage1_fraction;
  bool no_resume = false, operator_fraction_given = false;
  index_t student_rank() const { return rank > 0 ? rank : order == 2 ? train::recommended_rank : 1; }
  device_options dev;
};

// `hyena distill` with teacher and student on backend Backend.
template <class Backend>
void run_distill_on(const distill_args& a) {
  auto ctx = device_context<Backend>(a.dev);
  with_any_model_on<Backend>(a.teacher, [&](auto& teacher, const std::string& arch) {
    using Teacher = std::decay_t<decltype(teacher)>;
    if constexpr (std::is_same_v<Teacher, models::gpt_neox<Backend>> || std::is_same_v<Teacher, models::llama<Backend>>) {
      using Student = models::hyena_student<Teacher>;
      auto train_file = open_tokens(a.train, teacher.config().vocab);
      io::token_file valid_file;
      if (!a.valid.empty()) valid_file = open_tokens(a.valid, teacher.config().vocab);
      nn::hyena_hparams h;
      h.order = a.order;
      h.rank = a.student_rank();
      if (a.filter_order > 0) h.filter_order = a.filter_order;
      rng r(a.o.train.seed);
      auto student = models::make_student<Student>(teacher, r, h);
      auto o = a.o;
      o.train.run_dir = a.out;
      o.train.resume = !a.no_resume;
      o.train.comm = &world();  // data parallel under mpirun; batch is per rank
      o.stage1_target = a.target == "block" ? train::transfer_target::block_output : train::transfer_target::mixer_output;
      o.init = a.init == "random" ? train::student_init::random : train::student_init::attention;
      o.attention.gates = a.gates == "qk" ? train::gate_init::qk : train::gate_init::ones;
      o.attention.branches = train::parse_branch_init(a.branches);
      train::parse_kd(a.kd, o);
      // Operator alignment fits one mixing matrix per channel (order 2, rank 1). Other students
      // align outputs only, unless the user asked for it by name: then the distiller's check refuses.
      const bool one_matrix = a.order == 2 && h.rank == 1;
      HYENA_CHECK(one_matrix || !a.operator_fraction_given || o.stage1_operator_fraction == 0,
                  "distill: --operator-fraction aligns the mixing matrices of order-2, rank-1 students; this one is "
                  "order ", a.order, ", rank ", h.rank, " (add --rank 1, or drop --operator-fraction)");
      if (!one_matrix) o.stage1_operator_fraction = 0;
      HYENA_CHECK(o.train.seq <= teacher.config().max_seq, "distill: --seq ", o.train.seq,
                  " exceeds the teacher's max_seq ", teacher.config().max_seq);
      // The budget: explicit per-stage tokens, else --tokens (default: one pass over the file).
      const index_t per_step = o.train.tokens_per_step(), layers = teacher.config().layers;
      const index_t budget = a.tokens > 0 ? a.tokens : train_file.size();
      train::set_token_budget(o, budget, layers, a.stage1_fraction);
      if (a.stage1_tokens_per_layer >= 0) o.stage1_steps_per_layer = a.stage1_tokens_per_layer / per_step;
      if (a.stage2_tokens >= 0) o.train.steps = a.stage2_tokens / per_step;
      o.train.warmup = std::max<index_t>(1, o.train.steps / 20);
      if (o.train.eval_every == 0) o.train.eval_every = std::max<index_t>(1, o.train.steps / 10);
      HYENA_CHECK(o.stage1_steps_per_layer > 0 || o.train.steps > 0, "distill: the budget is below one step of ",
                  per_step, " tokens (batch x seq); raise --tokens or lower --batch/--seq");
      train::distiller<Teacher, Student> d(teacher, student, o);
      std::printf("distill: %s teacher %s -> %s student (order-%lld rank-%lld Hyena operator, %lld parameters)\n%s",
                  arch.c_str(), a.teacher.c_str(), student_arch(arch).c_str(), (long long)h.order, (long long)h.rank,
                  (long long)student.parameter_count(), d.describe().c_str());
      std::fflush(stdout);
      auto report = run_distiller(d, student, ctx, train_file.tokens(), valid_file.tokens(), "distilled");
      if (world().is_root()) save_model(a.out + "/model.safetensors", student, student_arch(arch));
      std::printf("distilled %s -> %s on %lld tokens in %.1f s; model written to %s/model.safetensors\n", arch.c_str(),
                  student_arch(arch).c_str(), (long long)report.tokens, report.seconds, a.out.c_str());
      if (!report.curve.empty())
        std::printf("final validation loss %.4f (perplexity %.2f)\n", report.curve.back().second,
                    std::exp(report.curve.back().second));
    } else {
      HYENA_FAIL("distill: the teacher must be a gpt_neox or llama checkpoint, ", a.teacher, " is ", arch);
    }
  });
}
}  // namespace hyena::cli
