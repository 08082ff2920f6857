#!/usr/bin/env bash
# ctest cli.demo_tiny: the whole demo on the tiny preset; checks the report and the plot.
set -euo pipefail
hyena="$1"; out="$2"
rm -rf "$out"
"$hyena" demo --preset tiny --out "$out" --threads 1 > "$out.log" 2>&1 || { cat "$out.log"; exit 1; }
for f in report.md val_loss.png val_loss.dat teacher/model.safetensors scratch/model.safetensors \
         distilled/model.safetensors teacher/metrics.jsonl distilled/metrics.jsonl data/train.tok; do
  [ -s "$out/$f" ] || { echo "demo_test: missing $out/$f"; cat "$out.log"; exit 1; }
done
grep -q "Hyena student, distilled" "$out/report.md"
grep -q "Hyena student, from scratch" "$out/report.md"
grep -q "teacher (GPT-NeoX" "$out/report.md"
  grep -q "How well each Hyena mixer fits" "$out/report.md"
grep -q "rank-4 Hyena operator" "$out/report.md" || { echo "demo_test: the students are not rank 4"; exit 1; }
if grep -qw nan "$out/report.md"; then echo "demo_test: nan in the report"; cat "$out/report.md"; exit 1; fi
# The demo's own models load back through `hyena eval`.
"$hyena" eval --model "$out/distilled/model.safetensors" --data "$out/data/valid.tok" --seq 64 --max-tokens 512 --json \
  | grep -q '"perplexity"'
echo "demo_test: ok"
