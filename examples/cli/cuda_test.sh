#!/usr/bin/env bash
# The CLI with --device cuda against --device cpu on a tiny model: train (per-step losses), eval
# (loss, and with --tf32), greedy generation (same text) and a short distillation on the GPU.
# Usage: cuda_test.sh HYENA_BINARY WORK_DIR. Needs a GPU: scripts/gpu-check.sh runs it.
set -euo pipefail

hyena=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
cd "$work"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

fail() { echo "cuda CLI test FAILED: $*" >&2; exit 1; }
# |a - b| <= rel * |a| + abs, for two numbers.
close() { awk -v a="$1" -v b="$2" -v r="$3" -v t="$4" 'BEGIN { d = a - b; if (d < 0) d = -d; m = a < 0 ? -a : a;
                                                               exit !(d <= r * m + t) }'; }
loss_of() { grep -o '[{,]"loss":[-0-9.e+]*' | sed 's/.*://'; }

for i in $(seq 1 150); do
  echo "line $i: the quick brown fox jumps over the lazy dog $((i % 7)) times."
done > text.txt
"$hyena" prepare --input text.txt --output train.tok --valid-fraction 0.1 --valid-output valid.tok > /dev/null

# Training: the same seed and batches on both devices; float products in another order, so the
# losses agree to float tolerance, step by step.
train=(train --arch gpt_neox --preset tiny --train train.tok --valid valid.tok --batch 4 --seq 64 --lr 3e-3
       --warmup 2 --seed 1 --steps 20)
"$hyena" "${train[@]}" --out cpu --device cpu > cpu_train.out || fail "train --device cpu"
"$hyena" "${train[@]}" --out gpu --device cuda > gpu_train.out || fail "train --device cuda"
cat gpu_train.out
paste <(loss_of < cpu/metrics.jsonl) <(loss_of < gpu/metrics.jsonl) > losses.txt
[[ $(wc -l < losses.txt) -eq 20 ]] || fail "expected 20 training losses on each device"
while read -r a b; do
  close "$a" "$b" 1e-3 1e-5 || fail "training loss cpu $a vs cuda $b (losses.txt)"
done < losses.txt
echo "ok: 20 training losses agree (cpu vs cuda)"

# Evaluation of one checkpoint on both devices, and with TF32 products.
eval_loss() { "$hyena" eval --model cpu/model.safetensors --data valid.tok --json "$@" | loss_of; }
l_cpu=$(eval_loss --device cpu)
l_gpu=$(eval_loss --device cuda)
l_tf32=$(eval_loss --device cuda --tf32)
echo "eval loss: cpu $l_cpu, cuda $l_gpu, cuda tf32 $l_tf32"
close "$l_cpu" "$l_gpu" 1e-5 1e-6 || fail "eval loss cpu $l_cpu vs cuda $l_gpu"
close "$l_cpu" "$l_tf32" 1e-2 1e-4 || fail "eval loss cpu $l_cpu vs cuda --tf32 $l_tf32"

# Greedy generation: the same tokens (incremental decoding on both).
gen=(generate --model cpu/model.safetensors --prompt "line 7: the" --tokens 24 --temperature 0)
"$hyena" "${gen[@]}" --device cpu > gen_cpu.txt
"$hyena" "${gen[@]}" --device cuda > gen_gpu.txt
cmp -s gen_cpu.txt gen_gpu.txt || fail "greedy text differs: cpu '$(cat gen_cpu.txt)' cuda '$(cat gen_gpu.txt)'"
echo "ok: greedy generation identical"

# A short distillation on the GPU (stages 0-2), its student scored on both devices.
"$hyena" distill --teacher cpu/model.safetensors --train train.tok --valid valid.tok --out student --batch 4 --seq 64 \
  --tokens 30000 --filter-order 16 --device cuda > distill.out || fail "distill --device cuda"
tail -3 distill.out
[[ -s student/model.safetensors ]] || fail "student/model.safetensors missing"
s_cpu=$("$hyena" eval --model student/model.safetensors --data valid.tok --json --device cpu | loss_of)
s_gpu=$("$hyena" eval --model student/model.safetensors --data valid.tok --json --device cuda | loss_of)
echo "student eval loss: cpu $s_cpu, cuda $s_gpu"
close "$s_cpu" "$s_gpu" 1e-4 1e-6 || fail "student eval loss cpu $s_cpu vs cuda $s_gpu"
echo "cuda CLI test passed"
