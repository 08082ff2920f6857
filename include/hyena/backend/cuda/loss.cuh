// cuda/loss.cuh: fused losses over the vocabulary, mirroring cpu_ref/loss.hpp. One block per
// row computes max, log-sum-exp, the row loss and the gradient in double; row losses go to a
// device buffer whose sum (fixed order, double) is copied back, so each call syncs once.
#pragma once
#include <climits>
#include <cstdint>

#include "../cpu_ref/loss.hpp"  // ignore_target
#include "common.cuh"

namespace hyena::backend {

namespace cuda_detail {

// counts[0] += valid rows; counts[1] = min bad row (init LLONG_MAX).
template <int = 0>  // a template, so the header can be included by several TUs
__global__ void count_targets_kernel(index_t rows, index_t vocab, const std::int32_t* targets,
                                     unsigned long long* count, long long* first_bad) {
  unsigned long long local = 0;
  HYENA_GRID_LOOP(r, rows) {
    std::int32_t t = targets[r];
    if (t == ignore_target) continue;
    if (t >= 0 && t < vocab)
      ++local;
    else
      atomicMin(first_bad, (long long)r);
  }
  if (local) atomicAdd(count, local);
}
template <int = 0>  // a template, so the header can be included by several TUs
__global__ void count_init_kernel(unsigned long long* count, long long* first_bad) {
  *count = 0;
  *first_bad = LLONG_MAX;
}

template <class T>
__global__ void __launch_bounds__(1024)
    cross_entropy_kernel(index_t vocab, const T* logits, const std::int32_t* targets, T* losses, T* dlogits,
                         T grad_scale, double* row_loss) {
  __shared__ double sh[33];
  index_t r = blockIdx.x;
  const T* x = logits + r * vocab;
  std::int32_t t = targets[r];
  if (t == ignore_target) {  // the whole block takes this branch
    if (threadIdx.x == 0) {
      if (losses) losses[r] = T(0);
      row_loss[r] = 0;
    }
    if (dlogits)
      for (index_t i = threadIdx.x; i < vocab; i += blockDim.x) dlogits[r * vocab + i] = T(0);
    return;
  }
  double m = -HUGE_VAL;
  for (index_t i = threadIdx.x; i < vocab; i += blockDim.x) m = max(m, double(x[i]));
  m = block_max(m, sh, -HUGE_VAL);
  double s = 0;
  for (index_t i = threadIdx.x; i < vocab; i += blockDim.x) s += exp(double(x[i]) - m);
  double lse = m + log(block_sum(s, sh));
  if (threadIdx.x == 0) {
    double loss = lse - double(x[t]);
    if (losses) losses[r] = T(loss);
    row_loss[r] = loss;
  }
  if (dlogits)
    for (index_t i = threadIdx.x; i < vocab; i += blockDim.x)
      dlogits[r * vocab + i] = T(double(grad_scale) * (exp(double(x[i]) - lse) - (i == t ? 1.0 : 0.0)));
}

// log sum_i exp(t_i / tau) and log sum_i exp(s_i / tau) over one row, in double, for the whole
// block (the teacher's and the student's normalisers of the KL losses).
template <class T>
__device__ inline void row_log_sum_exps(index_t vocab, const T* t, const T* s, double tau, double* sh, double& lse_t,
                                        double& lse_s) {
  double mt = -HUGE_VAL, ms = -HUGE_VAL;
  for (index_t i = threadIdx.x; i < vocab; i += blockDim.x) {
    mt = max(mt, double(t[i]) / tau);
    ms = max(ms, double(s[i]) / tau);
  }
  mt = block_max(mt, sh, -HUGE_VAL);
  ms = block_max(ms, sh, -HUGE_VAL);
  double st = 0, ss = 0;
  for (index_t i = threadIdx.x; i < vocab; i += blockDim.x) {
    st += exp(double(t[i]) / tau - mt);
    ss += exp(double(s[i]) / tau - ms);
  }
  lse_t = mt + log(block_sum(st, sh));
  lse_s = ms + log(block_sum(ss, sh));
}

template <class T>
__global__ void __launch_bounds__(1024)
    kl_divergence_kernel(index_t vocab, const T* teacher, const T* student, double tau, T* losses, T* dstudent,
                         T grad_scale, double* row_loss) {
  __shared__ double sh[33];
  index_t r = blockIdx.x;
  const T* t = teacher + r * vocab;
  const T* s = student + r * vocab;
  double lse_t, lse_s;
  row_log_sum_exps(vocab, t, s, tau, sh, lse_t, lse_s);
  double kl = 0;
  for (index_t i = threadIdx.x; i < vocab; i += blockDim.x) {
    double pt = exp(double(t[i]) / tau - lse_t);
    kl += pt * ((double(t[i]) - double(s[i])) / tau + (lse_s - lse_t));
    if (dstudent) {
      double ps = exp(double(s[i]) / tau - lse_s);
      dstudent[r * vocab + i] = T(double(grad_scale) * (ps - pt) / tau);
    }
  }
  kl = max(block_sum(kl, sh), 0.0);  // rounding can leave tiny negatives for equal rows
  if (threadIdx.x == 0) {
    if (losses) losses[r] = T(kl);
    row_loss[r] = kl;
  }
}

// loss = KL(p_s || p_t) per row (cpu_ref's reverse_kl_row), one block per row.
template <class T>
__global__ void __launch_bounds__(1024)
    reverse_kl_kernel(index_t vocab, const T* teacher, const T* student, double tau, T* losses, T* dstudent,
                      T grad_scale, double* row_loss) {
  __shared__ double sh[33];
  index_t r = blockIdx.x;
  const T* t = teacher + r * vocab;
  const T* s = student + r * vocab;
  double lse_t, lse_s;
  row_log_sum_exps(vocab, t, s, tau, sh, lse_t, lse_s);
  double kl = 0;
  for (index_t i = threadIdx.x; i < vocab; i += blockDim.x)
    kl += exp(double(s[i]) / tau - lse_s) * ((double(s[i]) - double(t[i])) / tau + (lse_t - lse_s));
  kl = max(block_sum(kl, sh), 0.0);
  if (dstudent)
    for (index_t i = threadIdx.x; i < vocab; i += blockDim.x) {
      const double ps = exp(double(s[i]) / tau - lse_s), diff = (double(s[i]) - double(t[i])) / tau + (lse_t - lse_s);
      dstudent[r * vocab + i] = T(double(grad_scale) * ps * (diff - kl) / tau);
    }
  if (threadIdx.x == 0) {
    if (losses) losses[r] = T(kl);
    row_loss[r] = kl;
  }
}

// True when (va, ia) comes before (vb, ib) in the order "larger logit first, then lower id".
__device__ inline bool ranks_before(double va, index_t ia, double vb, index_t ib) {
  return va > vb || (va == vb && ia < ib);
}

// KL over the teacher's top k (cpu_ref's topk_kl_row), one block per row. The k tokens are
// picked one at a time, each the first (in that order) of those after the previous pick: k block
// reductions, no sort and no marks. ids: k slots per row of workspace.
template <class T>
__global__ void __launch_bounds__(1024)
    topk_kl_kernel(index_t vocab, index_t k, const T* teacher, const T* student, double tau, T* losses, T* dstudent,
                   T grad_scale, double* row_loss, index_t* ids) {
  __shared__ double shv[33], sh[33];
  __shared__ index_t shi[33];
  index_t r = blockIdx.x;
  const T* t = teacher + r * vocab;
  const T* s = student + r * vocab;
  index_t* picked = ids + r * k;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  double prev_v = HUGE_VAL;
  index_t prev_i = -1;
  for (index_t j = 0; j < k; ++j) {
    double bv = -HUGE_VAL;
    index_t bi = vocab;  // none
    for (index_t i = threadIdx.x; i < vocab; i += blockDim.x) {
      const double v = double(t[i]);
      if (ranks_before(prev_v, prev_i, v, i) && (bi == vocab || ranks_before(v, i, bv, bi))) {
        bv = v;
        bi = i;
      }
    }
    for (int off = 16; off > 0; off >>= 1) {  // warp, then block: the first in the order wins
      const double ov = __shfl_down_sync(0xffffffffu, bv, off);
      const index_t oi = __shfl_down_sync(0xffffffffu, bi, off);
      if (oi != vocab && (bi == vocab || ranks_before(ov, oi, bv, bi))) {
        bv = ov;
        bi = oi;
      }
    }
    __syncthreads();
    if (lane == 0) {
      shv[warp] = bv;
      shi[warp] = bi;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      for (int w = 1; w < warps; ++w)
        if (shi[w] != vocab && (bi == vocab || ranks_before(shv[w], shi[w], bv, bi))) {
          bv = shv[w];
          bi = shi[w];
        }
      picked[j] = bi;
      shv[32] = bv;
      shi[32] = bi;
    }
    __syncthreads();
    prev_v = shv[32];
    prev_i = shi[32];
  }
  // q = softmax over the picked logits / tau; the student's log-sum-exp over the vocabulary.
  double mq = -HUGE_VAL, ms = -HUGE_VAL;
  for (index_t j = threadIdx.x; j < k; j += blockDim.x) mq = max(mq, double(t[picked[j]]) / tau);
  for (index_t i = threadIdx.x; i < vocab; i += blockDim.x) ms = max(ms, double(s[i]) / tau);
  mq = block_max(mq, sh, -HUGE_VAL);
  ms = block_max(ms, sh, -HUGE_VAL);
  double zq = 0, zs = 0;
  for (index_t j = threadIdx.x; j < k; j += blockDim.x) zq += exp(double(t[picked[j]]) / tau - mq);
  for (index_t i = threadIdx.x; i < vocab; i += blockDim.x) zs += exp(double(s[i]) / tau - ms);
  const double lse_q = mq + log(block_sum(zq, sh)), lse_s = ms + log(block_sum(zs, sh));
  double kl = 0;
  for (index_t j = threadIdx.x; j < k; j += blockDim.x) {
    const index_t i = picked[j];
    const double log_q = double(t[i]) / tau - lse_q;
    kl += exp(log_q) * (log_q - (double(s[i]) / tau - lse_s));
  }
  kl = max(block_sum(kl, sh), 0.0);
  if (dstudent) {
    for (index_t i = threadIdx.x; i < vocab; i += blockDim.x)
      dstudent[r * vocab + i] = T(double(grad_scale) * exp(double(s[i]) / tau - lse_s) / tau);
    __syncthreads();  // the picked entries are corrected after every entry is written
    for (index_t j = threadIdx.x; j < k; j += blockDim.x) {
      const index_t i = picked[j];
      dstudent[r * vocab + i] =
          T(double(dstudent[r * vocab + i]) - double(grad_scale) * exp(double(t[i]) / tau - lse_q) / tau);
    }
  }
  if (threadIdx.x == 0) {
    if (losses) losses[r] = T(kl);
    row_loss[r] = kl;
  }
}

template <class T>
__global__ void mse_kernel(index_t n, const T* a, const T* b, T* da, T grad_scale, double* partial) {
  __shared__ double sh[33];
  double acc = 0;
  HYENA_GRID_LOOP(i, n) {
    double d = double(a[i]) - double(b[i]);
    acc += d * d;
    if (da) da[i] = T(double(grad_scale) * 2.0 * d);
  }
  acc = block_sum(acc, sh);
  if (threadIdx.x == 0) partial[blockIdx.x] = acc;
}

inline int vocab_threads(index_t vocab) {
  index_t t = (vocab + 31) / 32 * 32;
  return int(t < 32 ? 32 : (t > 1024 ? 1024 : t));
}

// The frame of the per-row loss kernels: workspace for `rows` row losses (and `extra_bytes` more,
// handed to `launch` beside them), the launch, and the row losses summed in a fixed order and read
// back.
template <class Launch>
double sum_of_row_losses(cuda_context& ctx, index_t rows, const char* who, std::size_t extra_bytes, Launch&& launch) {
  if (rows <= 0) return 0.0;
  HYENA_CHECK(rows <= index_t(0x7fffffff), who, ": ", rows, " rows exceed the grid limit");
  carver cv;
  const std::size_t at_rows = cv.take(sizeof(double) * rows), at_slot = cv.take(sizeof(double)),
                    at_extra = cv.take(extra_bytes);
  char* ws = static_cast<char*>(ctx.workspace(cv.used));
  double* row_loss = reinterpret_cast<double*>(ws + at_rows);
  launch(row_loss, ws + at_extra);
  return sum_to_host(ctx, rows, row_loss, reinterpret_cast<double*>(ws + at_slot));
}

}  // namespace cuda_detail

struct cuda_loss_ops {
  // Throws unless every target is in [0, vocab) or ignore_target; returns how many rows count.
  static index_t count_targets(cuda_context& ctx, index_t rows, index_t vocab, const std::int32_t* targets) {
    if (rows <= 0) return 0;
    cuda_detail::carver cv;
    std::size_t at_count = cv.take(sizeof(unsigned long long)), at_bad = cv.take(sizeof(long long));
    char* ws = static_cast<char*>(ctx.workspace(cv.used));
    auto* count = reinterpret_cast<unsigned long long*>(ws + at_count);
    auto* bad = reinterpret_cast<long long*>(ws + at_bad);
    cuda_detail::count_init_kernel<<<1, 1, 0, ctx.stream()>>>(count, bad);
    HYENA_CUDA_CHECK_LAUNCH("count_init_kernel");
    const unsigned blocks = cuda_detail::grid_for(ctx, rows);
    cuda_detail::count_targets_kernel<<<blocks, cuda_detail::block_threads, 0, ctx.stream()>>>(rows, vocab, targets,
                                                                                               count, bad);
    HYENA_CUDA_CHECK_LAUNCH("count_targets_kernel");
    auto* host = static_cast<long long*>(ctx.host_scratch(2 * sizeof(long long)));
    HYENA_CUDA_CHECK(cudaMemcpyAsync(host, count, sizeof(long long), cudaMemcpyDeviceToHost, ctx.stream()));
    HYENA_CUDA_CHECK(cudaMemcpyAsync(host + 1, bad, sizeof(long long), cudaMemcpyDeviceToHost, ctx.stream()));
    ctx.synchronize();
    long long valid = host[0], first_bad = host[1];
    if (first_bad != LLONG_MAX) {
      std::int32_t t = 0;
      HYENA_CUDA_CHECK(cudaMemcpy(&t, targets + first_bad, sizeof(t), cudaMemcpyDeviceToHost));
      HYENA_FAIL("cross_entropy: target ", t, " at row ", first_bad, " is outside [0, ", vocab,
                 ") and is not the ignore index ", ignore_target);
    }
    return index_t(valid);
  }

