#!/usr/bin/env bash
# `mpirun -np 2 hyena train|distill` against one process with twice the batch: the same
# global batches, so the same losses up to float reduction order (checked to 1e-4 relative on
# the last step's loss and validation loss). Rank 0 alone writes: one metrics file with one
# line per step. Usage: mpi_cli_test.sh HYENA_BINARY WORK_DIR   (mpirun on PATH)
set -euo pipefail
hyena=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
cd "$work"
fail() { echo "mpi cli test FAILED: $*" >&2; exit 1; }
mpirun=(mpirun --oversubscribe -np 2)

for i in $(seq 1 300); do
  echo "line $i: the quick brown fox jumps over the lazy dog $((i % 7)) times."
done > text.txt
"$hyena" prepare --input text.txt --output train.tok --valid-fraction 0.1 --valid-output valid.tok > /dev/null

# field FILE KEY LABEL: KEY of the last line of run LABEL in a metrics file.
field() { grep "\"label\":\"$3\"" "$1" | tail -n 1 | grep -o "\"$2\":[-0-9.e+]*" | sed 's/.*://'; }
same() {  # same FILE_A FILE_B FIELD LABEL: equal to 1e-4 relative
  local a b
  a=$(field "$1" "$3" "$4")
  b=$(field "$2" "$3" "$4")
  [[ -n $a && -n $b ]] || fail "no $3 in the last '$4' line of $1 or $2"
  echo "$3: $a (2 ranks) vs $b (1 rank)"
  awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-4 * (b < 0 ? -b : b)) }' ||
    fail "$3 differs: $a vs $b"
}

train=(train --arch gpt_neox --preset tiny --train train.tok --valid valid.tok --seq 32 --steps 20 --lr 3e-3
       --warmup 2 --eval-every 10 --seed 3)
"${mpirun[@]}" "$hyena" "${train[@]}" --batch 2 --out t2 > t2.out 2> t2.err || { cat t2.err; fail "train on 2 ranks"; }
"$hyena" "${train[@]}" --batch 4 --out t1 > t1.out 2> t1.err || { cat t1.err; fail "train on 1 rank"; }
[[ $(wc -l < t2/metrics.jsonl) -eq 20 ]] || fail "2-rank metrics.jsonl should have 20 lines"
[[ $(grep -c "^validation: loss" t2.out) -eq 1 ]] || fail "the 2-rank run should print its result once"
same t2/metrics.jsonl t1/metrics.jsonl loss train
same t2/metrics.jsonl t1/metrics.jsonl val_loss train

distill=(distill --teacher t1/model.safetensors --train train.tok --valid valid.tok --seq 32 --tokens 6144
         --stage1-fraction 0.34 --eval-tokens 1000)
"${mpirun[@]}" "$hyena" "${distill[@]}" --batch 2 --out d2 > d2.out 2> d2.err || { cat d2.err; fail "distill on 2 ranks"; }
"$hyena" "${distill[@]}" --batch 4 --out d1 > d1.out 2> d1.err || { cat d1.err; fail "distill on 1 rank"; }
grep -q "x 2 ranks" d2.out || fail "the 2-rank plan does not say it runs on 2 ranks"
[[ -s d2/model.safetensors ]] || fail "the 2-rank distillation wrote no model"
same d2/metrics.jsonl d1/metrics.jsonl loss "stage 1 layer 1 output"
same d2/metrics.jsonl d1/metrics.jsonl loss "stage 2"
same d2/metrics.jsonl d1/metrics.jsonl val_loss "stage 2"
echo "mpi cli test passed"
