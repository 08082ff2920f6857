#!/usr/bin/env python3
"""Decoding speed against context length, hyena beside Hugging Face transformers, in one run.

  python3 benchmarks/decode_compare.py --build build [--contexts 128,1024,4096,16384,65536]
      [--tokens 64] [--threads 1] [--hf-python "PYTHONPATH=/tmp/hfpy /usr/bin/python3"]

1. build/benchmarks/bench_decode times, for each context C (a C-token prompt, then `tokens`
   greedy tokens one at a time): the GPT-NeoX teacher with hyena's key/value cache, its Hyena
   student exact (O(t) per token) and modal (16 states per channel, O(1) per token), and writes
   the teacher as a Hugging Face folder;
2. benchmarks/peers/hf_decode.py times transformers' decoding with its key/value cache for that
   same teacher, same threads, same machine (torch on OpenBLAS when Debian's torch would load the
   reference BLAS: see compare.py);
3. writes docs/results/decode.json (every row, the command and versions) and
   docs/results/decode.png (tokens/s against context, log-log), and prints a table.
"""
import argparse
import json
import os
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))


def lines(cmd, env=None):
    print("$", cmd if isinstance(cmd, str) else " ".join(cmd), file=sys.stderr, flush=True)
    out = subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE, shell=isinstance(cmd, str)).stdout
    return [json.loads(x) for x in out.decode().splitlines() if x.startswith("{")]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--contexts", default="128,1024,4096,16384,65536")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=1, help="hyena's paths: rounds of --tokens per context, the "
                    "contexts taking turns (bench_decode --rounds)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--hf-python", default="PYTHONPATH=/tmp/hfpy /usr/bin/python3",
                    help="how to run Python with torch + transformers")
    ap.add_argument("--hf-contexts", default=None, help="contexts for transformers (default: the same)")
    ap.add_argument("--hyena-rows", default=None, help="take hyena's rows from this decode.json (the teacher "
                    "folder must be in BUILD/decode_teacher_hf) and run only transformers")
    ap.add_argument("--json", default=os.path.join(ROOT, "docs", "results", "decode.json"))
    a = ap.parse_args()
    hf_dir = os.path.join(a.build, "decode_teacher_hf")
    if a.hyena_rows:  # hyena's rows from an earlier run's JSON; only the peer runs now
        with open(a.hyena_rows) as fh:
            rows = [r for r in json.load(fh)["rows"] if r["impl"] == "hyena"]
    else:
        rows = lines([os.path.join(a.build, "benchmarks", "bench_decode"), "--contexts", a.contexts, "--tokens",
                      str(a.tokens), "--rounds", str(a.rounds), "--threads", str(a.threads), "--hf-out", hf_dir])
    env = dict(os.environ)
    # Debian's torch loads the reference BLAS; give it OpenBLAS as compare.py does.
    from compare import SYSTEM_OPENBLAS, fetch_openblas
    blas = next((d for d in SYSTEM_OPENBLAS if os.path.exists(os.path.join(d, "libblas.so.3"))), None)
    if not blas:
        blas = fetch_openblas(os.path.join(os.path.abspath(a.build), "torch-openblas"))
    env["LD_LIBRARY_PATH"] = blas + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    # One process per context: running out of memory at a long context loses only that row.
    for c in (a.hf_contexts or a.contexts).split(","):
        peer = (f"{a.hf_python} {shlex.quote(os.path.join(ROOT, 'benchmarks', 'peers', 'hf_decode.py'))} --model "
                f"{shlex.quote(hf_dir)} --contexts {c} --tokens {a.tokens} --threads {a.threads}")
        try:
            rows += lines(peer, env)
        except subprocess.CalledProcessError as e:
            rows.append({"impl": "transformers", "path": "teacher_kv", "context": int(c),
                         "error": f"exit status {e.returncode}" + (" (killed: out of memory)" if e.returncode in (-9, 137) else "")})
    by = {(r["impl"], r["path"], r["context"]): r for r in rows}
    contexts = [int(x) for x in a.contexts.split(",")]
    print("\n| context | teacher, hyena KV (tok/s) | teacher, transformers KV (tok/s) | student exact (tok/s) | "
          "student modal (tok/s) | modal / our teacher | our teacher / transformers | state bytes (teacher / exact / modal) |")
    print("|---|---|---|---|---|---|---|---|")
    for c in contexts:
        t = by.get(("hyena", "teacher_kv", c), {})
        h = by.get(("transformers", "teacher_kv", c), {})
        e = by.get(("hyena", "student_exact", c), {})
        m = by.get(("hyena", "student_modal", c), {})
        f = lambda r: f"{r['tok_s']:.1f}" if "tok_s" in r else "-"  # noqa: E731
        ratio = lambda x, y: f"{x['tok_s'] / y['tok_s']:.2f}x" if "tok_s" in x and "tok_s" in y else "-"  # noqa: E731
        sb = lambda r: str(r.get("state_bytes", "-"))  # noqa: E731
        print(f"| {c} | {f(t)} | {f(h)} | {f(e)} | {f(m)} | {ratio(m, t)} | {ratio(t, h)} | {sb(t)} / {sb(e)} / {sb(m)} |")
    modal = [by[("hyena", "student_modal", c)]["ms_per_token"] for c in contexts if ("hyena", "student_modal", c) in by]
    flat = [c for c in contexts if c >= 1024 and ("hyena", "student_modal", c) in by]
    spread = None
    if flat:
        ms = [by[("hyena", "student_modal", c)]["ms_per_token"] for c in flat]
        spread = max(ms) / min(ms) - 1
        print(f"\nmodal per-token time from {flat[0]} to {flat[-1]}: {min(ms):.3f}-{max(ms):.3f} ms ({100 * spread:.1f}% spread)")
    os.makedirs(os.path.dirname(a.json), exist_ok=True)
    with open(a.json, "w") as fh:
        json.dump({"command": " ".join(sys.argv), "rows": rows, "modal_spread_1k_up": spread}, fh, indent=1)
    dat = a.json[:-5] + ".dat"
    with open(dat, "w") as fh:
        for key in [("hyena", "teacher_kv"), ("transformers", "teacher_kv"), ("hyena", "student_exact"),
                    ("hyena", "student_modal")]:
            fh.write(f"# {key}\n")
            for c in contexts:
                r = by.get(key + (c,), {})
                if "tok_s" in r:
                    fh.write(f"{c} {r['tok_s']}\n")
            fh.write("\n\n")
    png = a.json[:-5] + ".png"
    titles = ["teacher, hyena KV cache", "teacher, transformers KV cache", "Hyena student, exact",
              "Hyena student, modal (16 states)"]
    plots = ", ".join(f"'{dat}' index {i} with linespoints title '{t}'" for i, t in enumerate(titles))
    script = (f"set terminal png size 900,560\nset output '{png}'\nset logscale xy\nset grid\n"
              f"set title 'Decoding speed against context length ({a.threads} thread)'\n"
              "set xlabel 'context (tokens)'\nset ylabel 'tokens per second'\nset key bottom left\nplot " + plots + "\n")
    subprocess.run(["gnuplot"], input=script.encode(), check=False)
    os.remove(dat)
    print("wrote", a.json, "and", png)


if __name__ == "__main__":
    main()
