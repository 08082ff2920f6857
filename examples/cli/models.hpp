// models.hpp: the model types the `hyena` CLI knows, by the architecture name our checkpoints
// record ("hyena.arch"), and loading a model from any format we read.
//
// The built-in list has the teachers and their Hyena students. A CLI that should also load a
// user's model (a user mixer in a teacher's block, say) is built from these sources with
// HYENA_CLI_MODELS naming a header that registers it in one line:
//
//   // my_models.hpp
//   #include "my_mixer.hpp"
//   namespace hyena::cli {
//   using user_models = model_list<named_model<"my_gpt_neox", models::with_mixer<gpt_neox, my_mixer>>>;
//   }
//
//   target_compile_definitions(my_hyena PRIVATE HYENA_CLI_MODELS="${CMAKE_CURRENT_SOURCE_DIR}/my_models.hpp")
//
// The header is included by every source that dispatches on a model (the commands are separate
// files), so the registration is a compile definition rather than a line in main.cpp.
// Then `train --arch my_gpt_neox` builds one, and eval/generate/train --teacher load its
// checkpoints, its mixer's hparams read back from the file. See docs/guide.md.
#pragma once
#include <algorithm>
#include <array>
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include <hyena/hyena.hpp>
#include <hyena/models/config_json.hpp>
#include <hyena/train/checkpoint.hpp>

namespace hyena::cli {

using B = backend::cpu;
using gpt_neox = models::gpt_neox<B>;
using llama = models::llama<B>;
using hyena_gpt_neox = models::hyena_student<gpt_neox>;
using hyena_llama = models::hyena_student<llama>;

// A string usable as a template argument (the architecture name of a named_model).
template <std::size_t N>
struct arch_name {
  char text[N]{};
  constexpr arch_name(const char (&s)[N]) { std::copy_n(s, N, text); }  // NOLINT: implicit from a literal
};

// Model type M, saved and loaded under the architecture name `Name`.
template <arch_name Name, class M>
struct named_model {
  using type = M;
  static constexpr std::string_view view{Name.text};
  static std::string name() { return std::string(view); }
};

// The models one dispatch tries, in order.
template <class... Named>
struct model_list {};

template <class A, class B2>
struct concat_models;
template <class... A, class... B2>
struct concat_models<model_list<A...>, model_list<B2...>> {
  using type = model_list<A..., B2...>;
};

// The built-in architectures with their tensors on backend Backend (backend::cpu, or backend::cuda
// in the nvcc-compiled cuda_commands.cu).
template <class Backend>
using builtin_models_on =
    model_list<named_model<"gpt_neox", models::gpt_neox<Backend>>, named_model<"llama", models::llama<Backend>>,
               named_model<"hyena_gpt_neox", models::hyena_student<models::gpt_neox<Backend>>>,
               named_model<"hyena_llama", models::hyena_student<models::llama<Backend>>>>;
using builtin_models = builtin_models_on<B>;

}  // namespace hyena::cli

#ifdef HYENA_CLI_MODELS
#include HYENA_CLI_MODELS  // defines hyena::cli::user_models
#else
namespace hyena::cli {
using user_models = model_list<>;
}  // namespace hyena::cli
#endif

