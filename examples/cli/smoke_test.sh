#!/usr/bin/env bash
# CLI smoke test: prepare -> train (and resume) -> eval -> generate on a tiny model, and
# bad inputs fail cleanly. Usage: smoke_test.sh HYENA_BINARY WORK_DIR
set -euo pipefail

hyena=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
cd "$work"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

fail() { echo "smoke test FAILED: $*" >&2; exit 1; }

# A few KB of text with enough structure for a tiny model to learn something in 20 steps.
for i in $(seq 1 150); do
  echo "line $i: the quick brown fox jumps over the lazy dog $((i % 7)) times."
done > text.txt

"$hyena" prepare --input text.txt --output train.tok --valid-fraction 0.1 --valid-output valid.tok | tee prepare.out
grep -q "train.tok: .* tokens, .* bytes, 1.000 bytes/token" prepare.out || fail "prepare did not report train.tok"
[[ -s train.tok && -s valid.tok ]] || fail "prepare wrote no token files"

train=(train --arch gpt_neox --preset tiny --train train.tok --valid valid.tok --out run
       --batch 4 --seq 64 --lr 3e-3 --warmup 2 --checkpoint-every 10 --seed 1)
"$hyena" "${train[@]}" --steps 20 > train.out 2> train.err || { cat train.err >&2; fail "train"; }
cat train.out
for f in metrics.jsonl checkpoint.safetensors model.safetensors; do
  [[ -s run/$f ]] || fail "run/$f missing"
done
grep -q "^validation: loss" train.out || fail "train printed no validation loss"
[[ $(wc -l < run/metrics.jsonl) -eq 20 ]] || fail "metrics.jsonl should have 20 lines"
# The training loss ("loss", not "val_loss") of the first and last lines.
loss_of() { grep -o '[{,]"loss":[-0-9.e+]*' | sed 's/.*://'; }
first=$(head -n 1 run/metrics.jsonl | loss_of)
last=$(tail -n 1 run/metrics.jsonl | loss_of)
echo "training loss $first -> $last"
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a) }' || fail "loss did not decrease ($first -> $last)"

"$hyena" eval --model run/model.safetensors --data valid.tok --json > eval.json
cat eval.json
for field in '"arch":"gpt_neox"' '"loss":' '"perplexity":' '"bits_per_byte":' '"tokens":'; do
  grep -q "$field" eval.json || fail "eval --json lacks $field"
done
"$hyena" eval --model run/model.safetensors --data valid.tok --words 100 | grep -q "word perplexity" ||
  fail "eval --words printed no word perplexity"

gen=(generate --model run/model.safetensors --prompt "line 7: the" --tokens 24 --seed 5 --top-k 20)
"$hyena" "${gen[@]}" > gen1.txt
"$hyena" "${gen[@]}" > gen2.txt
[[ $(wc -c < gen1.txt) -gt 12 ]] || fail "generate printed nothing beyond the prompt"
head -c 11 gen1.txt | grep -q "line 7: the" || fail "generate output does not start with the prompt"
cmp -s gen1.txt gen2.txt || fail "generate with the same seed gave different text"

# Re-running with more steps resumes from the last checkpoint.
"$hyena" "${train[@]}" --steps 30 > resume.out 2> resume.err || { cat resume.err >&2; fail "resume"; }
cat resume.out
grep -q "resuming from step 20" resume.out || fail "train did not resume from step 20"
[[ $(wc -l < run/metrics.jsonl) -eq 30 ]] || fail "metrics.jsonl should have 30 lines after resuming"

# A Hyena student trains through the same command.
"$hyena" train --arch hyena_gpt_neox --preset tiny --train train.tok --out student --steps 2 --batch 2 --seq 32 \
  > student.out 2> /dev/null || fail "hyena_gpt_neox train"
[[ -s student/model.safetensors ]] || fail "student/model.safetensors missing"
# ... and with bf16 products (--bf16: a permission, so it runs on any CPU).
"$hyena" train --arch hyena_gpt_neox --preset tiny --train train.tok --out student_bf16 --steps 2 --batch 2 --seq 32 \
  --bf16 > student_bf16.out 2> /dev/null || fail "train --bf16"
[[ -s student_bf16/model.safetensors ]] || fail "student_bf16/model.safetensors missing"