  template <class T>
  static double cross_entropy(cuda_context& ctx, index_t rows, index_t vocab, const T* logits,
                              const std::int32_t* targets, T* losses, T* dlogits, T grad_scale) {
    count_targets(ctx, rows, vocab, targets);  // validate before writing anything
    return cuda_detail::sum_of_row_losses(ctx, rows, "cross_entropy", 0, [&](double* row_loss, char*) {
      cuda_detail::cross_entropy_kernel<<<unsigned(rows), cuda_detail::vocab_threads(vocab), 0, ctx.stream()>>>(
          vocab, logits, targets, losses, dlogits, grad_scale, row_loss);
      HYENA_CUDA_CHECK_LAUNCH("cross_entropy_kernel");
    });
  }

  template <class T>
  static double kl_divergence(cuda_context& ctx, index_t rows, index_t vocab, const T* teacher, const T* student,
                              T temperature, T* losses, T* dstudent, T grad_scale) {
    HYENA_CHECK(temperature > T(0), "kl_divergence: temperature must be positive, got ", temperature);
    return cuda_detail::sum_of_row_losses(ctx, rows, "kl_divergence", 0, [&](double* row_loss, char*) {
      cuda_detail::kl_divergence_kernel<<<unsigned(rows), cuda_detail::vocab_threads(vocab), 0, ctx.stream()>>>(
          vocab, teacher, student, double(temperature), losses, dstudent, grad_scale, row_loss);
      HYENA_CUDA_CHECK_LAUNCH("kl_divergence_kernel");
    });
  }

