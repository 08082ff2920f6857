#!/usr/bin/env python3
"""gemm_ab.py: the old and a new cpu/gemm_kernel.hpp, side by side in one binary, on the models' shapes.

    python3 benchmarks/gemm_ab/gemm_ab.py OLD_HEADER NEW_HEADER [--rounds 30] [--out DIR]

OLD_HEADER is e.g. a copy from `git show HEAD:include/hyena/backend/cpu/gemm_kernel.hpp`. Each
version is rewritten into its own namespace (gemm_a, gemm_b) and compiled into gemm_ab.cpp with
-O3 -march=native and 64-byte loop alignment; without that alignment, two builds of the *same*
kernel differed by a steady 4-8% from code placement alone (measured 2026-12-01). The two versions
then alternate call by call on one thread. Prints, per shape, GFLOP/s of each and the median of
time(old) / time(new): above 1, the new one is faster.
"""
import argparse
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# bench_gemm's shapes at width 128 (name, m, n, k, trans_a, trans_b)
SHAPES = [("qkv forward", 2048, 384, 128, 0, 1), ("MLP up forward", 2048, 512, 128, 0, 1),
          ("MLP down forward", 2048, 128, 512, 0, 1), ("MLP up input grad", 2048, 128, 512, 0, 0),
          ("MLP up weight grad", 512, 128, 2048, 1, 0), ("qkv weight grad", 384, 128, 2048, 1, 0),
          ("P^T dO (no triangle)", 256, 32, 256, 1, 0), ("P v (no triangle)", 256, 32, 256, 0, 0)]


def variant(header, name, out_dir):
    text = open(header).read()
    if "namespace hyena::backend::gemm_detail" not in text:
        sys.exit(f"gemm_ab.py: {header} is not a cpu/gemm_kernel.hpp (no namespace gemm_detail)")
    text = text.replace("namespace hyena::backend::gemm_detail", "namespace hyena::backend::gemm_" + name)
    text = text.replace("#pragma once", "")
    text = text.replace('#include "../../config.hpp"', "#include <hyena/config.hpp>")
    text = text.replace('#include "../triangle.hpp"', "#include <hyena/backend/triangle.hpp>")
    # both versions define the same macros: let the second redefine them
    text = "#undef HYENA_UNROLL_ALL\n#undef HYENA_UNROLL_DEPTH\n" + text
    with open(os.path.join(out_dir, f"variant_{name}.hpp"), "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--out", help="build directory (default: a temporary one)")
    args = ap.parse_args()
    out = args.out or tempfile.mkdtemp(prefix="gemm_ab.")
    os.makedirs(out, exist_ok=True)
    variant(args.old, "a", out)
    variant(args.new, "b", out)
    binary = os.path.join(out, "gemm_ab")
    subprocess.run(["c++", "-std=c++20", "-O3", "-march=native", "-fopenmp", "-falign-loops=64",
                    "-falign-functions=64", "-I", out, "-I", os.path.join(ROOT, "include"),
                    os.path.join(HERE, "gemm_ab.cpp"), "-o", binary], check=True)
    print("| product | m x n x k | old GFLOP/s | new GFLOP/s | old time / new time |")
    print("|---|---|---|---|---|")
    for name, m, n, k, ta, tb in SHAPES:
        res = subprocess.run([binary, str(m), str(n), str(k), str(ta), str(tb), str(args.rounds)],
                             check=True, capture_output=True, text=True).stdout.split()
        print(f"| {name} | {m}x{n}x{k} | {res[0]} | {res[1]} | {res[2]} |", flush=True)


if __name__ == "__main__":
    main()
