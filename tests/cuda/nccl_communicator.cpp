// dist::nccl_communicator on device buffers, under mpirun with one rank per GPU (NCCL refuses
// two ranks on one device, so a one-GPU machine runs it with one rank). Skips itself (exit 0)
// where there is no GPU. Values are rank-dependent and outputs are poisoned first, so a call
// that does nothing fails.
#include <hyena/dist/mpi.hpp>
#include <hyena/dist/nccl.hpp>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {
int failures = 0;
void expect(bool ok, const char* what, int rank) {
  if (!ok) {
    std::fprintf(stderr, "rank %d: FAILED: %s\n", rank, what);
    ++failures;
  }
}
void cuda(cudaError_t e) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "CUDA: %s\n", cudaGetErrorString(e));
    std::exit(1);
  }
}
}  // namespace

int main(int argc, char** argv) {
  hyena::dist::mpi_communicator host(&argc, &argv);
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    if (host.is_root()) std::printf("no CUDA device: skipped\n");
    return 0;
  }
  if (devices < host.size()) {
    if (host.is_root()) std::printf("%d GPUs for %d ranks (NCCL needs one each): skipped\n", devices, host.size());
    return 0;
  }
  cuda(cudaSetDevice(host.rank() % devices));
  try {
    hyena::dist::nccl_communicator nccl(host);
    const int r = nccl.rank(), n = nccl.size();
    const std::size_t count = 1000;
    std::vector<float> h(count);
    for (std::size_t i = 0; i < count; ++i) h[i] = float(i % 17) + float(r) * 0.5f;
    float* d = nullptr;
    cuda(cudaMalloc(&d, count * sizeof(float)));
    cuda(cudaMemcpy(d, h.data(), count * sizeof(float), cudaMemcpyHostToDevice));
    nccl.all_reduce_sum(d, count);
    cuda(cudaMemcpy(h.data(), d, count * sizeof(float), cudaMemcpyDeviceToHost));
    bool ok = true;
    for (std::size_t i = 0; i < count; ++i) ok &= h[i] == float(n) * float(i % 17) + 0.5f * float(n * (n - 1) / 2);
    expect(ok, "device all_reduce_sum", r);

    // all_gather of unequal pieces: each rank fills only its own piece, the rest poisoned (NaN).
    std::vector<std::size_t> pieces = hyena::dist::even_pieces(count - 1, n);
    std::size_t offset = 0;
    for (int q = 0; q < r; ++q) offset += pieces[std::size_t(q)];
    std::vector<float> g(count - 1, std::nanf(""));
    for (std::size_t i = offset; i < offset + pieces[std::size_t(r)]; ++i) g[i] = float(i) * 0.25f;
    cuda(cudaMemcpy(d, g.data(), g.size() * sizeof(float), cudaMemcpyHostToDevice));
    nccl.all_gather(d, pieces);
    cuda(cudaMemcpy(g.data(), d, g.size() * sizeof(float), cudaMemcpyDeviceToHost));
    ok = true;
    for (std::size_t i = 0; i < g.size(); ++i) ok &= g[i] == float(i) * 0.25f;
    expect(ok, "device all_gather", r);

    // broadcast from the last rank; a host value goes through MPI.
    std::vector<float> b(count, float(r) - 7.0f);
    cuda(cudaMemcpy(d, b.data(), count * sizeof(float), cudaMemcpyHostToDevice));
    nccl.broadcast(d, count * sizeof(float), n - 1);
    cuda(cudaMemcpy(b.data(), d, count * sizeof(float), cudaMemcpyDeviceToHost));
    ok = true;
    for (float v : b) ok &= v == float(n - 1) - 7.0f;
    expect(ok, "device broadcast", r);
    double loss = 1.5 + r;
    nccl.all_reduce_sum(&loss, 1);
    expect(loss == 1.5 * n + double(n * (n - 1) / 2), "host all_reduce_sum through MPI", r);
    cuda(cudaFree(d));
  } catch (const hyena::error& e) {
    std::fprintf(stderr, "rank %d: %s\n", host.rank(), e.what());
    host.abort(1);
  }
  if (host.is_root()) std::printf("nccl communicator on %d rank(s): %s\n", host.size(), failures ? "FAILED" : "ok");
  double any = failures;
  host.all_reduce_sum(&any, 1);
  return any > 0 ? 1 : 0;
}