namespace hyena::cli {

using all_models = typename concat_models<builtin_models, user_models>::type;

template <class>
struct list_names;
template <class... Named>
struct list_names<model_list<Named...>> {
  static std::string get() {
    std::string s;
    ((s += (s.empty() ? "" : ", ") + Named::name()), ...);
    return s;
  }
};

// Every architecture this build knows, as "gpt_neox, llama, ...".
inline std::string known_archs() { return list_names<all_models>::get(); }

template <class M>
struct type_tag {
  using type = M;
};

template <class Named, class Fn>
bool try_model(const std::string& arch, Fn& fn) {
  if (arch != Named::name()) return false;
  fn(type_tag<typename Named::type>{});
  return true;
}
template <class... Named, class Fn>
bool try_models(model_list<Named...>, const std::string& arch, Fn& fn) {
  return (try_model<Named>(arch, fn) || ...);  // stops at the first match
}

// A name registered twice would load whichever type comes first, so it is a build error.
template <class... Named>
constexpr bool unique_names(model_list<Named...>) {
  const std::array<std::string_view, sizeof...(Named)> names{Named::view...};
  for (std::size_t i = 0; i < names.size(); ++i)
    for (std::size_t j = i + 1; j < names.size(); ++j)
      if (names[i] == names[j]) return false;
  return true;
}
static_assert(unique_names(all_models{}), "hyena cli: an architecture name is registered twice (HYENA_CLI_MODELS "
              "may not reuse a built-in name)");

// Calls fn(type_tag<Model>{}) for the architecture named `arch`; `where` (a file, say) goes
// into the error when no model of this build has that name.
template <class Fn>
void with_arch(const std::string& arch, Fn&& fn, const std::string& where = {}) {
  if (try_models(all_models{}, arch, fn)) return;
  HYENA_FAIL(where.empty() ? "" : where + ": ", "unknown architecture '", arch, "' (this build knows ", known_archs(),
             "; a user's model loads in a CLI built with its registration, see docs/guide.md)");
}

// with_arch for models on backend Backend: the CPU knows every registered model; another backend
// the built-in ones (a user's model registers for the CPU).
template <class Backend, class Fn>
void with_arch_on(const std::string& arch, Fn&& fn, const std::string& where = {}) {
  if constexpr (std::is_same_v<Backend, B>) {
    with_arch(arch, fn, where);
  } else {
    if (try_models(builtin_models_on<Backend>{}, arch, fn)) return;
    HYENA_FAIL(where.empty() ? "" : where + ": ", "unknown architecture '", arch, "' on ", Backend::name,
               " (it knows ", list_names<builtin_models_on<Backend>>::get(), ")");
  }
}

// The architecture recorded in a checkpoint ("hyena.arch").
inline std::string checkpoint_arch(const std::string& path) {
  auto f = io::safetensors_file::open(path);
  auto it = f.metadata().find("hyena.arch");
  HYENA_CHECK(it != f.metadata().end(), "checkpoint ", path, ": no hyena.arch metadata");
  return it->second;
}

// A model of type M with the config (its mixer's hparams included) and weights of checkpoint `path`.
template <class M>
M load_model(const std::string& path) {
  M m(train::checkpoint_config<typename M::config_type>(path));
  train::load_checkpoint(path, m);
  return m;
}

// Loads a model from any format we read and calls fn(model, arch):
//   a Hugging Face folder (config.json + model.safetensors[.index.json]): GPT-NeoX or Llama;
//   a llama2.c checkpoint (*.bin): Llama;
//   our own checkpoint (*.safetensors with hyena.arch metadata): any architecture of all_models.
template <class Fn>
void with_any_model(const std::string& path, Fn&& fn) {
  namespace fs = std::filesystem;
  if (fs::is_directory(path)) {
    const auto info = io::hf_model_config(path);
    if (info.arch == "gpt_neox") {
      auto m = io::load_hf<gpt_neox>(path);
      return fn(m, info.arch);
    }
    auto m = io::load_hf<llama>(path);
    return fn(m, info.arch);
  }
  HYENA_CHECK(fs::is_regular_file(path), "model ", path, " not found (expected a checkpoint file, a Hugging Face "
              "folder or a llama2.c .bin)");
  if (fs::path(path).extension() == ".bin") {
    auto m = io::load_llama2c<B, float>(path);
    return fn(m, std::string("llama"));
  }
  const std::string arch = checkpoint_arch(path);
  with_arch(arch, [&](auto tag) {
    auto m = load_model<typename decltype(tag)::type>(path);
    fn(m, arch);
  }, "checkpoint " + path);
}

// with_any_model for models on backend Backend: the model is read on the host, then its twin on
// Backend is built and every weight copied over (the host copy is freed when fn returns).
template <class Backend, class Fn>
void with_any_model_on(const std::string& path, Fn&& fn) {
  if constexpr (std::is_same_v<Backend, B>) {
    with_any_model(path, fn);
  } else {
    with_any_model(path, [&](auto& host_model, const std::string& arch) {
      using M = models::on_backend<std::decay_t<decltype(host_model)>, Backend>;
      M m(host_model.config());
      models::copy_weights(host_model, m);
      fn(m, arch);
    });
  }
}

}  // namespace hyena::cli
