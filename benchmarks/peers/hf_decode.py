"""Hugging Face transformers' key/value-cache decoding, the peer of bench_decode's teacher_kv path.

  PYTHONPATH=<transformers> python3 benchmarks/peers/hf_decode.py --model DIR --contexts 128,1024 \
      --tokens 64 --threads 1

DIR is the teacher bench_decode wrote with --hf-out (a GPT-NeoX folder). For each context C: a
C-token prompt fills the key/value cache (in chunks of --chunk tokens, to fit in memory), then `tokens` greedy tokens are decoded
one at a time with the returned past_key_values, which is what `generate` does; each of those steps
is timed, and tokens/s comes from the median step, as in bench_decode. Prints one JSON object per context, as bench_decode does.
"""
import argparse
import json
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--contexts", default="128,1024,4096,16384,65536")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--chunk", type=int, default=2048, help="prefill chunk (tokens); decoding is not affected")
    ap.add_argument("--attn", default="eager", help="attn_implementation (eager or sdpa where supported)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    import transformers
    from transformers import AutoModelForCausalLM
    # GPT-NeoX's eager attention keeps a (max_positions x max_positions) causal mask per layer:
    # at the folder's 65,600 positions that is 17 GB, so size it to what this run needs.
    need = max(int(x) for x in a.contexts.split(",")) + a.tokens
    kwargs = {"torch_dtype": torch.float32, "max_position_embeddings": need}
    try:
        model = AutoModelForCausalLM.from_pretrained(a.model, attn_implementation=a.attn, **kwargs)
    except (TypeError, ValueError):
        model = AutoModelForCausalLM.from_pretrained(a.model, **kwargs)
    model.eval()
    vocab = model.config.vocab_size
    for C in [int(x) for x in a.contexts.split(",")]:
        g = torch.Generator().manual_seed(C)
        prompt = torch.randint(0, vocab, (1, C), generator=g)
        try:
            with torch.inference_mode():
                # The prompt goes through in chunks of at most a.chunk tokens, each attending to the
                # cache of the ones before: eager attention holds (chunk x context) scores per head,
                # and a single 16K-token forward needs more than this machine's 24 GiB.
                t0 = time.perf_counter()
                past = None
                for s in range(0, C, a.chunk):
                    out = model(prompt[:, s:s + a.chunk], past_key_values=past, use_cache=True)
                    past = out.past_key_values
                prefill = time.perf_counter() - t0
                nxt = out.logits[:, -1].argmax(-1, keepdim=True)
                steps = []
                for _ in range(a.tokens):
                    t0 = time.perf_counter()
                    out = model(nxt, past_key_values=past, use_cache=True)
                    past, nxt = out.past_key_values, out.logits[:, -1].argmax(-1, keepdim=True)
                    steps.append(time.perf_counter() - t0)
                decode = sum(steps)
                median = sorted(steps)[len(steps) // 2]  # the per-token cost, as bench_decode reports it
            print(json.dumps({"impl": "transformers", "path": "teacher_kv", "context": C, "tokens": a.tokens,
                              "tok_s": 1 / median, "ms_per_token": 1e3 * median,
                              "ms_per_token_mean": 1e3 * decode / a.tokens,
                              "prefill_s": prefill, "prefill_chunk": a.chunk, "threads": a.threads, "torch": torch.__version__,
                              "transformers": transformers.__version__, "attn": a.attn}), flush=True)
        except RuntimeError as e:  # out of memory at the longest contexts
            print(json.dumps({"impl": "transformers", "path": "teacher_kv", "context": C, "error": str(e)[:200]}),
                  flush=True)


if __name__ == "__main__":
    main()
