// train/checkpoint.hpp: a model (and optionally its optimizer) in one safetensors file.
//
// Tensors: "model.<parameter name>" and "optim.<state name>" (fp32). Metadata: the model
// config as JSON under "hyena.config", the architecture under "hyena.arch", and any
// string the caller adds (training step, data position, ...). Files are written
// atomically: a crash leaves the previous checkpoint intact.
#pragma once
#include <cstddef>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <type_traits>

#include "../io/safetensors.hpp"
#include "../models/config_json.hpp"
#include "../nn/hyena_modal_form.hpp"
#include "adamw.hpp"

namespace hyena::train {

using metadata = std::map<std::string, std::string>;


namespace detail {
// A host view of `v`: itself in host memory, else a copy kept in `keep` (a deque: its elements
// stay put) until the file is written.
template <class T, class M>
view<T> host_view(const view<T, M>& v, std::deque<tensor<T>>& keep) {
  if constexpr (std::is_same_v<M, host_memory>) {
    return v;
  } else {
    HYENA_CHECK(v.contiguous(), "checkpoint: a device tensor to save is not contiguous");
    keep.emplace_back(v.shape);
    M::to_host(keep.back().data(), v.data, sizeof(T) * std::size_t(v.numel()));
    return keep.back().v();
  }
}
// Reads tensor `name` of `f` into `dst`, through a host copy when dst is not in host memory.
template <class T, class M>
void read_into(const io::safetensors_file& f, const std::string& name, const view<T, M>& dst) {
  if constexpr (std::is_same_v<M, host_memory>) {
    f.read(name, dst);
  } else {
    HYENA_CHECK(dst.contiguous(), "checkpoint: a device tensor to load is not contiguous");
    tensor<T> staging(dst.shape);
    f.read(name, staging.v());
    M::to_device(dst.data, staging.data(), sizeof(T) * std::size_t(dst.numel()));
  }
}
}  // namespace detail

// The optimizer may run on another backend than the model's (an adamw<float> over a cpu_ref
// model's host tensors, say); its state is staged like the model's tensors.
template <class Model, class OptimizerBackend = typename Model::backend>
void save_checkpoint(const std::string& path, Model& model,
                     adamw<typename Model::scalar, OptimizerBackend>* optimizer = nullptr,
                     const metadata& extra = {}, const std::string& arch = {},
                     const nn::hyena_modal_form<typename Model::scalar>* modal = nullptr) {
  io::safetensors_writer w;
  std::deque<tensor<typename Model::scalar>> staged;  // host copies of a device model's tensors
  // Stored in the model's own precision, so a resumed run continues exactly.
  constexpr io::dtype as = std::is_same_v<typename Model::scalar, double> ? io::dtype::F64 : io::dtype::F32;
  model.for_each_parameter(
      [&](const std::string& name, auto& p, auto&) { w.add("model." + name, detail::host_view(p, staged), as); });
  if (optimizer)
    for (auto& s : optimizer->state_tensors()) w.add("optim." + s.name, detail::host_view(s.v, staged), as);
  if (modal) {  // the recurrent form of a Hyena model's filters: "modal.<layer>.poles" / ".residues"
    for (std::size_t l = 0; l < modal->poles.size(); ++l) {
      w.add("modal." + std::to_string(l) + ".poles", modal->poles[l].v());
      w.add("modal." + std::to_string(l) + ".residues", modal->residues[l].v());
    }
    w.add_metadata("hyena.modal_modes", std::to_string(modal->modes));
  }
  w.add_metadata("hyena.config", models::to_json(model.config()).dump());
  if (!arch.empty()) w.add_metadata("hyena.arch", arch);
  for (auto& [k, v] : extra) w.add_metadata(k, v);
  w.write(path);
}

// Without an optimizer (a literal nullptr names no optimizer type to deduce).
template <class Model>
void save_checkpoint(const std::string& path, Model& model, std::nullptr_t, const metadata& extra = {},
                     const std::string& arch = {}, const nn::hyena_modal_form<typename Model::scalar>* modal = nullptr) {
  save_checkpoint(path, model, static_cast<adamw<typename Model::scalar, typename Model::backend>*>(nullptr), extra,
                  arch, modal);
}

// The model config stored in a checkpoint, as `Config` (a model's config_type: the shape
// plus its mixer's hyperparameters; the default reads the shape alone).
template <class Config = models::lm_config<nn::no_hparams>>
Config checkpoint_config(const io::safetensors_file& f) {
  auto it = f.metadata().find("hyena.config");
  HYENA_CHECK(it != f.metadata().end(), "checkpoint ", f.path(), ": no hyena.config metadata (not a hyena checkpoint?)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(it->second);
  } catch (const std::exception& e) {
    HYENA_FAIL("checkpoint ", f.path(), ": hyena.config is not valid JSON: ", e.what());
  }
  try {
    return models::config_from_json<Config>(j);
  } catch (const error& e) {
    HYENA_FAIL("checkpoint ", f.path(), ": ", e.what());
  }
}
template <class Config = models::lm_config<nn::no_hparams>>
Config checkpoint_config(const std::string& path) {
  return checkpoint_config<Config>(io::safetensors_file::open(path));
}

// The modal form stored in a checkpoint (hyena convert --modal-order), if it has one.
template <class T>
std::optional<nn::hyena_modal_form<T>> load_modal_form(const std::string& path, index_t layers) {
  auto f = io::safetensors_file::open(path);
  auto it = f.metadata().find("hyena.modal_modes");
  if (it == f.metadata().end()) return std::nullopt;
  nn::hyena_modal_form<T> form;
  try {
    form.modes = std::stoll(it->second);
  } catch (const std::exception&) {
    HYENA_FAIL("checkpoint ", path, ": hyena.modal_modes '", it->second, "' is not a number");
  }
  HYENA_CHECK(form.modes >= 1, "checkpoint ", path, ": hyena.modal_modes must be >= 1, got ", form.modes);
  for (index_t l = 0; l < layers; ++l) {
    for (const char* part : {"poles", "residues"}) {
      const std::string name = "modal." + std::to_string(l) + "." + part;
      HYENA_CHECK(f.has(name), "checkpoint ", path, ": the modal form lacks ", name);
      auto& dst = std::string(part) == "poles" ? form.poles : form.residues;
      dst.push_back(f.load<T>(name));
      const shape& sh = dst.back().shape();
      HYENA_CHECK(sh.rank == 3 && sh.dims[1] == form.modes && sh.dims[2] == 2, "checkpoint ", path, ": ", name, " is ",
                  sh, ", expected (channels, ", form.modes, ", 2)");
    }
  }
  return form;
}

// Reads every parameter of `model` (and the optimizer state, when given) from `path`.
// Every tensor must be present with the model's shape. Returns the metadata.
template <class Model, class OptimizerBackend = typename Model::backend>
metadata load_checkpoint(const std::string& path, Model& model,
                         adamw<typename Model::scalar, OptimizerBackend>* optimizer = nullptr) {
  auto f = io::safetensors_file::open(path);
  model.for_each_parameter([&](const std::string& name, auto& p, auto&) {
    HYENA_CHECK(f.has("model." + name), "checkpoint ", path, ": missing tensor model.", name);
    detail::read_into(f, "model." + name, p);
  });
  if (optimizer)
    for (auto& s : optimizer->state_tensors()) {
      HYENA_CHECK(f.has("optim." + s.name), "checkpoint ", path, ": missing optimizer state optim.", s.name);
      detail::read_into(f, "optim." + s.name, s.v);
    }
  return f.metadata();
}

template <class Model>
metadata load_checkpoint(const std::string& path, Model& model, std::nullptr_t) {
  return load_checkpoint(path, model, static_cast<adamw<typename Model::scalar, typename Model::backend>*>(nullptr));
}

}  // namespace hyena::train
