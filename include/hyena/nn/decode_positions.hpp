// nn/decode_positions.hpp: where a mixer's decode ops read the rows' positions.
//
// models::decoder hands a mixer's decode_step each row's position in host memory: the mixer
// places cache and history rows with it on the host. The decode ops (rotary_at,
// attention_decode, the convolution steps) read positions where the backend's tensors live, so
// a mixer passes them positions_for_ops(ctx, pos, rows): `pos` itself for host memory, else a
// copy in the backend's memory kept in the context (one small upload per call).
#pragma once
#include <type_traits>

#include "../backend/backend.hpp"
#include "../tensor/tensor.hpp"

namespace hyena::nn {

template <class Memory>
struct position_buffer {
  tensor<index_t, Memory> rows;
};

template <class B>
const index_t* positions_for_ops(typename B::context& ctx, const index_t* pos, index_t rows) {
  using M = typename B::memory;
  if constexpr (std::is_same_v<M, host_memory>) {
    return pos;
  } else {
    auto& buf = ctx.template state<position_buffer<M>>();
    if (!buf.rows.data() || buf.rows.numel() < rows) buf.rows = tensor<index_t, M>(shape{rows});  // (a default tensor has no data)
    M::to_device(buf.rows.data(), pos, sizeof(index_t) * std::size_t(rows));
    return buf.rows.data();
  }
}

}  // namespace hyena::nn
