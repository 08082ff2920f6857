#!/usr/bin/env python3
"""compare.py: hyena against PyTorch on the CPU, side by side, in one command.

  python3 benchmarks/compare.py --build build [--threads 2] [--rounds 7] [--quick] [--out FILE.md]
                                [--json docs/results/cpu.json] [--torch-python PY] [--debian-python PY]
                                [--columns eager sdpa compile debian] [--bf16]

Runs ours (BUILD/benchmarks/bench_train, bench_operator) and benchmarks/peers/torch_bench.py
alternately (ours, then every PyTorch column, each round), every measurement in a fresh process with
the same thread count (OMP_NUM_THREADS for both, torch.set_num_threads too), takes the median of
each figure over the rounds and prints a markdown table with ratios (ours / torch for throughput,
torch / ours for times and memory: above 1 means hyena is ahead) against every column and against
the strongest PyTorch column of the row (its best median), with hyena's ratio to it in every round,
the exact commands and the versions; the same numbers, per round, go to --json (docs/results/cpu.json
by default; with --quick only where --json says).

PyTorch columns (the peer is what a user would pick today):
  eager    current PyTorch (--torch-python; default benchmarks/peers/.venv-torch, which
           benchmarks/peers/setup_torch_venv.sh makes from PyPI), attention written out
           (matmul, causal mask, softmax, matmul);
  SDPA     the same with F.scaled_dot_product_attention(is_causal=True), what Hugging Face
           transformers runs by default;
  compile  the SDPA model under torch.compile (Inductor builds C++ with the system compiler; checked
           first on a tiny function, and a column that fails says why instead of stopping the run);
  debian   Debian's python3-torch 1.13 (--debian-python, /usr/bin/python3), eager only (it has
           neither SDPA nor torch.compile).
A column that cannot run is shown as not available, with the reason. Rows without attention (the
Hyena student, the Hyena operator) have no SDPA run: it would be the eager one again ("= eager").

MFU: every timed row's model FLOPs (benchmarks/flops.py: the products and FFTs, training = 3x forward)
over its time, as a fraction of the machine's FMA peak at the run's thread count, measured before and
after the rounds by BUILD/benchmarks/bench_gemm --peak-only, the higher reading kept (a busy host can
halve one; AVX2 and AVX-512 machines differ by 1.4-2x per thread); the same count divides hyena's time
and every PyTorch column's. Its last column is twice the strongest column's MFU: what a 2x lead needs.

Peak memory: the growth of the process's peak resident set over the bare runtime. Ours:
bench_train's ru_maxrss (os.wait4) minus that of a bench_train that exits at once; bench_operator
reports VmHWM minus its starting VmRSS. Torch: VmHWM minus VmRSS after `import torch`, as
torch_bench.py reports it (its runtime, base_rss_mb, is a couple of hundred MB more).

Debian's PyTorch is linked against libblas.so.3, which is the slow reference BLAS unless an
optimised one is installed; a peer on reference BLAS would be a straw man. If the reference BLAS
is what torch would load, this uses OpenBLAS from --blas-dir, from a system openblas directory,
or (with --fetch-openblas) unpacked from Debian's libopenblas0-openmp into BUILD/torch-openblas
(apt-get download, nothing installed system-wide), via LD_LIBRARY_PATH for the torch runs only.
PyTorch from PyPI brings its own BLAS (MKL / oneDNN).

--bf16: mixed precision on both sides, the training rows only: ours with bench_train
--matmul-precision medium (bf16 inputs, fp32 sums in every product, attention's included), the
current-PyTorch columns under torch.autocast(dtype=torch.bfloat16) (torch_bench.py --autocast bf16);
Debian's column is left out, and the MFU column is against the bf16 dot-product peak
(bench_gemm --peak-only's bf16_peak_gflops: vdpbf16ps's, twice the FMA peak on Zen 4, or AMX
tiles' where the CPU has them and medium runs on them). No default --json.
"""
import argparse
import datetime
import glob
import json
import os
import platform
import re
import selectors
import shlex
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import flops  # noqa: E402  (benchmarks/flops.py: model FLOPs, the MFU column)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
TORCH_BENCH = os.path.join(HERE, "peers", "torch_bench.py")
SYSTEM_OPENBLAS = ["/usr/lib/x86_64-linux-gnu/openblas-openmp", "/usr/lib/x86_64-linux-gnu/openblas-pthread"]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run_with_rss(cmd, env):
    """Runs cmd, returns (stdout, stderr, exit status, ru_maxrss of that process in MB). Forks and
    waits with os.wait4 itself: subprocess reaps the child and loses its own rusage."""
    r_out, w_out = os.pipe()
    r_err, w_err = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.dup2(w_out, 1)
        os.dup2(w_err, 2)
        for fd in (r_out, r_err, w_out, w_err):
            os.close(fd)
        try:
            os.execvpe(cmd[0], cmd, env)
        finally:
            os._exit(127)
    os.close(w_out)
    os.close(w_err)
    # Drain both pipes as data comes, so neither can fill up and block the child.
    sel = selectors.DefaultSelector()
    bufs = {r_out: [], r_err: []}
    for fd in bufs:
        sel.register(fd, selectors.EVENT_READ)
    open_fds = set(bufs)
    while open_fds:
        for key, _ in sel.select():
            chunk = os.read(key.fd, 65536)
            if chunk:
                bufs[key.fd].append(chunk)
            else:
                sel.unregister(key.fd)
                os.close(key.fd)
                open_fds.discard(key.fd)
    _, status, ru = os.wait4(pid, 0)
    rc = os.waitstatus_to_exitcode(status)
    return (b"".join(bufs[r_out]).decode(), b"".join(bufs[r_err]).decode(), rc, ru.ru_maxrss / 1024.0)


