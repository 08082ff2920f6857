// test_cuda_train.cu: the whole training, distillation, evaluation and generation path on
// backend::cuda.
//
// Compiled by nvcc in CI (no GPU there): the explicit instantiations below make every member of
// the trainer and the distiller, evaluate and generate compile for device memory, so a host-only
// construct in train/, models/ or nn/ (a host view where the model's memory is needed, a missing
// op) breaks the build here. On a GPU the tests run the same tiny models on cuda and on cpu_ref,
// in double, from the same initialisation and batches, and require the same losses: a training
// run, a distillation (stage 0 from attention, a short stage 1 and stage 2), evaluation and
// greedy generation (recomputed and incremental).
#include <filesystem>
#include <span>

#include "cuda_test_util.cuh"
#include "hyena/hyena.hpp"
#include "support/tiny_runs.hpp"

using namespace hyena;
using cuda_test::check_close_max;
using cuda_test::dctx;

// Every member compiles for the device backend.
template class hyena::train::trainer<models::gpt_neox<backend::cuda, float>>;
template class hyena::train::trainer<models::llama<backend::cuda, float>>;
template class hyena::train::trainer<models::hyena_student<models::gpt_neox<backend::cuda, float>>>;
template class hyena::train::distiller<models::gpt_neox<backend::cuda, float>,
                                       models::hyena_student<models::gpt_neox<backend::cuda, float>>>;
template class hyena::train::distiller<models::llama<backend::cuda, float>,
                                       models::hyena_student<models::llama<backend::cuda, float>>>;

namespace {

template <class B>
using teacher_on = models::gpt_neox<B, double>;
template <class B>
using student_on = models::hyena_student<teacher_on<B>>;

using testing::tiny_config;
train::trainer_options train_options() { return testing::tiny_train_options(); }

template <class B>
train::train_result train_teacher(teacher_on<B>& t, typename B::context& ctx, std::span<const std::int32_t> tokens) {
  rng r(1);
  t.init(r);
  return train::trainer<teacher_on<B>>(t, train_options()).run(ctx, tokens, tokens.subspan(0, 2000));
}

void check_same_history(const train::train_result& gpu, const train::train_result& ref, double rel) {
  REQUIRE(gpu.history.size() == ref.history.size());
  for (std::size_t i = 0; i < ref.history.size(); ++i) {
    CAPTURE(i);
    CHECK(gpu.history[i].loss == doctest::Approx(ref.history[i].loss).epsilon(rel));
    CHECK(gpu.history[i].grad_norm == doctest::Approx(ref.history[i].grad_norm).epsilon(rel));
  }
  CHECK(gpu.final_eval.loss == doctest::Approx(ref.final_eval.loss).epsilon(rel));
}

}  // namespace

TEST_CASE("cuda: a training run matches cpu_ref (double)") {
  const auto corpus = testing::toy_corpus(20000);
  const std::span<const std::int32_t> tokens(corpus);
  backend::host_context hctx(1);
  teacher_on<backend::cpu_ref> ref_model(tiny_config());
  teacher_on<backend::cuda> gpu_model(tiny_config());
  const auto ref = train_teacher(ref_model, hctx, tokens);
  const auto gpu = train_teacher(gpu_model, dctx(), tokens);
  check_same_history(gpu, ref, 1e-9);
  // The parameters after the run, read back.
  const auto a = to_host_vector(gpu_model.parameter_arena().flat());
  const auto b = to_host_vector(ref_model.parameter_arena().flat());
  check_close_max(a, b, 1e-9, "parameters after training");
}