# Bad inputs exit non-zero with "error:" on stderr.
expect_error() {
  local what=$1
  shift
  if "$hyena" "$@" > bad.out 2> bad.err; then fail "$what: exited 0"; fi
  grep -q "error:" bad.err || fail "$what: no 'error:' on stderr (got: $(cat bad.err))"
  echo "ok: $what -> $(head -n 1 bad.err)"
}
head -c 1000 run/model.safetensors > truncated.safetensors
expect_error "missing file" eval --model run/model.safetensors --data missing.tok
expect_error "missing text" prepare --input missing.txt --output x.tok
expect_error "unknown arch" train --arch gpt3 --preset tiny --train train.tok --out bad --steps 1
expect_error "unknown preset" train --arch gpt_neox --preset huge --train train.tok --out bad --steps 1
expect_error "seq > max_seq" train --arch gpt_neox --preset tiny --train train.tok --out bad --steps 1 --seq 65
expect_error "truncated checkpoint" eval --model truncated.safetensors --data valid.tok
expect_error "bad top-p" generate --model run/model.safetensors --prompt x --top-p 0
expect_error "no model kind" eval --model missing_folder/ --data valid.tok
expect_error "both --arch and --teacher" train --arch gpt_neox --teacher run/model.safetensors --train train.tok --out bad --steps 1
expect_error "--tf32 on the CPU" eval --model run/model.safetensors --data valid.tok --tf32
# --device cuda runs on a GPU machine (scripts/gpu-check.sh); elsewhere it is one clear error.
if ! nvidia-smi -L > /dev/null 2>&1; then
  expect_error "--device cuda without a GPU" eval --model run/model.safetensors --data valid.tok --device cuda
  grep -Eq "no CUDA device is visible|built without CUDA" bad.err || fail "--device cuda: $(cat bad.err)"
fi

