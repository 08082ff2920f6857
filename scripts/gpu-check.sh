#!/usr/bin/env bash
# gpu-check.sh: build and run the CUDA backend's tests on a machine with a GPU.
#
#   scripts/gpu-check.sh            configure (HYENA_WITH_CUDA=ON), build tests/cuda and the CLI,
#                                   run the op tests and the training/distillation test against
#                                   cpu_ref, the CLI's --device cuda against --device cpu
#                                   (examples/cli/cuda_test.sh), then the op tests under
#                                   compute-sanitizer memcheck and racecheck
#   scripts/gpu-check.sh bench [--quick]
#                                   build bench_cuda and run benchmarks/gpu_compare.py: the training
#                                   step, the Hyena operator and the long convolution against PyTorch
#                                   on the same GPU (docs/results/gpu.json under $OUT or build-gpu/logs)
#   scripts/gpu-check.sh bundle     (on a machine that has the header-only deps installed)
#                                   copy Eigen, xsimd, doctest, CLI11 and nlohmann-json into
#                                   .gpu-deps/ so that a bare GPU machine, which cannot install
#                                   packages, finds them
#
# Logs go to $OUT (when set) or build-gpu/logs. Exit status: non-zero when the build or the
# tests fail, or memcheck reports errors. A missing compute-sanitizer is reported, not fatal.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
deps="$root/.gpu-deps"

if [[ "${1:-}" == "bundle" ]]; then
  rm -rf "$deps"
  mkdir -p "$deps/usr/include" "$deps/usr/share" "$deps/usr/lib/cmake"
  cp -r /usr/include/eigen3 /usr/include/xsimd /usr/include/doctest /usr/include/CLI /usr/include/nlohmann \
    "$deps/usr/include/"
  cp -r /usr/share/eigen3 "$deps/usr/share/"
  mkdir -p "$deps/usr/share/cmake"
  cp -r /usr/share/cmake/nlohmann_json "$deps/usr/share/cmake/"
  cp -r /usr/lib/cmake/doctest "$deps/usr/lib/cmake/"
  # Debian's doctest config hard-codes /usr; make it relative to where it now lies.
  sed -i 's|^set(_IMPORT_PREFIX "/usr")|get_filename_component(_IMPORT_PREFIX "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)|' \
    "$deps/usr/lib/cmake/doctest/doctestTargets.cmake"
  du -sh "$deps"
  echo "bundled into $deps (untracked: it travels with the working tree; delete it when done)"
  exit 0
fi

build="${HYENA_GPU_BUILD_DIR:-$root/build-gpu}"
logs="${OUT:-$build/logs}"
mkdir -p "$logs"
nvcc_bin=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
prefix_args=()
[[ -d "$deps/usr" ]] && prefix_args=(-DCMAKE_PREFIX_PATH="$deps/usr")

{
  echo "== machine"
  nvidia-smi 2>&1 | head -15
  "$nvcc_bin" --version 2>&1 | tail -2
  cmake --version | head -1
} >"$logs/machine.txt" 2>&1
cat "$logs/machine.txt"

echo "== configure"
if ! cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DHYENA_WITH_CUDA=ON -DCMAKE_CUDA_COMPILER="$nvcc_bin" \
    -DHYENA_WITH_MPI=OFF -DHYENA_BUILD_BENCHMARKS=OFF "${prefix_args[@]}" >"$logs/configure.txt" 2>&1; then
  tail -40 "$logs/configure.txt"
  echo "configure failed (missing Eigen/xsimd/doctest? run 'scripts/gpu-check.sh bundle' where they are installed)"
  exit 1
fi

if [[ "${1:-}" == "bench" ]]; then
  shift
  echo "== build bench_cuda"
  if ! cmake -S . -B "$build" -DHYENA_BUILD_BENCHMARKS=ON >>"$logs/configure.txt" 2>&1 ||
     ! cmake --build "$build" --target bench_cuda -j"$(nproc)" >"$logs/build_bench.txt" 2>&1; then
    tail -60 "$logs/build_bench.txt"
    echo "bench_cuda build failed"
    exit 1
  fi
  python3 benchmarks/gpu_compare.py --bench "$build/benchmarks/bench_cuda" --out "$logs/gpu.json" "$@" \
    2> "$logs/bench_commands.txt" | tee "$logs/gpu_tables.md"
  exit "${PIPESTATUS[0]}"
fi

programs=(test_cuda_ops test_cuda_train)
echo "== build ${programs[*]} hyena_cli"
start=$(date +%s)
if ! cmake --build "$build" --target "${programs[@]}" hyena_cli -j"$(nproc)" >"$logs/build.txt" 2>&1; then
  tail -60 "$logs/build.txt"
  echo "build failed"
  exit 1
fi
echo "built in $(( $(date +%s) - start )) s"

status=0
for p in "${programs[@]}"; do
  echo "== run $p"
  if "$build/tests/cuda/$p" >"$logs/$p.txt" 2>&1; then
    tail -5 "$logs/$p.txt"
  else
    status=1
    tail -120 "$logs/$p.txt"
    echo "$p FAILED"
  fi
done

echo "== run the CLI with --device cuda (examples/cli/cuda_test.sh)"
if bash examples/cli/cuda_test.sh "$build/hyena" "$build/cli_cuda" >"$logs/cli_cuda.txt" 2>&1; then
  tail -5 "$logs/cli_cuda.txt"
else
  status=1
  tail -60 "$logs/cli_cuda.txt"
  echo "cuda_test.sh FAILED"
fi

san=$(command -v compute-sanitizer || true)
for c in /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer; do
  [[ -z "$san" && -x "$c" ]] && san="$c"
done
# The op tests under memcheck (out-of-bounds, misaligned, leaks) and racecheck (shared memory
# hazards); the training test is too slow under the sanitizer for one short device session.
for tool in memcheck racecheck; do
  echo "== compute-sanitizer $tool (test_cuda_ops)"
  if [[ -z "$san" ]]; then
    echo "compute-sanitizer not found: $tool skipped" | tee "$logs/$tool.txt"
  elif "$san" --tool "$tool" --error-exitcode 3 "$build/tests/cuda/test_cuda_ops" >"$logs/$tool.txt" 2>&1; then
    tail -5 "$logs/$tool.txt"
  else
    status=1
    tail -80 "$logs/$tool.txt"
    echo "$tool reported errors (or the tests failed under it)"
  fi
done
echo "logs in $logs"
exit $status
