#!/usr/bin/env bash
# Crash safety: a training run and a distillation run are killed with SIGKILL at random
# moments (checkpoint writes included: every step writes one), rerun after each kill, and
# must end with exactly the model an uninterrupted run writes, with no temp file left over.
# Usage: kill_resume_test.sh HYENA_BINARY WORK_DIR
set -euo pipefail

hyena=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
cd "$work"
export OMP_NUM_THREADS=1

fail() { echo "kill/resume test FAILED: $*" >&2; exit 1; }

for i in $(seq 1 120); do
  echo "line $i: the quick brown fox jumps over the lazy dog $((i % 7)) times."
done > text.txt
"$hyena" prepare --input text.txt --output train.tok > /dev/null

# Runs "$@" to completion, killing it with SIGKILL after random delays until one run
# finishes by itself. Prints how many kills it took.
run_with_kills() {
  local kills=0 seed=$1
  shift
  RANDOM=$seed
  while true; do
    "$@" > /dev/null 2>> run.err &
    local pid=$!
    # Mostly short delays (many kills, some mid-write); every fifth a longer one, growing with
    # the kills, so a slow start (stage 0 of a distillation under ASan takes seconds) still gets
    # through to its first checkpoint.
    if [[ $((kills % 5)) -eq 4 ]]; then sleep "$((1 + kills / 10)).5"; else sleep "0.$(printf "%02d" $((RANDOM % 25 + 3)))"; fi
    if kill -9 "$pid" 2> /dev/null; then
      wait "$pid" 2> /dev/null || true
      kills=$((kills + 1))
      [[ $kills -lt 200 ]] || fail "still not done after 200 kills"
    else
      wait "$pid" || fail "run exited with an error: $(tail -n 3 run.err)"
      echo "$kills"
      return
    fi
  done
}

train=(train --arch gpt_neox --preset tiny --train train.tok --out OUT --batch 4 --seq 64 --lr 3e-3 --warmup 2
       --steps 150 --checkpoint-every 1 --seed 3 --threads 1)
"$hyena" "${train[@]/OUT/whole}" > /dev/null 2>&1 || fail "uninterrupted training"
kills=$(run_with_kills 1 "$hyena" "${train[@]/OUT/killed}")
echo "train: finished after $kills kills"
[[ $kills -ge 3 ]] || fail "too few kills ($kills) to mean anything; the run is faster than expected"
cmp whole/model.safetensors killed/model.safetensors || fail "killed and resumed training differs from the uninterrupted run"
cmp whole/metrics.jsonl killed/metrics.jsonl > /dev/null 2>&1 ||
  [[ $(wc -l < killed/metrics.jsonl) -eq 150 ]] || fail "metrics.jsonl of the resumed run has $(wc -l < killed/metrics.jsonl) lines, not 150"
ls killed | grep -q "tmp-" && fail "temp files left behind: $(ls killed)"

distill=(distill --teacher whole/model.safetensors --train train.tok --out OUT --batch 2 --seq 32 --tokens 12000
         --checkpoint-every 1 --eval-every 1000 --threads 1)
"$hyena" "${distill[@]/OUT/d_whole}" > /dev/null 2>&1 || fail "uninterrupted distillation"
kills=$(run_with_kills 2 "$hyena" "${distill[@]/OUT/d_killed}")
echo "distill: finished after $kills kills"
[[ $kills -ge 3 ]] || fail "too few kills ($kills) in distillation"
cmp d_whole/model.safetensors d_killed/model.safetensors || fail "killed and resumed distillation differs from the uninterrupted run"
ls d_killed | grep -q "tmp-" && fail "temp files left behind: $(ls d_killed)"
echo "kill/resume test passed"
