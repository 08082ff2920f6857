#!/usr/bin/env python3
"""Mutation spot-check: one-line bugs put into the code one at a time; each must turn a named test red.

Run once per release (not in CI: it rebuilds one test program per mutation, ~1-3 min each on 2 cores):
    python3 scripts/mutation-test.py                 # every mutation, build dir build/ (configured)
    python3 scripts/mutation-test.py --only 3 5      # some of them (numbers as listed by --list)
    python3 scripts/mutation-test.py --list

For each mutation: the original text must occur exactly once in the file; it is replaced, the test's
program is rebuilt (cmake --build BUILD --target <area>_<name>), the test is run with ctest, and the
file is restored (also on Ctrl-C). A mutation the test does not catch "survives": a missing test.
A mutation whose build fails is reported as such (fix the mutation, not the code). Exit status:
0 when every mutation was caught, 1 otherwise. Results go to stdout as a table.
"""
import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (file, original text, mutated text, ctest name that must fail, what the bug is)
MUTATIONS = [
    ("include/hyena/train/trainer.hpp",
     "random_window_loader loader(train_tokens, o_.batch, o_.seq, o_.seed, step * o_.grad_accum);",
     "random_window_loader loader(train_tokens, o_.batch, o_.seq, o_.seed, step);",
     "train.test_resume_accum", "resume with grad_accum > 1 restarts the loader at step, not step * grad_accum"),
    ("include/hyena/backend/cpu/attention.hpp",
     "if (r == rot_dims && b == base && s <= seq) return;",
     "if (r == rot_dims && s <= seq) return;",
     "backend.test_attention_guards", "the context's rotary cos/sin table ignores the base"),
    ("include/hyena/backend/cpu_ref/attention.hpp",
     "          for (index_t j = 0; j <= t; ++j) {\n            const T* k = qkv",
     "          for (index_t j = 0; j <= t + 1 && j < seq; ++j) {\n            const T* k = qkv",
     "backend.test_attention_guards", "cpu_ref causal attention scores one future key"),
    ("include/hyena/backend/cpu/fused_attention.hpp",
     "    const index_t n = t0 + i + 1;\n    index_t j = 0;\n    batch vmax(r[0]);",
     "    const index_t n = std::min(t0 + i + 2, kend);\n    index_t j = 0;\n    batch vmax(r[0]);",
     "backend.test_attention_guards", "fused causal attention's softmax reads one score past the diagonal"),
    ("include/hyena/io/bpe_model.hpp",
     "return rank != o.rank ? rank > o.rank : pos > o.pos;",
     "return rank != o.rank ? rank > o.rank : pos < o.pos;",
     "io.test_bpe_tokenizer", "byte-level BPE merges the rightmost of equal-rank pairs first"),
    ("include/hyena/io/llama2c_tokenizer.hpp",
     "return a.score < b.score || (a.score == b.score && a.left > b.left);",
     "return a.score < b.score || (a.score == b.score && a.left < b.left);",
     "io.test_llama2c", "SentencePiece BPE merges the rightmost of equal-score pairs first"),
    ("include/hyena/io/safetensors.hpp",
     "      if (t->begin > cursor)",
     "      if (false && t->begin > cursor)",
     "io.test_safetensors_rules", "safetensors accepts a gap between tensors"),
    ("include/hyena/io/llama2c.hpp",
     "std::memcpy(&s, scales + 4 * (i / group), 4);",
     "std::memcpy(&s, scales + 4 * ((i / group) / 2), 4);",
     "io.test_llama2c_versions", "llama2.c version 2 reads the wrong scale for a group"),
    ("include/hyena/io/hf_checkpoint.hpp",
     "if (consumed.count(name) || hf_detail::known_buffer(info.arch, name)) continue;",
     "continue;",
     "io.test_hf_llama_bias", "an HF tensor no parameter reads is dropped silently"),
    ("include/hyena/nn/swiglu_mlp.hpp",
     "B::axpy(ctx, I, T(1), k.dbias_gate_up.data + I, g.up.bias.data);",
     "B::axpy(ctx, I, T(1), k.dbias_gate_up.data, g.up.bias.data);",
     "nn.test_swiglu_mlp", "SwiGLU's up-projection bias gets the gate's gradient"),
    ("include/hyena/nn/swiglu_mlp.hpp",
     "B::add_bias(ctx, rows, 2 * I, k.bias_gate_up.data, gu.data);",
     "(void)0;",
     "io.test_hf_llama_bias", "SwiGLU drops the gate/up biases in forward (mlp_bias logits)"),
    ("include/hyena/io/bpe_tokenizer.hpp",
     "if (d.cp == utf8::invalid && !model_->has_byte(c)) {",
     "if (false) {",
     "io.test_fuzz_regressions", "an invalid UTF-8 byte without a token is dropped silently"),
    ("include/hyena/io/hf_config.hpp",
     "HYENA_FAIL(f.source, \": field '\", k, \"' (\", it.value().dump(),",
     "continue; HYENA_FAIL(f.source, \": field '\", k, \"' (\", it.value().dump(),",
     "io.test_hf_llama_bias", "an unknown config.json field is ignored"),
    ("include/hyena/config.hpp",
     "if (error_locations()) os << \" [\" << file << \":\" << line << \"]\";",
     "os << \" [\" << file << \":\" << line << \"]\";",
     "core.test_error_messages", "user-facing errors end with the library's source path"),
]