def json_lines(text):
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


# ----------------------------------------------------------------------------- PyTorch columns

VENV_PYTHON = os.path.join(HERE, "peers", ".venv-torch", "bin", "python")
DEBIAN_PYTHON = "/usr/bin/python3"

# key, interpreter ("current": --torch-python, "debian": --debian-python), torch_bench.py flags, what it is
COLUMNS = [
    ("eager", "current", ["--attention", "eager"], "attention written out: matmul, causal mask, softmax, matmul"),
    ("sdpa", "current", ["--attention", "sdpa"],
     "F.scaled_dot_product_attention(is_causal=True), what Hugging Face transformers runs by default"),
    ("compile", "current", ["--attention", "sdpa", "--compile"], "the SDPA model under torch.compile (Inductor)"),
    ("debian", "debian", ["--attention", "eager"], "Debian's python3-torch, eager attention (no SDPA, no compile)"),
]
COLUMN_KEYS = [c[0] for c in COLUMNS]

PROBE = ("import json, torch, torch.nn.functional as F; torch.set_num_threads(%d); a = torch.randn(64, 64); a @ a; "
         "maps = open('/proc/self/maps').read().split(); "
         "blas = sorted({m for m in maps if 'blas' in m.lower() and m.startswith('/')}); "
         "cfg = torch.__config__.show().replace(',', '\\n').split(); "
         "built = [x for x in cfg if x.startswith('BLAS_INFO=')]; "
         "print(json.dumps({'torch': torch.__version__, 'threads': torch.get_num_threads(), 'blas': blas, "
         "'blas_info': built[0].split('=', 1)[1] if built else '?', "
         "'sdpa': hasattr(F, 'scaled_dot_product_attention'), 'compile': hasattr(torch, 'compile')}))")

# A tiny torch.compile on the CPU: Inductor generates C++ and builds it with the system compiler, so
# this fails early (with the reason) where the compiler or the headers are missing.
COMPILE_PROBE = ("import torch; torch.set_num_threads(1)\n"
                 "import torch._inductor.config as c; c.compile_threads = 1\n"
                 "f = torch.compile(lambda x: torch.sin(x) * 2 + 1)\n"
                 "x = torch.randn(4, 16)\n"
                 "assert torch.allclose(f(x), torch.sin(x) * 2 + 1)\n"
                 "print('ok')")


def failure_reason(err, rc):
    """One line saying why a peer run failed: torch_bench.py's own "failed:" line, else the last
    exception line of the traceback, else the last line, else the exit status."""
    lines = [x.strip() for x in err.splitlines() if x.strip()]
    for x in reversed(lines):
        if x.startswith("torch_bench.py: failed: "):
            return x[len("torch_bench.py: failed: "):][:300]
    for x in reversed(lines):
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception)\b.*:", x):
            return x[:300]
    if rc < 0:
        return f"killed by signal {-rc}"
    return lines[-1][:300] if lines else f"exit status {rc}"


