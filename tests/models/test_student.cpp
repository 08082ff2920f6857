#include <hyena/models/gpt_neox.hpp>
#include <hyena/models/llama.hpp>
#include <hyena/models/student.hpp>

#include "../support/model_check.hpp"

using namespace hyena;

namespace {
// A small Hyena for the tiny models: order 2, filter FFN width 8, 5 features, one inner layer.
constexpr nn::hyena_hparams small_hyena{.order = 2, .filter_order = 8, .emb_dim = 5, .filter_layers = 1};
models::lm_config<nn::hyena_hparams> tiny() { return {models::gpt_neox_config(13, 8, 2, 2, 16, 6), small_hyena}; }
}  // namespace

using teacher_d = models::gpt_neox<backend::cpu_ref, double>;
using student_d = models::hyena_student<teacher_d>;

// The student type differs from the teacher in its mixer only.
static_assert(std::is_same_v<student_d::block_type::mlp, teacher_d::block_type::mlp>);
static_assert(std::is_same_v<student_d::block_type::norm, teacher_d::block_type::norm>);
static_assert(std::is_same_v<student_d::block_type::mixer, nn::hyena_operator<backend::cpu_ref, double>>);

TEST_CASE("hyena student: whole-model gradients match central differences") {
  testing::check_model_gradients<student_d>(tiny(), 2, 5);
  auto c = tiny();
  c.mixer.order = 3;
  testing::check_model_gradients<student_d>(c, 1, 6, /*with_hook=*/true);
}

TEST_CASE("hyena student of llama: gradients") {
  models::lm_config<nn::hyena_hparams> c(models::llama_config(11, 8, 2, 4, 2, 12, 6), small_hyena);
  testing::check_model_gradients<models::hyena_student<models::llama<backend::cpu_ref, double>>>(c, 1, 5);
}

TEST_CASE("hyena student: cpu matches cpu_ref") {
  models::lm_config<nn::hyena_hparams> c(models::gpt_neox_config(31, 32, 2, 4, 64, 32), {.filter_order = 16});
  using T = models::gpt_neox<backend::cpu>;
  using R = models::gpt_neox<backend::cpu_ref>;
  testing::check_model_parity<models::hyena_student<T>, models::hyena_student<R>>(c, 2, 32);
}

TEST_CASE("make_student copies every shared weight and only those") {
  auto c = tiny();
  models::gpt_neox<backend::cpu> teacher(c);
  rng r(1);
  teacher.init(r);
  testing::nudge_parameters(teacher, 2);
  using S = models::hyena_student<models::gpt_neox<backend::cpu>>;
  auto student = models::make_student<S>(teacher, r, c.mixer);
  std::map<std::string, std::vector<float>> t;
  teacher.for_each_parameter([&](const std::string& n, view<float>& p, view<float>&) { t[n].assign(p.data, p.data + p.numel()); });
  index_t shared = 0, fresh = 0;
  student.for_each_parameter([&](const std::string& n, view<float>& p, view<float>&) {
    if (models::is_mixer_parameter(n)) {
      ++fresh;
      return;
    }
    ++shared;
    REQUIRE(t.count(n));
    CHECK(std::equal(p.data, p.data + p.numel(), t[n].begin()));
  });
  CHECK(shared == 4 + 8 * c.layers);  // embed, final norm (2), unembed; per block two norms (4) + mlp (4)
  CHECK(fresh > 0);
  CHECK(models::copy_shared_weights(teacher, student) == shared);
}

TEST_CASE("copy_shared_weights rejects a shape mismatch") {
  auto c = tiny();
  models::gpt_neox<backend::cpu> teacher(c);
  auto c2 = c;
  c2.intermediate = 24;
  models::hyena_student<models::gpt_neox<backend::cpu>> student(c2);
  CHECK_THROWS_AS(models::copy_shared_weights(teacher, student), hyena::error);
}

// on_backend<M, B> is M's twin on another backend (what `hyena ... --device cuda` uploads a
// host-loaded model into); copy_weights fills it, across scalar types too.
static_assert(std::is_same_v<models::on_backend<models::gpt_neox<backend::cpu>, backend::cpu_ref, double>, teacher_d>);
static_assert(std::is_same_v<models::on_backend<student_d, backend::cpu>,
                             models::hyena_student<models::gpt_neox<backend::cpu, double>>>);

TEST_CASE("copy_weights copies every parameter, mixers included, across backends and scalar types") {
  auto c = tiny();
  student_d from(c);
  rng r(3);
  from.init(r);
  testing::nudge_parameters(from, 4);
  models::on_backend<student_d, backend::cpu, float> to(c);
  index_t count = 0;
  from.for_each_parameter([&](const std::string&, auto&, auto&) { ++count; });
  CHECK(models::copy_weights(from, to) == count);
  std::map<std::string, std::vector<double>> want;
  from.for_each_parameter(
      [&](const std::string& n, view<double>& p, view<double>&) { want[n].assign(p.data, p.data + p.numel()); });
  to.for_each_parameter([&](const std::string& n, view<float>& p, view<float>&) {
    CAPTURE(n);
    REQUIRE(want.count(n));
    for (index_t i = 0; i < p.numel(); ++i) CHECK(p.data[i] == float(want[n][std::size_t(i)]));
  });
  // Another shape is refused by name.
  auto c2 = c;
  c2.hidden = 10;
  models::on_backend<student_d, backend::cpu, float> other(c2);
  CHECK_THROWS_WITH_AS(models::copy_weights(from, other), doctest::Contains("copy_weights:"), hyena::error);
}
