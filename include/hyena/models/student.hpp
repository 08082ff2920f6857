// models/student.hpp: the Hyena student of a teacher, and building one from it.
//
//   using Student = with_mixer<Teacher, nn::hyena_operator>;
//
// keeps the teacher's embedding, norms, MLPs and unembedding types and swaps only the
// mixer. make_student copies every shared weight and initialises the mixers fresh
// (stage 0 of the distillation: "scavenging").
#pragma once
#include <string>
#include <vector>

#include "../nn/concepts.hpp"
#include "../nn/hyena.hpp"
#include "../tensor/transfer.hpp"
#include "causal_lm.hpp"

namespace hyena::models {

template <class Model, template <class, class> class NewMixer, class B = typename Model::backend,
          class T = typename Model::scalar>
using rebind_model = causal_lm<typename Model::block_type::template rebind<B, T, NewMixer>>;

// The same model (same blocks, same mixer) on backend B with scalar type T: the device twin of a
// model loaded on the host, say (fill it with copy_weights).
template <class Model, class B, class T = typename Model::scalar>
using on_backend = causal_lm<typename Model::block_type::template on_backend<B, T>>;

// Checks NewMixer against the mixer contract (nn/concepts.hpp) before the model type is formed,
// so a broken mixer is reported at the user's with_mixer line.
template <class Model, template <class, class> class NewMixer>
struct checked_rebind {
  static_assert(nn::check_mixer<NewMixer<typename Model::backend, typename Model::scalar>>());
  using type = rebind_model<Model, NewMixer>;
};

// The same model with another mixer.
template <class Model, template <class, class> class NewMixer>
using with_mixer = typename checked_rebind<Model, NewMixer>::type;

// The Hyena student of a teacher type.
template <class Teacher>
using hyena_student = with_mixer<Teacher, nn::hyena_operator>;

// True for parameter names that belong to a block's mixer (not shared with a student).
inline bool is_mixer_parameter(const std::string& name) { return name.find(".mixer.") != std::string::npos; }

namespace detail {
// Copies into every parameter of `to` whose name passes `wanted` the parameter of `from` with that
// name, which must exist with the same shape. Returns the number of tensors copied. The models may
// live in different memories and differ in scalar type (the values then pass through the host).
template <class From, class To, class Wanted>
index_t copy_named_parameters(From& from, To& to, Wanted wanted, const char* who) {
  using FT = typename From::scalar;
  using TT = typename To::scalar;
  using FM = typename From::backend::memory;
  using TM = typename To::backend::memory;
  std::map<std::string, view<FT, FM>> source;
  from.for_each_parameter([&](const std::string& n, auto& p, auto&) { source[n] = p; });
  index_t copied = 0;
  to.for_each_parameter([&](const std::string& n, auto& p, auto&) {
    if (!wanted(n)) return;
    auto it = source.find(n);
    HYENA_CHECK(it != source.end(), who, ": the source model has no parameter ", n);
    HYENA_CHECK(it->second.shape == p.shape, who, ": ", n, " is ", it->second.shape, " in the source model but ",
                p.shape, " in the destination");
    if constexpr (std::is_same_v<FT, TT> && std::is_same_v<FM, TM>) {
      FM::copy(p.data, it->second.data, sizeof(FT) * std::size_t(p.numel()));
    } else {
      const std::vector<FT> values = to_host_vector(it->second);
      const std::vector<TT> converted(values.begin(), values.end());
      copy_from_host(p, converted.data());
    }
    ++copied;
  });
  return copied;
}
}  // namespace detail

// Copies every parameter of `from` whose name exists in `to` with the same shape, except the
// mixers (a teacher's shared weights into its student). Returns the number of tensors copied.
// The models may live in different memories and differ in scalar type.
template <class From, class To>
index_t copy_shared_weights(From& from, To& to) {
  return detail::copy_named_parameters(
      from, to, [](const std::string& n) { return !is_mixer_parameter(n); }, "copy_shared_weights");
}

// Copies every parameter of `from` into `to`, a model of the same architecture and config on any
// backend or scalar type (a model loaded on the host into its on_backend<M, backend::cuda> twin).
// Throws hyena::error naming the first parameter `from` lacks or has in another shape.
template <class From, class To>
index_t copy_weights(From& from, To& to) {
  return detail::copy_named_parameters(from, to, [](const std::string&) { return true; }, "copy_weights");
}

// A student of `Student` type with the teacher's shape and the mixer hyperparameters `h`,
// every shared weight copied from the teacher and the mixers freshly initialised from `r`.
template <class Student, class Teacher>
Student make_student(Teacher& teacher, rng& r, const typename Student::mixer_hparams& h = {}) {
  Student s(typename Student::config_type(teacher.config(), h));
  s.init(r);
  copy_shared_weights(teacher, s);
  return s;
}

}  // namespace hyena::models
