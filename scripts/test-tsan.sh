#!/usr/bin/env bash
# ThreadSanitizer over the threaded code: the programs whose tests run the OpenMP kernels (backend
# ops, layers, losses, AdamW, gradient clipping) and the tokenizers' shared cache,
# each with OMP_NUM_THREADS=2. GCC's libgomp is not instrumented (TSan would report its barriers as
# races), so this builds with clang against LLVM's OpenMP runtime and loads LLVM's Archer tool,
# which reports every OpenMP barrier, lock and task to TSan; accesses inside the (uninstrumented)
# runtime itself are ignored (ignore_noninstrumented_modules=1, as Archer asks). No suppression file.
# See docs/reliability.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --clang
archer=$(ls /usr/lib/llvm-*/lib/libarcher.so 2>/dev/null | sort -V | tail -1)
[ -n "$archer" ] || { echo "test-tsan: libarcher.so not found (libomp-14-dev)" >&2; exit 1; }
# -O1 with line tables, as the ASan build (scripts/test.sh): reports keep file:line, the compile is shorter.
CC=clang CXX=clang++ cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=None -DHYENA_BUILD_EXAMPLES=OFF \
  -DHYENA_BUILD_BENCHMARKS=OFF -DHYENA_WITH_CUDA=OFF -DHYENA_TEST_OMP_THREADS=2 \
  -DCMAKE_CXX_FLAGS="-O1 -g1 -fsanitize=thread -fno-omit-frame-pointer" >/dev/null
# The threaded programs (OpenMP parallel loops, or host_context(n > 1), or the BPE cache mutex).
tests=(backend_test_gemm backend_test_gemm_bf16 backend_test_attention_ops backend_test_attention_guards backend_test_conv
       backend_test_channel_fft backend_test_filter nn_test_linear nn_test_embedding nn_test_gelu nn_test_layer_norm
       nn_test_rms_norm nn_test_swiglu_mlp nn_test_loss nn_test_hyena nn_test_attention train_test_adamw
       train_test_grad_clip io_test_bpe_tokenizer)
cmake --build build-tsan -j"$(nproc)" --target "${tests[@]}"
regex="^($(printf '%s\n' "${tests[@]}" | sed 's/_test_/.test_/' | paste -sd'|'))\$"
TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ignore_noninstrumented_modules=1" OMP_TOOL_LIBRARIES="$archer" \
  ctest --test-dir build-tsan -R "$regex" -j"$(nproc)" --output-on-failure --timeout 3000