  template <class T>
  static double reverse_kl_divergence(cuda_context& ctx, index_t rows, index_t vocab, const T* teacher,
                                      const T* student, T temperature, T* losses, T* dstudent, T grad_scale) {
    HYENA_CHECK(temperature > T(0), "reverse_kl_divergence: temperature must be positive, got ", temperature);
    return cuda_detail::sum_of_row_losses(ctx, rows, "reverse_kl_divergence", 0, [&](double* row_loss, char*) {
      cuda_detail::reverse_kl_kernel<<<unsigned(rows), cuda_detail::vocab_threads(vocab), 0, ctx.stream()>>>(
          vocab, teacher, student, double(temperature), losses, dstudent, grad_scale, row_loss);
      HYENA_CUDA_CHECK_LAUNCH("reverse_kl_kernel");
    });
  }

  // k >= vocab is the forward KL (the same loss and gradient), and runs as kl_divergence.
  template <class T>
  static double topk_kl_divergence(cuda_context& ctx, index_t rows, index_t vocab, index_t k, const T* teacher,
                                   const T* student, T temperature, T* losses, T* dstudent, T grad_scale) {
    HYENA_CHECK(temperature > T(0), "topk_kl_divergence: temperature must be positive, got ", temperature);
    HYENA_CHECK(k >= 1, "topk_kl_divergence: k must be >= 1, got ", k);
    if (k >= vocab) return kl_divergence(ctx, rows, vocab, teacher, student, temperature, losses, dstudent, grad_scale);
    return cuda_detail::sum_of_row_losses(
        ctx, rows, "topk_kl_divergence", sizeof(index_t) * std::size_t(rows * k), [&](double* row_loss, char* ids) {
          cuda_detail::topk_kl_kernel<<<unsigned(rows), cuda_detail::vocab_threads(vocab), 0, ctx.stream()>>>(
              vocab, k, teacher, student, double(temperature), losses, dstudent, grad_scale, row_loss,
              reinterpret_cast<index_t*>(ids));
          HYENA_CUDA_CHECK_LAUNCH("topk_kl_kernel");
        });
  }

  template <class T>
  static double mse(cuda_context& ctx, index_t n, const T* a, const T* b, T* da, T grad_scale) {
    if (n <= 0) return 0.0;
    unsigned blocks = cuda_detail::grid_for(ctx, n);
    cuda_detail::carver cv;
    std::size_t at_partial = cv.take(sizeof(double) * blocks), at_slot = cv.take(sizeof(double));
    char* ws = static_cast<char*>(ctx.workspace(cv.used));
    double* partial = reinterpret_cast<double*>(ws + at_partial);
    cuda_detail::mse_kernel<<<blocks, cuda_detail::block_threads, 0, ctx.stream()>>>(n, a, b, da, grad_scale, partial);
    HYENA_CUDA_CHECK_LAUNCH("mse_kernel");
    return cuda_detail::sum_to_host(ctx, blocks, partial, reinterpret_cast<double*>(ws + at_slot));
  }
};

}  // namespace hyena::backend