def run(cmd, **kw):
    return subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build")
    ap.add_argument("--jobs", default=str(os.cpu_count() or 2))
    ap.add_argument("--only", nargs="*", type=int)
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args()
    if a.list:
        for i, (f, _, _, test, why) in enumerate(MUTATIONS, 1):
            print("%2d  %-28s %-46s %s" % (i, test, f, why))
        return 0
    env = dict(os.environ)
    env.setdefault("HYENA_DATA_DIR", os.path.join(ROOT, "..", "shared", "data"))
    results = []
    for i, (path, old, new, test, why) in enumerate(MUTATIONS, 1):
        if a.only and i not in a.only:
            continue
        full = os.path.join(ROOT, path)
        text = open(full).read()
        if text.count(old) != 1:
            results.append((i, test, "STALE (original text found %d times)" % text.count(old), 0, why))
            continue
        target = test.replace(".", "_")
        t0 = time.time()
        try:
            with open(full, "w") as f:
                f.write(text.replace(old, new))
            b = run(["cmake", "--build", a.build, "-j", a.jobs, "--target", target])
            if b.returncode != 0:
                verdict = "BUILD FAILED"
            else:
                r = run(["ctest", "--test-dir", a.build, "-R", "^%s$" % test.replace(".", "\\."), "--timeout", "900"],
                        env=env)
                ran = "tests passed" in r.stdout or "tests failed" in r.stdout
                verdict = "caught" if r.returncode != 0 and ran else ("SURVIVED" if ran else "NO TEST RAN")
        finally:
            with open(full, "w") as f:
                f.write(text)
        results.append((i, test, verdict, time.time() - t0, why))
        print("%2d %-10s %-28s %5.0fs  %s" % (i, verdict, test, time.time() - t0, why), flush=True)
    # Rebuild what the mutations touched, so the build tree matches the sources again.
    targets = sorted({m[3].replace(".", "_") for j, m in enumerate(MUTATIONS, 1) if not a.only or j in a.only})
    run(["cmake", "--build", a.build, "-j", a.jobs, "--target", *targets])
    caught = sum(1 for r in results if r[2] == "caught")
    print("\nmutation test: %d of %d caught" % (caught, len(results)))
    for r in results:
        if r[2] != "caught":
            print("  #%d %s: %s (%s)" % (r[0], r[2], r[4], r[1]))
    return 0 if caught == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
