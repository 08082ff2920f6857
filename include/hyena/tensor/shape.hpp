// shape.hpp: a small fixed-capacity shape (rank <= 4) with row-major strides.
#pragma once
#include <array>
#include <initializer_list>
#include <ostream>
#include <sstream>
#include <string>

#include "../config.hpp"

namespace hyena {

inline constexpr int max_rank = 4;

struct shape {
  std::array<index_t, max_rank> dims{};
  int rank = 0;

  shape() = default;
  shape(std::initializer_list<index_t> d) {
    HYENA_CHECK(d.size() <= max_rank, "shape: rank ", d.size(), " exceeds ", max_rank);
    for (index_t x : d) {
      HYENA_CHECK(x >= 0, "shape: negative dimension ", x);
      dims[rank++] = x;
    }
  }

  index_t operator[](int i) const { return dims[i]; }
  index_t numel() const {
    index_t n = 1;
    for (int i = 0; i < rank; ++i) n *= dims[i];
    return n;
  }
  // Row-major strides: the last dimension is contiguous.
  std::array<index_t, max_rank> row_major_strides() const {
    std::array<index_t, max_rank> s{};
    index_t acc = 1;
    for (int i = rank - 1; i >= 0; --i) {
      s[i] = acc;
      acc *= dims[i];
    }
    return s;
  }
  friend bool operator==(const shape& a, const shape& b) {
    if (a.rank != b.rank) return false;
    for (int i = 0; i < a.rank; ++i)
      if (a.dims[i] != b.dims[i]) return false;
    return true;
  }
  std::string str() const {
    std::ostringstream os;
    os << '[';
    for (int i = 0; i < rank; ++i) os << (i ? ", " : "") << dims[i];
    os << ']';
    return os.str();
  }
  friend std::ostream& operator<<(std::ostream& os, const shape& s) { return os << s.str(); }
};

}  // namespace hyena
