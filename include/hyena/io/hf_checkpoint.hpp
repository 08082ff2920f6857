// io/hf_checkpoint.hpp: load (and write) Hugging Face GPT-NeoX / Llama checkpoints.
//
// A folder holds config.json and model.safetensors, or shards listed in the weight_map of
// model.safetensors.index.json. F32, F16 and BF16 (and F64) tensors convert to the model's
// scalar. Parameter names, ours (for_each_parameter) -> HF, layer i:
//
//   ours                      gpt_neox                                  llama
//   embed.weight              gpt_neox.embed_in.weight                  model.embed_tokens.weight
//   blocks.i.norm1.*          gpt_neox.layers.i.input_layernorm.*       model.layers.i.input_layernorm.weight
//   blocks.i.mixer.qkv.*      ...layers.i.attention.query_key_value.*   model.layers.i.self_attn.{q,k,v}_proj.*
//                             (rows per head [q|k|v]: regrouped)        (rows concatenated q | k | v)
//   blocks.i.mixer.out.*      ...layers.i.attention.dense.*             model.layers.i.self_attn.o_proj.*
//   blocks.i.norm2.*          ...layers.i.post_attention_layernorm.*    model.layers.i.post_attention_layernorm.weight
//   blocks.i.mlp.fc_in.*      ...layers.i.mlp.dense_h_to_4h.*           -
//   blocks.i.mlp.fc_out.*     ...layers.i.mlp.dense_4h_to_h.*           -
//   blocks.i.mlp.gate/up/down -                                         model.layers.i.mlp.{gate,up,down}_proj.*
//   final_norm.*              gpt_neox.final_layer_norm.*               model.norm.weight
//   unembed.weight            embed_out.weight                          lm_head.weight   (absent when tied)
//
// Our fused qkv rows are [q all heads | k all kv heads | v all kv heads]; GPT-NeoX's
// query_key_value is view(heads, 3, head_dim): row (h*3 + t)*head_dim + d holds our row
// (t*heads + h)*head_dim + d. Every tensor of the folder must be read into a parameter, except
// the non-parameter buffers older transformers saved (rotary_emb.inv_freq, GPT-NeoX's causal
// mask attention.bias and attention.masked_bias) and, for tied embeddings, an lm_head /
// embed_out equal to the input embedding; any other tensor is an error naming it (a weight
// the model would silently drop, such as mlp biases of a config that does not declare them).
#pragma once
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "hf_config.hpp"
#include "safetensors.hpp"

