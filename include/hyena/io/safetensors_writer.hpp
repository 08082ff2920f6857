// io/safetensors_writer.hpp: writes float/double tensors as a safetensors file.
//
// Entries keep a pointer to the caller's data, which must stay valid until write().
// Order in the file: by element size (F64 first, then F32, then F16/BF16), by name within
// a size. Tensors are packed without gaps (Python's loader rejects gaps) after a header
// padded with spaces to a multiple of 8 bytes, so each tensor is aligned to its element
// size. write() goes through a temp file in the destination folder, fsyncs it and
// renames it into place, so `path` is either the old file or the complete new one.
#pragma once
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../tensor/tensor.hpp"
#include "atomic_file.hpp"
#include "half.hpp"
#include "safetensors_dtype.hpp"

namespace hyena::io {

class safetensors_writer {
 public:
  // Adds `data` (row-major, `shape`) to be stored as `as` (F32, F64, F16 or BF16).
  template <class T>
  void add(const std::string& name, const std::vector<index_t>& shape, const T* data, dtype as = dtype::F32) {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "safetensors_writer: float or double data");
    HYENA_CHECK(!name.empty(), "safetensors_writer: empty tensor name");
    HYENA_CHECK(name != "__metadata__", "safetensors_writer: '__metadata__' is reserved, not a tensor name");
    HYENA_CHECK(as == dtype::F32 || as == dtype::F64 || as == dtype::F16 || as == dtype::BF16,
                "safetensors_writer: tensor '", name, "': cannot write dtype ", dtype_name(as));
    for (const auto& e : entries_)
      HYENA_CHECK(e.name != name, "safetensors_writer: duplicate tensor name '", name, "'");
    index_t n = 1;
    for (index_t d : shape) {
      HYENA_CHECK(d >= 0, "safetensors_writer: tensor '", name, "': negative dimension in ", dims_str(shape));
      n *= d;
    }
    HYENA_CHECK(n == 0 || data != nullptr, "safetensors_writer: tensor '", name, "': null data");
    entries_.push_back({name, as, shape, data, std::is_same_v<T, double>, n});
  }

  // A contiguous host view or tensor (its shape is taken from it).
  template <class T, class M>
  void add(const std::string& name, view<T, M> v, dtype as = dtype::F32) {
    static_assert(std::is_same_v<M, host_memory>, "safetensors_writer: host memory only");
    HYENA_CHECK(v.contiguous(), "safetensors_writer: tensor '", name, "': view is not contiguous");
    std::vector<index_t> s(v.shape.dims.begin(), v.shape.dims.begin() + v.rank());
    add<std::remove_const_t<T>>(name, s, v.data, as);
  }
  template <class T>
  void add(const std::string& name, const tensor<T>& t, dtype as = dtype::F32) {
    add(name, t.v(), as);
  }

  void add_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }
  std::size_t size() const { return entries_.size(); }

  // Writes the file atomically (temp file + fsync + rename); throws hyena::error on failure,
  // leaving no temp file behind and `path` untouched.
  void write(const std::string& path) const {
    std::vector<const entry*> order;
    for (const auto& e : entries_) order.push_back(&e);
    std::stable_sort(order.begin(), order.end(), [](const entry* a, const entry* b) {
      std::size_t sa = dtype_size(a->as), sb = dtype_size(b->as);
      return sa != sb ? sa > sb : a->name < b->name;
    });

    nlohmann::json header = nlohmann::json::object();
    std::uint64_t offset = 0;
    for (const entry* e : order) {
      std::uint64_t bytes = static_cast<std::uint64_t>(e->numel) * dtype_size(e->as);
      header[e->name] = {{"dtype", dtype_name(e->as)}, {"shape", e->shape}, {"data_offsets", {offset, offset + bytes}}};
      offset += bytes;
    }
    if (!metadata_.empty()) header["__metadata__"] = metadata_;
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');  // the data section starts 8-byte aligned

    atomic_file tmp(path, "safetensors_writer:");
    std::uint64_t n = text.size();
    tmp.write(&n, 8);
    tmp.write(text.data(), text.size());
    for (const entry* e : order) write_data(tmp, *e);
    tmp.commit();
  }

 private:
  struct entry {
    std::string name;
    dtype as;
    std::vector<index_t> shape;
    const void* data;
    bool is_double;
    index_t numel;
  };


  template <class S>
  static void write_data(atomic_file& f, const entry& e, const S* src) {
    const std::size_t n = static_cast<std::size_t>(e.numel);
    if ((e.as == dtype::F32 && std::is_same_v<S, float>) || (e.as == dtype::F64 && std::is_same_v<S, double>)) {
      f.write(src, n * sizeof(S));  // already in the file's format
      return;
    }
    constexpr std::size_t chunk = 1 << 16;
    std::vector<unsigned char> buf(chunk * 8);
    for (std::size_t i = 0; i < n; i += chunk) {
      std::size_t m = std::min(chunk, n - i);
      unsigned char* out = buf.data();
      for (std::size_t j = 0; j < m; ++j) {
        S v = src[i + j];
        switch (e.as) {
          case dtype::F64: {
            double d = static_cast<double>(v);
            std::memcpy(out + 8 * j, &d, 8);
            break;
          }
          case dtype::F32: {
            float x = static_cast<float>(v);
            std::memcpy(out + 4 * j, &x, 4);
            break;
          }
          case dtype::F16: {
            std::uint16_t h = float_to_fp16(static_cast<float>(v));  // via float: rounds twice from double
            std::memcpy(out + 2 * j, &h, 2);
            break;
          }
          default: {
            std::uint16_t h = float_to_bf16(static_cast<float>(v));
            std::memcpy(out + 2 * j, &h, 2);
            break;
          }
        }
      }
      f.write(out, m * dtype_size(e.as));
    }
  }
  static void write_data(atomic_file& f, const entry& e) {
    if (e.numel == 0) return;
    if (e.is_double)
      write_data(f, e, static_cast<const double*>(e.data));
    else
      write_data(f, e, static_cast<const float*>(e.data));
  }

  std::vector<entry> entries_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace hyena::io