TEST_CASE("cuda: checkpoint written on the device resumes on the host exactly") {
  const auto corpus = testing::toy_corpus(20000);
  const std::span<const std::int32_t> tokens(corpus);
  const auto dir = (std::filesystem::temp_directory_path() / "hyena_cuda_train_resume").string();
  std::filesystem::remove_all(dir);
  teacher_on<backend::cuda> gpu_model(tiny_config());
  rng r(1);
  gpu_model.init(r);
  auto o = train_options();
  o.run_dir = dir;
  o.checkpoint_every = 3;
  o.stop_after = 3;
  train::trainer<teacher_on<backend::cuda>>(gpu_model, o).run(dctx(), tokens);
  teacher_on<backend::cpu_ref> host_model(tiny_config());
  o.stop_after = 0;
  backend::host_context hctx(1);
  const auto resumed = train::trainer<teacher_on<backend::cpu_ref>>(host_model, o).run(hctx, tokens);
  CHECK(resumed.history.front().step == 4);
  std::filesystem::remove_all(dir);
}

TEST_CASE("cuda: distillation (stage 0 from attention, stage 1, stage 2) matches cpu_ref (double)") {
  const auto corpus = testing::toy_corpus(20000);
  const std::span<const std::int32_t> tokens(corpus);
  backend::host_context hctx(1);
  teacher_on<backend::cpu_ref> ref_teacher(tiny_config());
  teacher_on<backend::cuda> gpu_teacher(tiny_config());
  train_teacher(ref_teacher, hctx, tokens);
  train_teacher(gpu_teacher, dctx(), tokens);
  const auto distill_options = testing::tiny_distill_options;
  rng r1(5), r2(5);
  auto ref_student = models::make_student<student_on<backend::cpu_ref>>(ref_teacher, r1, {.filter_order = 16});
  auto gpu_student = models::make_student<student_on<backend::cuda>>(gpu_teacher, r2, {.filter_order = 16});
  const auto ref = train::distiller<teacher_on<backend::cpu_ref>, student_on<backend::cpu_ref>>(
                       ref_teacher, ref_student, distill_options())
                       .run(hctx, tokens, tokens.subspan(0, 2000));
  const auto gpu = train::distiller<teacher_on<backend::cuda>, student_on<backend::cuda>>(gpu_teacher, gpu_student,
                                                                                          distill_options())
                       .run(dctx(), tokens, tokens.subspan(0, 2000));
  REQUIRE(gpu.filter_fit.size() == ref.filter_fit.size());
  for (std::size_t l = 0; l < ref.filter_fit.size(); ++l)
    CHECK(gpu.filter_fit[l] == doctest::Approx(ref.filter_fit[l]).epsilon(1e-7));
  check_same_history(gpu.stage2, ref.stage2, 1e-7);
}

TEST_CASE("cuda: greedy generation (recompute and incremental) gives cpu_ref's tokens") {
  const auto corpus = testing::toy_corpus(20000);
  const std::span<const std::int32_t> tokens(corpus);
  backend::host_context hctx(1);
  teacher_on<backend::cpu_ref> ref_model(tiny_config());
  teacher_on<backend::cuda> gpu_model(tiny_config());
  train_teacher(ref_model, hctx, tokens);
  train_teacher(gpu_model, dctx(), tokens);
  rng r1(6), r2(6);
  auto ref_student = models::make_student<student_on<backend::cpu_ref>>(ref_model, r1, {.filter_order = 16});
  auto gpu_student = models::make_student<student_on<backend::cuda>>(gpu_model, r2, {.filter_order = 16});
  train::sampling greedy{.temperature = 0};
  const std::vector<std::int32_t> prompt(tokens.begin(), tokens.begin() + 5);
  for (auto mode : {train::decode_mode::recompute, train::decode_mode::exact}) {
    CAPTURE(int(mode));
    train::generate_options<double> o;
    o.decode = mode;
    CHECK(train::generate(gpu_model, dctx(), prompt, 20, greedy, o) ==
          train::generate(ref_model, hctx, prompt, 20, greedy, o));
    CHECK(train::generate(gpu_student, dctx(), prompt, 20, greedy, o) ==
          train::generate(ref_student, hctx, prompt, 20, greedy, o));
  }
}
