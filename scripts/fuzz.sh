#!/usr/bin/env bash
# libFuzzer harnesses (fuzz/): build, seed and run them. See docs/reliability.md.
#
#   bash scripts/fuzz.sh build                 install clang + libFuzzer (Debian), configure build-fuzz/, build all
#   bash scripts/fuzz.sh run NAME SECONDS      run fuzz_NAME for SECONDS (ASan + UBSan), one process, niced;
#                                              log in build-fuzz/logs/NAME.log, corpus grows in build-fuzz/corpus/NAME
#   bash scripts/fuzz.sh ci [SECONDS_EACH]     build, then every harness briefly on its seeds (default 5 s each)
#   bash scripts/fuzz.sh list                  the harness names
#
# Seeds of a run: fuzz/corpus/NAME (small, committed), files the harness writes with hyena's own
# writers (token files, checkpoints), and - by path, never copied into the repository - the test
# fixtures and the shared data folder (HYENA_DATA_DIR, default ../shared/data). Crashes are saved
# as build-fuzz/findings/NAME/crash-*; any finding makes the script exit non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${HYENA_FUZZ_BUILD:-build-fuzz}
data=${HYENA_DATA_DIR:-$root/../shared/data}
fixtures=$root/tests/reference/fixtures
names=(safetensors hf_config hf_folder hf_tokenizer gpt2_tokenizer llama2c_checkpoint llama2c_tokenizer token_file checkpoint
       tokenizer_roundtrip)

install_deps() {
  bash "$root/scripts/install-deps.sh" --clang >/dev/null
}

build_all() {
  install_deps
  CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHYENA_BUILD_FUZZERS=ON \
    -DHYENA_BUILD_TESTS=OFF -DHYENA_BUILD_EXAMPLES=OFF -DHYENA_BUILD_BENCHMARKS=OFF -DHYENA_WITH_CUDA=OFF \
    -DHYENA_DATA_DIR="$data" >/dev/null
  cmake --build "$build" -j"${HYENA_FUZZ_JOBS:-$(nproc)}" --target fuzzers
}

# The seed folders of harness $1 (printed one per line).
seeds() {
  local n=$1 gen=$build/seeds/$n
  echo "$root/fuzz/corpus/$n"
  case $n in
    token_file|checkpoint)
      rm -rf "$gen" && mkdir -p "$gen"
      HYENA_FUZZ_WRITE_SEEDS=$gen "$build/fuzz/fuzz_$n" >/dev/null 2>&1 || true
      echo "$gen" ;;
    safetensors)
      mkdir -p "$gen" && for d in "$fixtures"/hf_tiny_*; do
        for f in "$d"/*.safetensors; do ln -sf "$f" "$gen/$(basename "$d")_$(basename "$f")"; done
      done
      echo "$gen" ;;
    hf_folder)  # each fixture folder as one input: config.json, the separator line, model.safetensors
      mkdir -p "$gen" && for d in "$fixtures"/hf_tiny_* "$data/../cases/llama-mlp-bias"; do
        [ -f "$d/config.json" ] && [ -f "$d/model.safetensors" ] &&
          { cat "$d/config.json"; printf '\n#model.safetensors\n'; cat "$d/model.safetensors"; } > "$gen/$(basename "$d")"
      done
      echo "$gen" ;;
    hf_config)
      mkdir -p "$gen" && for d in "$fixtures"/hf_tiny_* "$data/../cases/llama-mlp-bias"; do
        [ -f "$d/config.json" ] && ln -sf "$d/config.json" "$gen/$(basename "$d").json"
      done
      echo "$gen" ;;
    llama2c_checkpoint)
      mkdir -p "$gen"
      [ -f "$data/../cases/llama2c-v1/stories260K-v1.bin" ] && ln -sf "$data/../cases/llama2c-v1/stories260K-v1.bin" "$gen/"
      echo "$gen" ;;
    llama2c_tokenizer)
      mkdir -p "$gen"
      [ -f "$data/stories260k/tok512.bin" ] && ln -sf "$data/stories260k/tok512.bin" "$gen/"
      echo "$gen" ;;
  esac
}

run_one() {
  local n=$1 secs=$2; shift 2
  local corpus=$build/corpus/$n findings=$build/findings/$n log=$build/logs/$n.log dict=()
  mkdir -p "$corpus" "$findings" "$build/logs"
  [ -f "fuzz/dict/$n.dict" ] && dict=(-dict="fuzz/dict/$n.dict")
  local max_len=${HYENA_FUZZ_MAX_LEN:-65536}
  [ "$n" = hf_folder ] && max_len=${HYENA_FUZZ_MAX_LEN:-131072}  # the tiny fixture folders are ~100 kB
  mapfile -t seed_dirs < <(seeds "$n" | while read -r d; do [ -d "$d" ] && echo "$d"; done)
  echo "fuzz_$n: $secs s, seeds ${seed_dirs[*]}" >&2
  local rc=0
  # One process (libFuzzer's default; -jobs/-workers would fork), niced; scratch files in memory.
  TMPDIR=${HYENA_FUZZ_TMP:-/dev/shm} HYENA_DATA_DIR=$data ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    nice -n 10 "$build/fuzz/fuzz_$n" "$corpus" "${seed_dirs[@]}" "${dict[@]}" -max_total_time="$secs" \
    -rss_limit_mb=4096 -malloc_limit_mb=2048 -max_len="$max_len" \
    -timeout=25 -print_final_stats=1 -artifact_prefix="$findings/" "$@" >"$log" 2>&1 || rc=$?
  grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|#[0-9]+ +DONE)" "$log" | tr '\n' ' ' >&2 || true
  echo >&2
  if [ $rc -ne 0 ]; then
    echo "fuzz_$n: FINDING (exit $rc), see $log and $findings" >&2
    grep -E "ERROR|FUZZ_CHECK|SUMMARY|uncaught|terminate" "$log" | head -5 >&2 || true
  fi
  return $rc
}

case ${1:-} in
  build) build_all ;;
  list) printf '%s\n' "${names[@]}" ;;
  run) [ $# -ge 3 ] || { echo "usage: fuzz.sh run NAME SECONDS [libFuzzer args]" >&2; exit 2; }
       n=$2 s=$3; shift 3; run_one "$n" "$s" "$@" ;;
  ci)
    each=${2:-5}
    build_all
    failed=0
    for n in "${names[@]}"; do run_one "$n" "$each" || failed=$((failed + 1)); done
    echo "fuzz: ${#names[@]} harnesses, $((${#names[@]} - failed)) passed, $failed failed"
    [ $failed -eq 0 ] ;;
  *) sed -n '2,13p' "$0"; exit 2 ;;
esac