namespace hyena::io {

namespace hf_detail {

// One HF tensor that fills rows [row0, row0 + shape[0]) of one of our parameters.
struct piece {
  std::string name;
  std::vector<index_t> shape;
  index_t row0 = 0;
};
struct source {
  std::vector<piece> pieces;
  bool neox_qkv = false;  // one piece, rows interleaved per head
};

inline bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

// Our block-relative name -> HF's, for the parts that map one to one.
inline std::string block_part(const std::string& arch, const std::string& rest) {
  static const std::map<std::string, std::string> neox = {
      {"norm1.", "input_layernorm."},  {"norm2.", "post_attention_layernorm."}, {"mixer.out.", "attention.dense."},
      {"mlp.fc_in.", "mlp.dense_h_to_4h."}, {"mlp.fc_out.", "mlp.dense_4h_to_h."}};
  static const std::map<std::string, std::string> llama = {
      {"norm1.", "input_layernorm."}, {"norm2.", "post_attention_layernorm."}, {"mixer.out.", "self_attn.o_proj."},
      {"mlp.gate.", "mlp.gate_proj."}, {"mlp.up.", "mlp.up_proj."},           {"mlp.down.", "mlp.down_proj."}};
  for (const auto& [ours, theirs] : arch == "gpt_neox" ? neox : llama)
    if (starts_with(rest, ours)) return theirs + rest.substr(ours.size());
  return {};
}

// The HF tensors behind our parameter `ours` of shape `dims`; throws when it has none.
inline source sources_for(const std::string& arch, const models::model_config& c, const std::string& ours,
                          const std::vector<index_t>& dims, const std::string& where = "hf checkpoint") {
  const bool neox = arch == "gpt_neox";
  HYENA_CHECK(neox || arch == "llama", where, ": unknown architecture '", arch, "'");
  const std::string top = neox ? "gpt_neox." : "model.";
  auto one = [&](const std::string& name) { return source{{piece{name, dims, 0}}, false}; };
  if (ours == "embed.weight") return one(top + (neox ? "embed_in.weight" : "embed_tokens.weight"));
  if (ours == "unembed.weight") return one(neox ? "embed_out.weight" : "lm_head.weight");
  if (starts_with(ours, "final_norm.")) return one(top + (neox ? "final_layer_norm." : "norm.") + ours.substr(11));
  if (starts_with(ours, "blocks.")) {
    const auto dot = ours.find('.', 7);
    const std::string layer = ours.substr(7, dot - 7), rest = dot == std::string::npos ? "" : ours.substr(dot + 1);
    const std::string prefix = top + "layers." + layer + ".";
    if (starts_with(rest, "mixer.qkv.")) {
      const std::string kind = rest.substr(10);  // weight or bias
      if (neox) return {{piece{prefix + "attention.query_key_value." + kind, dims, 0}}, true};
      const index_t hd = c.head_dim(), q_rows = c.heads * hd, kv_rows = c.kv_heads * hd;
      auto part = [&](const char* proj, index_t rows, index_t row0) {
        std::vector<index_t> d = dims;
        d[0] = rows;
        return piece{prefix + "self_attn." + proj + "." + kind, d, row0};
      };
      return {{part("q_proj", q_rows, 0), part("k_proj", kv_rows, q_rows), part("v_proj", kv_rows, q_rows + kv_rows)},
              false};
    }
    const std::string part = block_part(arch, rest);
    // Llama norms have no bias: a model with one is not a llama.
    const bool llama_norm_bias = !neox && part.find("layernorm.bias") != std::string::npos;
    if (!part.empty() && !llama_norm_bias) return one(prefix + part);
  }
  HYENA_FAIL(where, ": parameter '", ours, "' has no counterpart in a ", arch,
             " checkpoint (is the model a ", arch, "?)");
}

// Row r of GPT-NeoX's query_key_value -> our qkv row.
inline index_t neox_qkv_row(index_t r, index_t heads, index_t hd) {
  const index_t h = r / (3 * hd), t = (r / hd) % 3, d = r % hd;
  return (t * heads + h) * hd + d;
}

inline std::vector<index_t> dims_of(const hyena::shape& s) { return {s.dims.begin(), s.dims.begin() + s.rank}; }

// The tensors of a checkpoint folder, single-file or sharded; shards open on first use.
class tensor_store {
 public:
  explicit tensor_store(const std::string& folder) : folder_(folder) {
    namespace fs = std::filesystem;
    const fs::path dir(folder), single = dir / "model.safetensors", index = dir / "model.safetensors.index.json";
    if (fs::exists(single)) {
      single_ = single.string();
      return;
    }
    const bool bin = fs::exists(dir / "pytorch_model.bin");
    HYENA_CHECK(fs::exists(index), "hf checkpoint ", folder, ": no model.safetensors or model.safetensors.index.json",
                bin ? " (pytorch_model.bin is not supported: save with safe_serialization=True)" : "");
    index_ = index.string();
    std::ifstream in(index_);
    HYENA_CHECK(in.good(), index_, ": cannot open");
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      HYENA_FAIL(index_, ": not valid JSON: ", e.what());
    }
    HYENA_CHECK(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(), index_,
                ": missing the 'weight_map' object");
    for (auto& [name, file] : j["weight_map"].items()) {
      HYENA_CHECK(file.is_string(), index_, ": weight_map entry for '", name, "' is not a file name");
      map_[name] = file.get<std::string>();
    }
  }

  // Every tensor name of the folder: the single file's, or the weight_map's plus any tensor a
  // shard holds that the weight_map does not list. Each with the file that holds it.
  std::map<std::string, std::string> all_tensors() {
    std::map<std::string, std::string> out;
    if (!single_.empty()) {
      for (const auto& n : open(single_).names()) out[n] = single_;
      return out;
    }
    std::set<std::string> shards;
    for (const auto& [name, file] : map_) shards.insert(file);
    for (const auto& file : shards) {
      const std::string shard = (std::filesystem::path(folder_) / file).string();
      HYENA_CHECK(std::filesystem::exists(shard), index_, ": shard '", file, "' does not exist: ", shard);
      for (const auto& n : open(shard).names()) out.emplace(n, shard);
    }
    for (const auto& [name, file] : map_)
      HYENA_CHECK(out.count(name), index_, ": weight_map puts tensor '", name, "' in '", file,
                  "', which does not hold it");
    return out;
  }

  // The file holding HF tensor `name` (`why` says which of our parameters needs it).
  const safetensors_file& file_for(const std::string& name, const std::string& why) {
    if (!single_.empty()) {
      const auto& f = open(single_);
      HYENA_CHECK(f.has(name), single_, ": missing tensor '", name, "' (for ", why, ")");
      return f;
    }
    auto it = map_.find(name);
    HYENA_CHECK(it != map_.end(), index_, ": tensor '", name, "' (for ", why, ") is not in weight_map");
    const std::string shard = (std::filesystem::path(folder_) / it->second).string();
    HYENA_CHECK(std::filesystem::exists(shard), index_, ": shard '", it->second, "' (holding '", name,
                "') does not exist: ", shard);
    const auto& f = open(shard);
    HYENA_CHECK(f.has(name), shard, ": missing tensor '", name, "' (weight_map in ", index_, " says it is here)");
    return f;
  }

