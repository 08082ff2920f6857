#!/usr/bin/env bash
# A user's CLI with a registered mixer model, end to end: hyena_ema trains an EMA-mixer model
# with a non-default hyperparameter (min_decay 0.5), evaluates it, samples from it and continues
# training it; the built-in CLI, which has no such model, refuses the checkpoint with one error
# naming the architecture and the file.
# Usage: custom_cli_test.sh HYENA_EMA_BINARY HYENA_BINARY WORK_DIR
set -euo pipefail

ema=$1
hyena=$2
work=$3
rm -rf "$work"
mkdir -p "$work"
cd "$work"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

fail() { echo "custom CLI test FAILED: $*" >&2; exit 1; }

for i in $(seq 1 100); do
  echo "line $i: the quick brown fox jumps over the lazy dog $((i % 7)) times."
done > text.txt
"$hyena" prepare --input text.txt --output train.tok --valid-fraction 0.1 --valid-output valid.tok > /dev/null

config='{"hidden": 32, "layers": 2, "heads": 4, "intermediate": 64, "max_seq": 64, "mixer": {"min_decay": 0.5}}'
"$ema" train --arch ema_gpt_neox --config "$config" --train train.tok --out ema --steps 4 --batch 2 --seq 32 \
  > train.out 2> train.err || { cat train.err >&2; fail "train --arch ema_gpt_neox"; }
[[ -s ema/model.safetensors ]] || fail "ema/model.safetensors missing"
# The mixer's hyperparameter is in the checkpoint's config (a JSON string in the header).
grep -a -q 'min_decay\\":0.5' ema/model.safetensors || fail "the checkpoint does not record min_decay 0.5"

"$ema" eval --model ema/model.safetensors --data valid.tok --json > eval.json || fail "eval"
grep -q '"arch":"ema_gpt_neox"' eval.json || fail "eval: $(cat eval.json)"
"$ema" generate --model ema/model.safetensors --prompt "line" --tokens 16 --temperature 0 > gen.out \
  || fail "generate"
[[ $(head -c 4 gen.out) == "line" ]] || fail "generate did not continue the prompt: $(cat gen.out)"
# Continuing training starts from the checkpoint's config, its min_decay included.
"$ema" train --teacher ema/model.safetensors --train train.tok --out ema2 --steps 2 --batch 2 --seq 32 \
  > train2.out 2> /dev/null || fail "train --teacher ema/model.safetensors"
grep -a -q 'min_decay\\":0.5' ema2/model.safetensors || fail "continued training lost min_decay 0.5"
# The built-in models still load in the custom CLI.
"$ema" train --arch gpt_neox --preset tiny --train train.tok --out neox --steps 2 --batch 2 --seq 32 \
  > /dev/null 2>&1 || fail "train --arch gpt_neox"
"$ema" eval --model neox/model.safetensors --data valid.tok --json | grep -q '"arch":"gpt_neox"' || fail "eval gpt_neox"

# The built-in CLI: one error line naming the architecture and the file.
if "$hyena" eval --model ema/model.safetensors --data valid.tok > bad.out 2> bad.err; then
  fail "the built-in CLI loaded an ema_gpt_neox checkpoint"
fi
[[ $(wc -l < bad.err) -eq 1 ]] || fail "expected one error line, got: $(cat bad.err)"
grep -q "ema/model.safetensors" bad.err && grep -q "unknown architecture 'ema_gpt_neox'" bad.err \
  || fail "the error does not name the file and the architecture: $(cat bad.err)"
echo "ok: $(cat bad.err)"
echo "custom CLI test passed"