# Models in other formats plug into the same commands: the real llama2.c stories260K teacher.
stories="${HYENA_DATA_DIR:-}/stories260k"
if [[ -f "$stories/stories260K.bin" ]]; then
  "$hyena" generate --model "$stories/stories260K.bin" --tokenizer "$stories/tok512.bin" --prompt "Once upon a time" \
    --temperature 0 --tokens 40 --threads 1 > story.txt 2> /dev/null || fail "generate from a llama2.c checkpoint"
  grep -q "^Once upon a time" story.txt || fail "llama2.c story: $(cat story.txt)"
  [[ $(wc -c < story.txt) -gt 60 ]] || fail "llama2.c story too short"
  # An empty prompt starts from BOS: the published greedy sample, byte for byte (KV-cache decoding).
  "$hyena" generate --model "$stories/stories260K.bin" --tokenizer "$stories/tok512.bin" --prompt "" \
    --temperature 0 --tokens 60 --threads 1 > bos.txt 2> /dev/null || fail "generate from BOS"
  [[ $(wc -c < bos.txt) -gt 100 ]] || fail "generate from BOS printed too little: $(cat bos.txt)"
  head -c -1 bos.txt > bos_text.txt  # generate ends its output with a newline
  cmp -s bos_text.txt <(head -c "$(wc -c < bos_text.txt)" "$stories/greedy_t0_reference.txt") ||
    fail "greedy sample from BOS differs from llama2.c's: $(cat bos.txt)"
  head -c 6000 "$stories/greedy_t0_reference.txt" > stories.txt
  for i in 1 2 3 4 5 6 7 8; do cat "$stories/greedy_t0_reference.txt" >> stories.txt; done
  "$hyena" prepare --input stories.txt --output stories.tok --tokenizer "$stories/tok512.bin" > /dev/null \
    || fail "prepare with the llama2.c tokenizer"
  "$hyena" eval --model "$stories/stories260K.bin" --data stories.tok --seq 64 --json --threads 1 > teacher_eval.json \
    || fail "eval of a llama2.c checkpoint"
  grep -q '"arch":"llama"' teacher_eval.json || fail "llama2.c eval: $(cat teacher_eval.json)"
  # Rank 1 with a stage 1: operator alignment, then output alignment, through the CLI.
  "$hyena" distill --teacher "$stories/stories260K.bin" --train stories.tok --out distilled --batch 2 --seq 32 \
    --stage1-tokens-per-layer 128 --stage2-tokens 256 --rank 1 --threads 1 > distill.out 2> /dev/null \
    || fail "distill from a llama2.c teacher"
  [[ -s distilled/model.safetensors ]] || fail "distilled/model.safetensors missing"
  grep -q "rank-1 Hyena operator" distill.out || fail "--rank 1: $(head -n 2 distill.out)"
  grep -q "stage 1: .*([1-9][0-9]* operator alignment" distill.out || fail "no operator alignment: $(cat distill.out)"
  expect_error "operator alignment at rank 4" distill --teacher "$stories/stories260K.bin" --train stories.tok \
    --out bad_op --stage1-tokens-per-layer 128 --operator-fraction 0.5 --threads 1
  grep -q "add --rank 1" bad.err || fail "operator alignment at rank 4: $(cat bad.err)"
  # No budget flags: the default recipe over one pass of the training file, its plan printed first.
  "$hyena" distill --teacher "$stories/stories260K.bin" --train stories.tok --out distilled_default --batch 2 \
    --seq 32 --threads 1 > distill_default.out 2> /dev/null || fail "distill with the default budget"
  grep -q "^distillation plan: [1-9]" distill_default.out || fail "no plan: $(cat distill_default.out)"
  grep -q "stage 0: .*from the teacher's attention" distill_default.out || fail "default init: $(cat distill_default.out)"
  grep -q "order-2 rank-4 Hyena operator" distill_default.out || fail "default rank: $(head -n 1 distill_default.out)"
  grep -q "stage 2: .* + 1 x hidden MSE" distill_default.out || fail "default hidden-state MSE: $(cat distill_default.out)"
  grep -q " on 0 tokens" distill_default.out && fail "default distill trained on 0 tokens"
  grep -q '"label":"stage 1 fit"' distilled_default/metrics.jsonl || fail "no per-layer fit in metrics.jsonl"
  "$hyena" eval --model distilled/model.safetensors --data stories.tok --seq 32 --json --threads 1 \
    | grep -q '"arch":"hyena_llama"' || fail "eval of the distilled llama student"
  # The student decodes exactly (streaming), by recomputation, and through its modal form.
  gen_s=(generate --model distilled/model.safetensors --tokenizer "$stories/tok512.bin" --prompt "Once" --temperature 0
         --tokens 30 --threads 1)
  "$hyena" "${gen_s[@]}" --decode exact > s_exact.txt 2> /dev/null || fail "student generate --decode exact"
  "$hyena" "${gen_s[@]}" --decode recompute > s_recompute.txt 2> /dev/null || fail "student generate --decode recompute"
  cmp -s s_exact.txt s_recompute.txt || fail "exact and recomputed greedy text differ"
  "$hyena" convert --model distilled/model.safetensors --out modal.safetensors --modal-order 8 --data stories.tok \
    --kl-tokens 256 --threads 1 > convert.out 2> /dev/null || fail "convert --modal-order 8"
  grep -q "KL" convert.out || fail "convert printed no KL: $(cat convert.out)"
  "$hyena" generate --model modal.safetensors --tokenizer "$stories/tok512.bin" --prompt "Once" --temperature 0 \
    --tokens 30 --threads 1 > s_modal.txt 2> modal.err || fail "generate from the modal form: $(cat modal.err)"
  grep -q "^Once" s_modal.txt || fail "modal generate: $(cat s_modal.txt)"
  expect_error "modal decode without a modal form" generate --model distilled/model.safetensors --prompt x --decode modal
  # A rank-2 student: the rank is saved with the checkpoint and read back by eval and generate.
  "$hyena" distill --teacher "$stories/stories260K.bin" --train stories.tok --out distilled_rank2 --batch 2 --seq 32 \
    --stage2-tokens 256 --rank 2 --threads 1 > /dev/null 2>&1 || fail "distill --rank 2"
  "$hyena" eval --model distilled_rank2/model.safetensors --data stories.tok --seq 32 --json --threads 1 \
    | grep -q '"arch":"hyena_llama"' || fail "eval of the rank-2 student"
  "$hyena" "${gen_s[@]/distilled\//distilled_rank2/}" --decode exact > r_exact.txt 2> /dev/null || fail "rank-2 generate"
  "$hyena" "${gen_s[@]/distilled\//distilled_rank2/}" --decode recompute > r_recompute.txt 2> /dev/null ||
    fail "rank-2 generate --decode recompute"
  cmp -s r_exact.txt r_recompute.txt || fail "rank 2: exact and recomputed greedy text differ"
  "$hyena" distill --teacher "$stories/stories260K.bin" --train stories.tok --out distilled_taylor --batch 2 \
    --seq 32 --stage2-tokens 64 --rank 3 --branches taylor --threads 1 > taylor.out 2> /dev/null ||
    fail "distill --rank 3 --branches taylor"
  grep -q "rank 3: branches after the first as the softmax score's first-order terms" taylor.out ||
    fail "taylor plan: $(cat taylor.out)"
  expect_error "unknown --branches" distill --teacher "$stories/stories260K.bin" --train stories.tok --out bad_b \
    --rank 2 --branches sideways --stage2-tokens 64 --threads 1
  echo "ok: llama2.c teacher -> generate, prepare, eval, distill"
elif [[ "${HYENA_REQUIRE_DATA:-0}" == 1 ]]; then
  fail "HYENA_REQUIRE_DATA=1 but $stories/stories260K.bin is missing"
fi
echo "smoke test passed"