 private:
  const safetensors_file& open(const std::string& path) {
    auto& slot = files_[path];
    if (!slot) slot = std::make_unique<safetensors_file>(safetensors_file::open(path));
    return *slot;
  }
  std::string folder_, single_, index_;
  std::map<std::string, std::string> map_;
  std::map<std::string, std::unique_ptr<safetensors_file>> files_;
};

// The model must be the one config.json describes (shapes, and what changes the numbers).
inline void check_config(const std::string& source, const models::model_config& file,
                         const models::model_config& model) {
  auto same = [&](const char* what, auto a, auto b) {
    HYENA_CHECK(a == b, source, ": the model has ", what, " ", a, " but the checkpoint's config gives ", b);
  };
  same("vocab", model.vocab, file.vocab);
  same("hidden", model.hidden, file.hidden);
  same("layers", model.layers, file.layers);
  same("heads", model.heads, file.heads);
  same("kv_heads", model.kv_heads, file.kv_heads);
  same("intermediate", model.intermediate, file.intermediate);
  same("tie_embeddings", model.tie_embeddings, file.tie_embeddings);
  same("attention_bias", model.attention_bias, file.attention_bias);
  same("mlp_bias", model.mlp_bias, file.mlp_bias);
  same("parallel_residual", model.parallel_residual, file.parallel_residual);
  same("rotary dims", nn::rotary_config::dims_for(model.head_dim(), model.rotary_pct),
       nn::rotary_config::dims_for(file.head_dim(), file.rotary_pct));
  HYENA_CHECK(std::abs(model.rotary_base - file.rotary_base) <= 1e-9 * file.rotary_base, source,
              ": the model has rotary_base ", model.rotary_base, " but the checkpoint's config gives ",
              file.rotary_base);
  HYENA_CHECK(std::abs(model.norm_eps - file.norm_eps) <= 1e-6 * file.norm_eps, source, ": the model has norm_eps ",
              model.norm_eps, " but the checkpoint's config gives ", file.norm_eps);
}

// Tensors a checkpoint may hold that are not parameters: recomputed from the config.
inline bool known_buffer(const std::string& arch, const std::string& name) {
  auto ends_with = [&](const char* suffix) {
    const std::string s(suffix);
    return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  if (ends_with(".rotary_emb.inv_freq")) return true;  // both architectures, transformers < 4.3x
  return arch == "gpt_neox" && (ends_with(".attention.bias") || ends_with(".attention.masked_bias"));
}

}  // namespace hf_detail

// Architecture and model_config from `folder`/config.json.
inline hf_model_info hf_model_config(const std::string& folder) {
  return read_hf_config((std::filesystem::path(folder) / "config.json").string());
}

// Reads every parameter of `model` from the HF checkpoint in `folder`. The model's config
// must match config.json; every tensor must be present with the shape it implies.
template <class Model>
void load_hf_weights(const std::string& folder, Model& model) {
  using T = typename Model::scalar;
  static_assert(std::is_same_v<typename Model::memory, host_memory>,
                "load_hf_weights: load into a host (cpu) model, then copy to the device");
  const std::string cfg_path = (std::filesystem::path(folder) / "config.json").string();
  const hf_model_info info = read_hf_config(cfg_path);
  hf_detail::check_config(cfg_path, info.config, model.config());
  hf_detail::tensor_store store(folder);
  const auto& c = model.config();
  std::set<std::string> consumed;
  model.for_each_parameter([&](const std::string& ours, auto& dst, auto&) {
    const auto src = hf_detail::sources_for(info.arch, c, ours, hf_detail::dims_of(dst.shape),
                                             "hf checkpoint " + folder);
    const index_t row_len = dst.shape.rank > 1 ? dst.numel() / dst.shape[0] : 1;
    for (const auto& p : src.pieces) {
      consumed.insert(p.name);
      const auto& f = store.file_for(p.name, "'" + ours + "'");
      const tensor_info& t = f.info(p.name);
      HYENA_CHECK(t.shape == p.shape, f.path(), ": tensor '", p.name, "' has shape ", dims_str(t.shape), ", but ",
                  cfg_path, " implies ", dims_str(p.shape));
      HYENA_CHECK(t.type == dtype::F32 || t.type == dtype::F16 || t.type == dtype::BF16 || t.type == dtype::F64,
                  f.path(), ": tensor '", p.name, "' has dtype ", dtype_name(t.type), " (expected F32, F16 or BF16)");
      if (!src.neox_qkv) {
        hyena::shape s;
        for (index_t d : p.shape) s.dims[s.rank++] = d;
        f.template read<T>(p.name, view<T>(dst.data + p.row0 * row_len, s));
        continue;
      }
      auto tmp = f.template load<T>(p.name);
      for (index_t r = 0; r < p.shape[0]; ++r) {
        const index_t to = hf_detail::neox_qkv_row(r, c.heads, c.head_dim());
        std::copy(tmp.data() + r * row_len, tmp.data() + (r + 1) * row_len, dst.data + to * row_len);
      }
    }
  });
  // No tensor of the folder may be left unread, bar the known buffers and a tied copy of the embedding.
  const std::string embed = info.arch == "gpt_neox" ? "gpt_neox.embed_in.weight" : "model.embed_tokens.weight";
  const std::string unembed = info.arch == "gpt_neox" ? "embed_out.weight" : "lm_head.weight";
  for (const auto& [name, file] : store.all_tensors()) {
    if (consumed.count(name) || hf_detail::known_buffer(info.arch, name)) continue;
    if (name == unembed && c.tie_embeddings) {
      const auto& fu = store.file_for(unembed, "the tied-embedding check");
      const auto& fe = store.file_for(embed, "the tied-embedding check");
      HYENA_CHECK(fu.info(unembed).shape == fe.info(embed).shape, file, ": tensor '", unembed, "' has shape ",
                  dims_str(fu.info(unembed).shape), " but tie_word_embeddings is true and '", embed, "' has ",
                  dims_str(fe.info(embed).shape));
      auto a = fu.template load<double>(unembed);
      auto b = fe.template load<double>(embed);
      HYENA_CHECK(std::equal(a.data(), a.data() + a.numel(), b.data()), file, ": tensor '", unembed,
                  "' differs from '", embed, "' but ", cfg_path, " says tie_word_embeddings is true");
      continue;
    }
    HYENA_FAIL(file, ": tensor '", name, "' is not used by the ", info.arch, " model that ", cfg_path,
               " describes (a weight hyena would drop; is a config field such as mlp_bias or attention_bias "
               "missing?)");
  }
}

// A model built from `folder`'s config.json with its weights loaded. max_seq defaults to
// max_position_embeddings; pass a smaller one to size the activations for shorter inputs.
template <class Model>
Model load_hf(const std::string& folder, index_t max_seq = 0) {
  auto info = hf_model_config(folder);
  if (max_seq > 0) info.config.max_seq = max_seq;
  Model m(info.config);
  load_hf_weights(folder, m);
  return m;
}

// Writes `model` as an HF checkpoint: `folder`/config.json and model.safetensors (as `as`:
// F32, F16 or BF16), which transformers' from_pretrained and load_hf_weights both read.
template <class Model>
void save_hf(const std::string& folder, Model& model, const std::string& arch, dtype as = dtype::F32) {
  using T = typename Model::scalar;
  static_assert(std::is_same_v<typename Model::memory, host_memory>, "save_hf: host (cpu) models only");
  const auto& c = model.config();
  const nlohmann::json cfg = hf_config_json(c, arch);  // checks that `arch` can express the config
  safetensors_writer w;
  std::vector<std::vector<T>> regrouped;  // kept alive until write()
  model.for_each_parameter([&](const std::string& ours, auto& p, auto&) {
    const auto src = hf_detail::sources_for(arch, c, ours, hf_detail::dims_of(p.shape), "save_hf " + folder);
    const index_t row_len = p.shape.rank > 1 ? p.numel() / p.shape[0] : 1;
    for (const auto& pc : src.pieces) {
      if (!src.neox_qkv) {
        w.add<T>(pc.name, pc.shape, p.data + pc.row0 * row_len, as);
        continue;
      }
      auto& buf = regrouped.emplace_back(static_cast<std::size_t>(p.numel()));
      for (index_t r = 0; r < pc.shape[0]; ++r) {
        const index_t from = hf_detail::neox_qkv_row(r, c.heads, c.head_dim());
        std::copy(p.data + from * row_len, p.data + (from + 1) * row_len, buf.data() + r * row_len);
      }
      w.add<T>(pc.name, pc.shape, buf.data(), as);
    }
  });
  w.add_metadata("format", "pt");  // transformers refuses safetensors files without it
  std::filesystem::create_directories(folder);
  w.write((std::filesystem::path(folder) / "model.safetensors").string());
  std::ofstream out(std::filesystem::path(folder) / "config.json");
  out << cfg.dump(2) << "\n";
  HYENA_CHECK(out.good(), "save_hf: cannot write ", folder, "/config.json");
}

}  // namespace hyena::io