def torch_probe(py, env, threads):
    """(info, None), or (None, why not) when py cannot import torch."""
    try:
        p = subprocess.run([py, "-c", PROBE % threads], env=env, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"{py}: {e}"
    if p.returncode != 0:
        return None, f"{py} cannot import torch ({failure_reason(p.stderr, p.returncode)})"
    return json.loads(p.stdout.strip().splitlines()[-1]), None


def is_reference_blas(paths):
    return any("/blas/libblas" in os.path.realpath(x) or os.path.realpath(x).endswith("/blas/libblas.so.3")
               for x in paths) and not any("openblas" in x for x in paths)


def fetch_openblas(dest):
    lib = os.path.join(dest, "usr/lib/x86_64-linux-gnu/openblas-openmp")
    if os.path.exists(os.path.join(lib, "libblas.so.3")):
        return lib
    os.makedirs(dest, exist_ok=True)
    log("compare.py: fetching Debian's libopenblas0-openmp into", dest)
    subprocess.run(["apt-get", "download", "libopenblas0-openmp"], cwd=dest, check=True,
                   stdout=subprocess.DEVNULL)
    deb = sorted(glob.glob(os.path.join(dest, "libopenblas0-openmp_*.deb")))[-1]
    subprocess.run(["dpkg", "-x", deb, dest], check=True)
    return lib


def torch_environment(a, py, base_env):
    """(env, info, None) for the torch runs of interpreter py, or (None, None, why not). Swaps the
    reference BLAS for OpenBLAS where torch would load it (Debian's torch)."""
    env = dict(base_env)
    info, why = torch_probe(py, env, a.threads)
    if info is None:
        return None, None, why
    note = "as installed"
    if is_reference_blas(info["blas"]):
        candidates = ([a.blas_dir] if a.blas_dir else []) + SYSTEM_OPENBLAS
        found = next((d for d in candidates if d and os.path.exists(os.path.join(d, "libblas.so.3"))), None)
        if not found and a.fetch_openblas:
            found = fetch_openblas(os.path.join(os.path.abspath(a.build), "torch-openblas"))
        if found:
            env["LD_LIBRARY_PATH"] = found + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
            info, why = torch_probe(py, env, a.threads)
            if info is None:
                return None, None, why
            note = f"OpenBLAS via LD_LIBRARY_PATH={found} (the system libblas.so.3 is the reference BLAS)"
        else:
            note = ("WARNING: torch is on the slow reference BLAS; its matrix products are not representative "
                    "(install libopenblas0-openmp, or pass --fetch-openblas or --blas-dir)")
            log("compare.py:", note)
    info["note"] = note
    info["python"] = py
    return env, info, None


def compile_probe(py, env):
    log(f"compare.py: checking torch.compile with {py} (a tiny model; Inductor builds C++)")
    try:
        p = subprocess.run([py, "-c", COMPILE_PROBE], env=env, capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        return "torch.compile of a tiny function took over 15 minutes"
    return None if p.returncode == 0 else failure_reason(p.stderr, p.returncode)


def setup_columns(a, base):
    """{key: column}: label, python, flags, env, info, and reason (None when it can run)."""
    env_base = dict(base)
    env_base["TORCHINDUCTOR_COMPILE_THREADS"] = str(a.threads)  # compile workers within the thread budget
    current_py = a.torch_python or (VENV_PYTHON if os.access(VENV_PYTHON, os.X_OK) else None)
    a.torch_python_used = current_py
    interp = {}
    if current_py:
        interp["current"] = torch_environment(a, current_py, env_base)
    else:
        interp["current"] = (None, None, f"no current PyTorch: {os.path.relpath(VENV_PYTHON, ROOT)} is missing "
                                         "(run benchmarks/peers/setup_torch_venv.sh, or pass --torch-python)")
    if not a.debian_python:
        interp["debian"] = (None, None, "skipped (--debian-python '')")
    elif not os.access(a.debian_python, os.X_OK):
        interp["debian"] = (None, None, f"{a.debian_python} not found")
    elif current_py and os.path.realpath(a.debian_python) == os.path.realpath(current_py):
        interp["debian"] = (None, None, f"{a.debian_python} is --torch-python already (its eager column)")
    else:
        env, info, why = torch_environment(a, a.debian_python, env_base)
        if why and "No module named 'torch'" in why:
            why = f"{a.debian_python} has no torch (Debian: apt-get install python3-torch)"
        interp["debian"] = (env, info, why)

    cols = {}
    for key, which, flags, what in COLUMNS:
        env, info, why = interp[which]
        version = info["torch"] if info else None
        if key == "debian":
            label = f"torch {version.split('+')[0] if version else '1.13'} (Debian)"
        else:
            label = {"eager": "eager", "sdpa": "SDPA", "compile": "compile"}[key]
            if version:
                label = f"{label} ({version.split('+')[0]})"
        if why is None and key not in a.columns:
            why = "not selected (--columns)"
        if why is None and key == "sdpa" and not info["sdpa"]:
            why = f"torch {version} has no scaled_dot_product_attention (PyTorch >= 2.0)"
        if why is None and key == "compile":
            why = (f"torch {version} has no torch.compile (PyTorch >= 2.0)" if not info["compile"]
                   else compile_probe(info["python"], env))
        cols[key] = {"key": key, "label": label, "python": info["python"] if info else None, "flags": flags,
                     "what": what, "env": env, "info": info, "reason": why}
        if why:
            log(f"compare.py: column {label}: not available: {why}")
    return cols


# ----------------------------------------------------------------------------- measurements

def shape_flags(a):
    return ["--hidden", a.hidden, "--layers", a.layers, "--heads", a.heads, "--mlp", a.mlp, "--seq", a.seq,
            "--batch", a.batch, "--vocab", a.vocab, "--reps", a.reps]


def jobs(a, cols):
    """Every measurement: {"name", "ours": command, "peers": {column: command}, "same": {column: note}}.
    Rows without attention (the Hyena student, the operator) have no SDPA run: it would be eager again."""
    ours_train = os.path.join(a.build, "benchmarks", "bench_train")
    ours_op = os.path.join(a.build, "benchmarks", "bench_operator")
    out = []

    def peer_cmds(extra, attention):
        d, same = {}, {}
        for key, c in cols.items():
            if key == "sdpa" and not attention:
                same[key] = "= eager (no attention)"
                continue
            d[key] = [str(x) for x in [c["python"] or "python3", TORCH_BENCH, "--threads", a.threads] + c["flags"] + extra]
        return d, same

    mixed_ours = ["--matmul-precision", "medium"] if a.bf16 else []
    mixed_peer = ["--autocast", "bf16"] if a.bf16 else []
    for m, flag in [("teacher", 0), ("hyena_student", 1)]:
        peers, same = peer_cmds(["--what", "train", "--model", m] + shape_flags(a) + mixed_peer, m == "teacher")
        out.append({"name": f"train/{m}", "ours": [ours_train] + shape_flags(a) + ["--model", flag] + mixed_ours,
                    "peers": peers, "same": same, "rounds": a.rounds})
    op = ["--width", a.width, "--reps", a.reps, "--max-gb", a.max_gb]
    if a.lengths:
        peers, same = peer_cmds(["--what", "operator", "--lengths"] + a.lengths + op, False)
        out.append({"name": "operator/fwd_bwd", "ours": [ours_op, "--threads", a.threads, "--lengths"] + a.lengths + op,
                    "peers": peers, "same": same, "rounds": a.rounds})
    if a.forward_lengths:
        peers, same = peer_cmds(["--what", "operator", "--forward-only", "--lengths"] + a.forward_lengths + op, False)
        out.append({"name": "operator/fwd", "ours": [ours_op, "--threads", a.threads, "--forward-only", "--lengths"] +
                    a.forward_lengths + op, "peers": peers, "same": same, "rounds": a.long_rounds})
    for j in out:
        j["ours"] = [str(x) for x in j["ours"]]
    return out


def record_key(r):
    if "model" in r:
        return ("train", r["model"])
    return ("fwd" if "fwd_ms" in r else "fwd_bwd", r["L"])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default="build", help="CMake build directory holding benchmarks/bench_*")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--long-rounds", type=int, default=2, help="rounds for the forward-only lengths (slow)")
    p.add_argument("--reps", type=int, default=5, help="timed repetitions inside each process")
    p.add_argument("--quick", action="store_true",
                   help="small shapes, 2 rounds (unless --rounds is given), 2 reps: checks the pipeline")
    for k, v in [("hidden", 128), ("layers", 4), ("heads", 4), ("mlp", 512), ("seq", 256), ("batch", 8),
                 ("vocab", 256), ("width", 128)]:
        p.add_argument("--" + k, type=int, default=v)
    p.add_argument("--lengths", type=int, nargs="*", default=[1024, 4096, 16384, 65536],
                   help="Hyena operator lengths, forward + backward (none: no operator rows)")
    p.add_argument("--forward-lengths", type=int, nargs="*", default=[262144, 1048576])
    p.add_argument("--max-gb", type=float, default=None,
                   help="skip operator lengths needing more memory (default: 60%% of MemAvailable)")
    p.add_argument("--torch-python", default=None,
                   help="interpreter with current PyTorch for the eager, SDPA and compile columns "
                        "(default: benchmarks/peers/.venv-torch/bin/python, made by setup_torch_venv.sh)")
    p.add_argument("--debian-python", default=DEBIAN_PYTHON,
                   help="interpreter with Debian's PyTorch 1.13 for the fourth column ('' to leave it out)")
    p.add_argument("--columns", nargs="+", choices=COLUMN_KEYS, default=COLUMN_KEYS, help="PyTorch columns to run")
    p.add_argument("--blas-dir", default=None, help="directory with an optimised libblas.so.3 for Debian's torch")
    p.add_argument("--fetch-openblas", action="store_true")
    p.add_argument("--out", default=None, help="also write the report (markdown) here")
    p.add_argument("--json", default=None,
                   help="the results as JSON (machine, versions, commands, medians, per-round values, ratios); "
                        "default docs/results/cpu.json, except with --quick (then only where this says); '' for none")
    p.add_argument("--json-out", default=None, help="write every raw measurement here (JSON lines)")
    p.add_argument("--bf16", action="store_true",
                   help="mixed precision on both sides, training rows only (see the top of this file)")
    argv = sys.argv[1:]
    a = p.parse_args()
    if a.quick:
        if not any(x == "--rounds" or x.startswith("--rounds=") for x in argv):
            a.rounds = 2
        a.long_rounds, a.reps = min(a.long_rounds, 1), 2
        a.layers, a.seq, a.batch = 2, 128, 4
        a.lengths, a.forward_lengths = [1024, 4096], [16384]
    if a.bf16:  # mixed precision is measured on the training steps only
        a.columns = [c for c in a.columns if c != "debian"]
        a.lengths, a.forward_lengths = [], []
    if a.json is None:
        a.json = "" if a.quick or a.bf16 else os.path.join(ROOT, "docs", "results", "cpu.json")

    if a.max_gb is None:
        a.max_gb = round(0.6 * mem_available_gb(), 1)
    for exe in ["bench_train", "bench_operator"]:
        path = os.path.join(a.build, "benchmarks", exe)
        if not os.access(path, os.X_OK):
            raise SystemExit(f"compare.py: {path} not found; build it first:\n  cmake -S . -B {a.build} "
                             f"-DCMAKE_BUILD_TYPE=Release && cmake --build {a.build} --target bench_train bench_operator bench_gemm")
    base = dict(os.environ)
    for k in ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"]:
        base[k] = str(a.threads)
    cols = setup_columns(a, base)
    ours_env = dict(base)

    # The bare runtime of our program: bench_train exiting on a bad option.
    _, _, _, ours_base_rss = run_with_rss([os.path.join(a.build, "benchmarks", "bench_train"), "--none", "0"],
                                          ours_env)

    # The machine's FMA peak at this thread count, for the MFU column (None: bench_gemm not built).
    # Read again after the rounds and the higher reading kept: on a shared host one reading can
    # come out at half the other (seen on a 2-vCPU EPYC: 116 and 230 GFLOP/s minutes apart).
    bench_gemm = os.path.join(a.build, "benchmarks", "bench_gemm")
    peak_key = "bf16_peak_gflops" if a.bf16 else "fma_peak_gflops"
    a.peak_readings = [flops.measure_peak(bench_gemm, a.threads, peak_key)]
    if a.peak_readings[0] is None:
        log("compare.py: no FMA peak (build bench_gemm for the MFU column)")

    load_start = os.getloadavg()[0]
    started = datetime.datetime.now().isoformat(timespec="seconds")
    results = {}  # (side, key) -> list of records; side "hyena" or a column key
    failed = {}   # (column, job name) -> reason; a failed column is not run again for that job
    raw = []
    all_jobs = jobs(a, cols)
    for r in range(max(a.rounds, a.long_rounds)):
        for job in all_jobs:
            if r >= job["rounds"]:
                continue
            runs = [("hyena", job["ours"], ours_env)]
            runs += [(k, cmd, cols[k]["env"]) for k, cmd in job["peers"].items()
                     if cols[k]["reason"] is None and (k, job["name"]) not in failed]
            for side, cmd, env in runs:
                log(f"compare.py: round {r + 1} {job['name']} {side}")
                out, err, rc, rss = run_with_rss(cmd, env)
                if rc != 0:
                    if side == "hyena":
                        raise SystemExit(f"compare.py: {shlex.join(cmd)} failed ({rc}):\n{err}")
                    failed[(side, job["name"])] = failure_reason(err, rc)
                    log(f"compare.py: {cols[side]['label']} failed on {job['name']}: {failed[(side, job['name'])]}")
                    continue
                for rec in json_lines(out):
                    if side == "hyena" and "model" in rec:
                        rec["peak_rss_mb"] = round(rss - ours_base_rss, 1)
                    rec["round"] = r + 1
                    rec["column"] = side
                    raw.append(rec)
                    results.setdefault((side, record_key(rec)), []).append(rec)

    a.load = (load_start, os.getloadavg()[0])
    if a.peak_readings[0] is not None:
        a.peak_readings.append(flops.measure_peak(bench_gemm, a.threads, peak_key))
    a.peak = max((p for p in a.peak_readings if p is not None), default=None)
    a.started, a.finished = started, datetime.datetime.now().isoformat(timespec="seconds")
    rows = tabulate(a, results, cols, all_jobs, failed)
    a.mfu = flops.mfu_rows(rows, settings_of(a), a.peak, COLUMN_KEYS) if a.peak else []
    report = render(a, rows, cols, all_jobs, failed, results, ours_base_rss)
    print(report)
    if a.out:
        with open(a.out, "w") as f:
            f.write(report + "\n")
    if a.json:
        os.makedirs(os.path.dirname(os.path.abspath(a.json)), exist_ok=True)
        with open(a.json, "w") as f:
            json.dump(as_json(a, rows, cols, all_jobs, failed, raw, ours_base_rss, results), f, indent=1)
            f.write("\n")
        log(f"compare.py: wrote {a.json}")
    if a.json_out:
        with open(a.json_out, "w") as f:
            for rec in raw:
                f.write(json.dumps(rec) + "\n")


# ----------------------------------------------------------------------------- tables

TRAIN_METRICS = [("train tokens/s", "train_tokens_per_s", False, 0), ("forward tokens/s", "forward_tokens_per_s", False, 0),
                 ("train step ms", "train_step_ms", True, 2), ("peak RSS growth MB", "peak_rss_mb", True, 1)]


def med(recs, field):
    vals = [r[field] for r in recs if r.get(field) is not None]
    return statistics.median(vals) if vals else None


def per_round(recs, field, n):
    """The value of each round 1..n (None where that round has none)."""
    d = {r["round"]: r.get(field) for r in recs if r.get(field) is not None}
    return [d.get(i + 1) for i in range(n)]


def hyena_ratio(ours, theirs, lower_better):
    """Above 1: hyena ahead (ours / torch for throughput, torch / ours for times and memory)."""
    if ours is None or theirs is None or not ours or not theirs:
        return None
    return round(theirs / ours if lower_better else ours / theirs, 3)


def tabulate(a, results, cols, all_jobs, failed):
    """Every row of every table, with hyena's and each column's medians, per-round values and ratios,
    and the strongest PyTorch column (best median) with hyena's ratio to it."""
    jobs_by_name = {j["name"]: j for j in all_jobs}
    rows = []

    def row(section, job_name, key, field, lower_better, extra, rss_field=None):
        job = jobs_by_name[job_name]
        n = job["rounds"]
        o = results.get(("hyena", key), [])
        mo = med(o, field)
        ro = per_round(o, field, n)
        cells = {}
        for c in COLUMN_KEYS:
            col = cols[c]
            t = results.get((c, key), [])
            skipped = next((x["skipped"] for x in t if "skipped" in x), None)
            if c in job["same"]:
                cells[c] = {"status": "same as eager", "reason": job["same"][c]}
            elif col["reason"]:
                cells[c] = {"status": "not available", "reason": col["reason"]}
            elif (c, job_name) in failed:
                cells[c] = {"status": "failed", "reason": failed[(c, job_name)]}
            elif skipped and med(t, field) is None:
                cells[c] = {"status": "skipped", "reason": skipped}
            elif med(t, field) is None:
                cells[c] = {"status": "no result", "reason": "no value in its output"}
            else:
                rt = per_round(t, field, n)
                cells[c] = {"median": med(t, field), "per_round": rt, "ratio": hyena_ratio(mo, med(t, field), lower_better),
                            "round_ratios": [hyena_ratio(x, y, lower_better) for x, y in zip(ro, rt)]}
                if rss_field:
                    cells[c]["peak_rss_mb"] = med(t, rss_field)
        measured = [c for c in COLUMN_KEYS if "median" in cells[c]]
        strongest = None
        if measured:
            pick = min if lower_better else max
            strongest = pick(measured, key=lambda c: cells[c]["median"])
        d = {"section": section, **extra, "field": field, "better": "lower" if lower_better else "higher",
             "hyena": {"median": mo, "per_round": ro}, "columns": cells, "strongest": strongest,
             "ratio_vs_strongest": cells[strongest]["ratio"] if strongest else None,
             "round_ratios_vs_strongest": cells[strongest]["round_ratios"] if strongest else []}
        if rss_field:
            d["hyena"]["peak_rss_mb"] = med(o, rss_field)
        skip_o = next((x["skipped"] for x in o if "skipped" in x), None)
        if skip_o and mo is None:
            d["hyena"]["skipped"] = skip_o
        rows.append(d)

    for m in ["teacher", "hyena_student"]:
        for label, field, lower_better, digits in TRAIN_METRICS:
            row("train", f"train/{m}", ("train", m), field, lower_better, {"model": m, "metric": label, "digits": digits})
        params = {c: med(results.get((c, ("train", m)), []), "params") for c in ["hyena"] + COLUMN_KEYS}
        if len({v for v in params.values() if v is not None}) > 1:
            rows.append({"section": "train", "model": m, "metric": "parameters DIFFER", "params": params})
    for kind, field, job_name, lengths in [("fwd_bwd", "fwd_bwd_ms", "operator/fwd_bwd", a.lengths),
                                           ("fwd", "fwd_ms", "operator/fwd", a.forward_lengths)]:
        for n in lengths or []:
            row(f"operator_{kind}", job_name, (kind, n), field, True, {"L": n, "width": a.width, "digits": 2},
                rss_field="peak_rss_mb")
    return rows


def fmt(x, digits=1):
    if x is None:
        return "n/a"
    return f"{x:,.{digits}f}"


def fx(r):
    return f"{r:.2f}x" if r is not None else "n/a"


def cell_text(cell, digits):
    if "median" in cell:
        return f"{fmt(cell['median'], digits)} ({fx(cell['ratio'])})"
    return {"same as eager": "= eager", "not available": "n/a", "failed": "failed",
            "skipped": "skipped"}.get(cell["status"], cell["status"])


def rounds_text(vals):
    vals = [v for v in vals if v is not None]
    return " ".join(f"{v:.2f}" for v in vals) if vals else "n/a"


def render(a, rows, cols, all_jobs, failed, results, ours_base_rss):
    labels = [cols[c]["label"] for c in COLUMN_KEYS]
    L = []
    L.append(f"## hyena vs PyTorch on the CPU ({a.threads} thread{'s' if a.threads != 1 else ''}"
             f"{', bf16 products on both sides' if a.bf16 else ''})\n")
    if a.bf16:
        L.append("Mixed precision (--bf16): hyena with matmul_precision medium (bf16 inputs and fp32 sums in every "
                 "product, attention's included), every PyTorch column under torch.autocast(dtype=torch.bfloat16).\n")
    L.append("Medians over fresh processes run alternately (hyena, then each PyTorch column, every round). "
             "Each PyTorch cell is its median and, in brackets, hyena's ratio to it: ours / torch for throughput, "
             "torch / ours for times and memory, so above 1 means hyena is ahead. \"Strongest\" is the best "
             "PyTorch median of the row; its per-round ratios are hyena's ratio to it within each round "
             "(the two ran back to back).\n")
    L.append("PyTorch columns:\n")
    for c in COLUMN_KEYS:
        col = cols[c]
        if col["reason"]:
            L.append(f"- **{col['label']}**: not available: {col['reason']}")
        else:
            L.append(f"- **{col['label']}**: {col['what']}; torch {col['info']['torch']} ({col['python']})")
    by_reason = {}
    for (c, job), why in sorted(failed.items()):
        by_reason.setdefault((c, why), []).append(job)
    for (c, why), js in by_reason.items():
        L.append(f"- **{cols[c]['label']}** failed on {', '.join(js)}: {why}")
    L.append("")

    head = "| " + " | ".join(labels) + " | strongest | hyena vs strongest | per-round ratios vs strongest |"
    sep = "|---" * (len(labels) + 3) + "|"
    L.append(f"### Training and inference, vocab {a.vocab}, width {a.hidden}, {a.layers} layers, {a.heads} heads, "
             f"MLP {a.mlp}, seq {a.seq}, batch {a.batch} ({a.rounds} round{'s' if a.rounds != 1 else ''}, {a.reps} reps each)\n")
    L.append("| model | metric | hyena " + head + "\n|---|---|---" + sep)
    for d in rows:
        if d["section"] != "train":
            continue
        if "params" in d:
            L.append(f"| {d['model']} | parameters DIFFER | " + " | ".join(str(d["params"][c]) for c in
                                                                           ["hyena"] + COLUMN_KEYS) + " | | | |")
            continue
        s = d["strongest"]
        L.append(f"| {d['model']} | {d['metric']} | {fmt(d['hyena']['median'], d['digits'])} | " +
                 " | ".join(cell_text(d["columns"][c], d["digits"]) for c in COLUMN_KEYS) +
                 f" | {cols[s]['label'] if s else 'n/a'} | {fx(d['ratio_vs_strongest'])} | "
                 f"{rounds_text(d['round_ratios_vs_strongest'])} |")
    steps = [d for d in rows if d["section"] == "train" and d.get("field") == "train_step_ms"]
    if steps:
        L.append("\nTraining step, hyena against the strongest PyTorch column: " + "; ".join(
            f"{d['model']} {fx(d['ratio_vs_strongest'])}" + (f" ({cols[d['strongest']]['label']})" if d["strongest"] else "")
            for d in steps) + ".")

    for kind, title, rounds in [("fwd_bwd", "forward + backward", a.rounds), ("fwd", "forward only", a.long_rounds)]:
        rs = [d for d in rows if d["section"] == f"operator_{kind}"]
        if not rs:
            continue
        L.append(f"\n### Hyena operator alone, {title}, batch 1, width {a.width} "
                 f"({rounds} round{'s' if rounds != 1 else ''}; ms)\n")
        L.append("| L | hyena " + head + " hyena peak RSS MB | strongest's peak RSS MB |\n|---|---" + sep + "---|---|")
        for d in rs:
            s = d["strongest"]
            ho = fmt(d["hyena"]["median"], 2) if d["hyena"]["median"] is not None else \
                f"skipped ({d['hyena']['skipped']})" if d["hyena"].get("skipped") else "n/a"
            L.append(f"| {d['L']} | {ho} | " + " | ".join(cell_text(d["columns"][c], 2) for c in COLUMN_KEYS) +
                     f" | {cols[s]['label'] if s else 'n/a'} | {fx(d['ratio_vs_strongest'])} | "
                     f"{rounds_text(d['round_ratios_vs_strongest'])} | {fmt(d['hyena'].get('peak_rss_mb'))} | "
                     f"{fmt(d['columns'][s].get('peak_rss_mb') if s else None)} |")
    skipped = sorted({(d.get("L"), d["columns"][c]["reason"]) for d in rows if "columns" in d
                      for c in COLUMN_KEYS if d["columns"][c].get("status") == "skipped"})
    for n, why in skipped:
        L.append(f"\nL = {n}: skipped by PyTorch ({why})")

    L.append("\n### Achieved FLOP/s (MFU)\n")
    if a.peak:
        L.append(flops.mfu_markdown(a.mfu, a.peak, a.threads, {c: cols[c]["label"] for c in COLUMN_KEYS},
                                    "bench_gemm --peak-only, the bf16 dot-product peak" if a.bf16
                                    else "bench_gemm --peak-only"))
    else:
        L.append(f"No FMA peak: {a.build}/benchmarks/bench_gemm was not built (cmake --build {a.build} --target bench_gemm).")

    L.append("\n### Commands (each run once per round, in a fresh process)\n")
    L.append("```")
    for c in command_list(a, cols, all_jobs):
        L.append(c["shell"])
    L.append("```\n")
    L.append("### Versions\n")
    for c in COLUMN_KEYS:
        info = cols[c]["info"]
        if info and not cols[c]["reason"] and c != "sdpa" and c != "compile":
            loaded = [x for x in info["blas"] if "/nvidia/" not in x and "numpy.libs" not in x]
            L.append(f"- {cols[c]['label']}: torch {info['torch']} ({info['python']}), torch.get_num_threads() = "
                     f"{info['threads']}, BLAS: built with {info.get('blas_info', '?')}, libraries loaded: "
                     f"{', '.join(loaded) or 'none (linked in)'} ({info['note']})")
    L.append(f"- hyena {git_describe()}, compiler {compiler(a.build)}, build type {cmake_value(a.build, 'CMAKE_BUILD_TYPE')}")
    L.append(f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores; Python {platform.python_version()} (this driver); "
             f"{a.started} to {a.finished}")
    L.append(f"- 1-minute load average {a.load[0]:.1f} at the start, {a.load[1]:.1f} at the end (above the thread "
             "count, OpenMP's waiting threads make both sides' timings meaningless)")
    bases = [f"{cols[c]['label']} {fmt(med(results.get((c, ('train', 'teacher')), []), 'base_rss_mb'))} MB"
             for c in COLUMN_KEYS if results.get((c, ("train", "teacher")))]
    L.append(f"- memory baselines (not counted above): our bare process {ours_base_rss:.1f} MB; torch's runtime: "
             + (", ".join(bases) or "n/a"))
    return "\n".join(L)


def rel(cmd):
    """The command with paths inside the repository relative to its root (as run from there)."""
    return [os.path.relpath(x, ROOT) if os.path.isabs(x) and x.startswith(ROOT + os.sep) else x for x in cmd]


def command_list(a, cols, all_jobs):
    out = []
    for job in all_jobs:
        out.append({"job": job["name"], "side": "hyena", "cmd": job["ours"], "env": {"OMP_NUM_THREADS": str(a.threads)},
                    "shell": f"OMP_NUM_THREADS={a.threads} {shlex.join(job['ours'])}"})
        for c, cmd in job["peers"].items():
            if cols[c]["reason"]:
                continue
            env = {"OMP_NUM_THREADS": str(a.threads)}
            if cols[c]["env"].get("LD_LIBRARY_PATH") and "LD_LIBRARY_PATH=" in cols[c]["info"]["note"]:
                env["LD_LIBRARY_PATH"] = cols[c]["env"]["LD_LIBRARY_PATH"]
            if c == "compile":
                env["TORCHINDUCTOR_COMPILE_THREADS"] = str(a.threads)
            out.append({"job": job["name"], "side": c, "cmd": rel(cmd), "env": env,
                        "shell": " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " " + shlex.join(rel(cmd))})
    return out


def settings_of(a):
    return {"threads": a.threads, "rounds": a.rounds, "long_rounds": a.long_rounds, "reps": a.reps,
            "quick": a.quick, "vocab": a.vocab, "hidden": a.hidden, "layers": a.layers, "heads": a.heads,
            "mlp": a.mlp, "seq": a.seq, "batch": a.batch, "width": a.width, "lengths": a.lengths,
            "forward_lengths": a.forward_lengths, "max_gb": a.max_gb,
            "precision": "bf16 products, fp32 sums (ours: matmul_precision medium; torch: autocast bf16)" if a.bf16
            else "fp32"}


def as_json(a, rows, cols, all_jobs, failed, raw, ours_base_rss, results):
    return {
        "what": "hyena against PyTorch on the CPU, benchmarks/compare.py (ratios above 1: hyena ahead)",
        "command": shlex.join(["python3", os.path.relpath(os.path.abspath(__file__), ROOT)] + sys.argv[1:]),
        "started": a.started, "finished": a.finished,
        "machine": {"cpu": cpu_model(), "logical_cores": os.cpu_count(), "mem_total_gb": round(mem_total_gb(), 1),
                    "kernel": platform.release(), "load_1min_start": round(a.load[0], 2),
                    "load_1min_end": round(a.load[1], 2)},
        "settings": settings_of(a),
        "peak": {"fma_gflops" if not a.bf16 else "bf16_gflops": a.peak, "threads": a.threads,
                 "readings": a.peak_readings,
                 "source": "bench_gemm --peak-only, before and after the rounds, the higher" +
                 (" (bf16_peak_gflops: AMX tiles where medium runs on them, else vdpbf16ps)" if a.bf16 else "")} if a.peak else None,
        "mfu": a.mfu,
        "versions": {"hyena": git_describe(), "compiler": compiler(a.build),
                     "build_type": cmake_value(a.build, "CMAKE_BUILD_TYPE"), "driver_python": platform.python_version()},
        "columns": {c: {"label": cols[c]["label"], "what": cols[c]["what"], "python": cols[c]["python"],
                        "torch": cols[c]["info"]["torch"] if cols[c]["info"] else None,
                        "threads": cols[c]["info"]["threads"] if cols[c]["info"] else None,
                        "blas": cols[c]["info"]["blas"] if cols[c]["info"] else None,
                        "blas_info": cols[c]["info"].get("blas_info") if cols[c]["info"] else None,
                        "blas_note": cols[c]["info"]["note"] if cols[c]["info"] else None,
                        "available": cols[c]["reason"] is None, "reason": cols[c]["reason"]} for c in COLUMN_KEYS},
        "failures": [{"column": c, "job": j, "reason": why} for (c, j), why in sorted(failed.items())],
        "commands": [{k: v for k, v in c.items() if k != "shell"} for c in command_list(a, cols, all_jobs)],
        "memory_baselines_mb": {"hyena": round(ours_base_rss, 1), **{
            c: med(results.get((c, ("train", "teacher")), []), "base_rss_mb") for c in COLUMN_KEYS
            if results.get((c, ("train", "teacher")))}},
        "rows": [{k: v for k, v in d.items() if k != "digits"} for d in rows],
        "raw": raw,
    }


def meminfo_gb(field, default):
    """A /proc/meminfo field ("MemTotal", "MemAvailable") in GiB, or default where unreadable."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return default


def mem_total_gb():
    return meminfo_gb("MemTotal", 0.0)


def mem_available_gb():
    return meminfo_gb("MemAvailable", 8.0)


def git_describe():
    try:
        h = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "-uno"], capture_output=True,
                               text=True).stdout.strip()
        return f"commit {h}{' (uncommitted changes)' if dirty else ''}"
    except OSError:
        return "(no git)"


def cmake_value(build, key):
    try:
        with open(os.path.join(build, "CMakeCache.txt")) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return line.split("=", 1)[1].strip()
    except OSError:
        pass
    return "?"


def compiler(build):
    cxx = cmake_value(build, "CMAKE_CXX_COMPILER")
    try:
        return subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        return cxx


def cpu_model():
    """The CPU's name, with its x86 family/model and widest vector extension when /proc/cpuinfo
    has them: a virtual machine's name ("AMD EPYC") alone does not tell Zen 2 from Zen 4, nor
    AVX2 from AVX-512, and the kernels and the FMA peak differ between them."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break  # the first processor's block is enough
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or "?"
    flags = set(fields.get("flags", "").split())
    isa = ("AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else None)
    extras = [e for e, flag in (("bf16", "avx512_bf16"), ("AMX", "amx_tile")) if flag in flags]
    details = []
    if "cpu family" in fields and "model" in fields:
        details.append(f"family {fields['cpu family']} model {fields['model']}")
    if isa:
        details.append(isa + "".join(f" + {e}" for e in extras))
    return f"{name} ({', '.join(details)})" if details else name


if __name__ == "__main__":
    main()
