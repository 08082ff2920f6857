#!/usr/bin/env python3
"""compare.py: hyena against its PyTorch peer on the CPU, side by side, in one command.

  python3 benchmarks/compare.py --build build [--threads 2] [--rounds 5] [--quick] [--out FILE.md]

Runs ours (BUILD/benchmarks/bench_train, bench_operator) and benchmarks/peers/torch_bench.py
alternately (ours, torch, ours, torch, ...), every measurement in a fresh process with the same
thread count (OMP_NUM_THREADS for both, torch.set_num_threads too), takes the median of each
figure over the rounds and prints a markdown table with ratios (ours / torch for throughput,
torch / ours for times and memory: above 1 means hyena is ahead), the exact commands and the
versions.

Peak memory: the growth of the process's peak resident set over the bare runtime. Ours:
bench_train's ru_maxrss (os.wait4) minus that of a bench_train that exits at once; bench_operator
reports VmHWM minus its starting VmRSS. Torch: VmHWM minus VmRSS after `import torch`, as
torch_bench.py reports it (its runtime, base_rss_mb, is a couple of hundred MB more).

Debian's PyTorch is linked against libblas.so.3, which is the slow reference BLAS unless an
optimised one is installed; a peer on reference BLAS would be a straw man. If the reference BLAS
is what torch would load, this uses OpenBLAS from --blas-dir, from a system openblas directory,
or (with --fetch-openblas) unpacked from Debian's libopenblas0-openmp into BUILD/torch-openblas
(apt-get download, nothing installed system-wide), via LD_LIBRARY_PATH for the torch runs only.
"""
import argparse
import datetime
import glob
import json
import os
import platform
import selectors
import shlex
import statistics
import subprocess
import sys

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


# ----------------------------------------------------------------------------- BLAS for torch

def torch_probe(py, env, threads):
    code = ("import json, torch; torch.set_num_threads(%d); a = torch.randn(64, 64); a @ a; "
            "maps = open('/proc/self/maps').read().split(); "
            "blas = sorted({m for m in maps if 'blas' in m.lower() and m.startswith('/')}); "
            "print(json.dumps({'torch': torch.__version__, 'threads': torch.get_num_threads(), 'blas': blas}))"
            % threads)
    p = subprocess.run([py, "-c", code], env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"compare.py: {py} cannot import torch:\n{p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


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


def torch_environment(a, base_env):
    env = dict(base_env)
    info = torch_probe(a.torch_python, env, a.threads)
    note = "as installed"
    if is_reference_blas(info["blas"]):
        candidates = ([a.blas_dir] if a.blas_dir else []) + SYSTEM_OPENBLAS
        found = next((d for d in candidates if d and os.path.exists(os.path.join(d, "libblas.so.3"))), None)
        if not found and a.fetch_openblas:
            found = fetch_openblas(os.path.join(os.path.abspath(a.build), "torch-openblas"))
        if found:
            env["LD_LIBRARY_PATH"] = found + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
            info = torch_probe(a.torch_python, env, a.threads)
            note = f"OpenBLAS via LD_LIBRARY_PATH={found} (the system libblas.so.3 is the reference BLAS)"
        else:
            note = ("WARNING: torch is on the slow reference BLAS; its matrix products are not representative "
                    "(install libopenblas0-openmp, or pass --fetch-openblas or --blas-dir)")
            log("compare.py:", note)
    info["note"] = note
    return env, info


# ----------------------------------------------------------------------------- measurements

def shape_flags(a):
    return ["--hidden", a.hidden, "--layers", a.layers, "--heads", a.heads, "--mlp", a.mlp, "--seq", a.seq,
            "--batch", a.batch, "--vocab", a.vocab, "--reps", a.reps]


def jobs(a):
    """(name, our command, torch command) for every measurement."""
    ours_train = os.path.join(a.build, "benchmarks", "bench_train")
    ours_op = os.path.join(a.build, "benchmarks", "bench_operator")
    tb = [a.torch_python, TORCH_BENCH, "--threads", a.threads]
    out = []
    for m, flag in [("teacher", 0), ("hyena_student", 1)]:
        out.append((f"train/{m}", [ours_train] + shape_flags(a) + ["--model", flag],
                    tb + ["--what", "train", "--model", m] + shape_flags(a)))
    op = ["--width", a.width, "--reps", a.reps, "--max-gb", a.max_gb]
    out.append(("operator/fwd_bwd", [ours_op, "--threads", a.threads, "--lengths"] + a.lengths + op,
                tb + ["--what", "operator", "--lengths"] + a.lengths + op))
    if a.forward_lengths:
        out.append(("operator/fwd", [ours_op, "--threads", a.threads, "--forward-only", "--lengths"] +
                    a.forward_lengths + op,
                    tb + ["--what", "operator", "--forward-only", "--lengths"] + a.forward_lengths + op))
    return [(n, [str(x) for x in o], [str(x) for x in t]) for n, o, t in out]


def record_key(r):
    if "model" in r:
        return ("train", r["model"])
    return ("fwd" if "fwd_ms" in r else "fwd_bwd", r["L"])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--build", default="build", help="CMake build directory holding benchmarks/bench_*")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--long-rounds", type=int, default=2, help="rounds for the forward-only lengths (slow)")
    p.add_argument("--reps", type=int, default=5, help="timed repetitions inside each process")
    p.add_argument("--quick", action="store_true", help="small shapes, 2 rounds, 2 reps: checks the pipeline")
    for k, v in [("hidden", 128), ("layers", 4), ("heads", 4), ("mlp", 512), ("seq", 256), ("batch", 8),
                 ("vocab", 256), ("width", 128)]:
        p.add_argument("--" + k, type=int, default=v)
    p.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 16384, 65536])
    p.add_argument("--forward-lengths", type=int, nargs="*", default=[262144, 1048576])
    p.add_argument("--max-gb", type=float, default=None,
                   help="skip operator lengths needing more memory (default: 60%% of MemAvailable)")
    p.add_argument("--torch-python", default="/usr/bin/python3")
    p.add_argument("--blas-dir", default=None, help="directory with an optimised libblas.so.3 for torch")
    p.add_argument("--fetch-openblas", action="store_true")
    p.add_argument("--out", default=None, help="also write the report (markdown) here")
    p.add_argument("--json-out", default=None, help="write every raw measurement here (JSON lines)")
    a = p.parse_args()
    if a.quick:
        a.rounds, a.long_rounds, a.reps = 2, 1, 2
        a.layers, a.seq, a.batch = 2, 128, 4
        a.lengths, a.forward_lengths = [1024, 4096], [16384]

    if a.max_gb is None:
        a.max_gb = round(0.6 * mem_available_gb(), 1)
    for exe in ["bench_train", "bench_operator"]:
        path = os.path.join(a.build, "benchmarks", exe)
        if not os.access(path, os.X_OK):
            raise SystemExit(f"compare.py: {path} not found; build it first:\n  cmake -S . -B {a.build} "
                             f"-DCMAKE_BUILD_TYPE=Release && cmake --build {a.build} --target bench_train bench_operator")
    base = dict(os.environ)
    for k in ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"]:
        base[k] = str(a.threads)
    torch_env, tinfo = torch_environment(a, base)
    ours_env = dict(base)

    # The bare runtime of our program: bench_train exiting on a bad option.
    _, _, _, ours_base_rss = run_with_rss([os.path.join(a.build, "benchmarks", "bench_train"), "--none", "0"],
                                          ours_env)

    load_start = os.getloadavg()[0]
    results = {}  # (impl, key) -> list of records
    raw = []
    all_jobs = jobs(a)
    for r in range(max(a.rounds, a.long_rounds)):
        for name, ours_cmd, torch_cmd in all_jobs:
            if r >= (a.long_rounds if name == "operator/fwd" else a.rounds):
                continue
            for impl, cmd, env in [("hyena", ours_cmd, ours_env), ("torch", torch_cmd, torch_env)]:
                log(f"compare.py: round {r + 1} {name} {impl}")
                out, err, rc, rss = run_with_rss(cmd, env)
                if rc != 0:
                    raise SystemExit(f"compare.py: {shlex.join(cmd)} failed ({rc}):\n{err}")
                for rec in json_lines(out):
                    if impl == "hyena" and "model" in rec:
                        rec["peak_rss_mb"] = round(rss - ours_base_rss, 1)
                    rec["round"] = r + 1
                    raw.append(rec)
                    results.setdefault((impl, record_key(rec)), []).append(rec)

    a.load = (load_start, os.getloadavg()[0])
    report = render(a, results, all_jobs, tinfo, ours_base_rss)
    print(report)
    if a.out:
        with open(a.out, "w") as f:
            f.write(report + "\n")
    if a.json_out:
        with open(a.json_out, "w") as f:
            for rec in raw:
                f.write(json.dumps(rec) + "\n")


def med(recs, field):
    vals = [r[field] for r in recs if r.get(field) is not None]
    return statistics.median(vals) if vals else None


def fmt(x, digits=1):
    if x is None:
        return "n/a"
    return f"{x:,.{digits}f}"


def ratio(num, den):
    return f"{num / den:.2f}x" if num is not None and den else "n/a"


def round_ratios(o, t, field, ours_over_torch):
    """The ratio within each round (ours and torch ran back to back), as 'min-max': on a
    machine whose speed drifts, these pairs are steadier than the ratio of the medians."""
    by_round = {r["round"]: r.get(field) for r in t if r.get(field) is not None}
    vals = sorted((x[field] / by_round[x["round"]]) if ours_over_torch else (by_round[x["round"]] / x[field])
                  for x in o if x.get(field) and by_round.get(x["round"]))
    return f"{vals[0]:.2f}-{vals[-1]:.2f}" if vals else "n/a"


def render(a, results, all_jobs, tinfo, ours_base_rss):
    L = []
    L.append(f"## hyena vs PyTorch on the CPU ({a.threads} threads)\n")
    L.append("Medians over fresh processes run alternately (ours, torch, ...). Ratios: ours / torch for "
             "throughput, torch / ours for times and memory, so above 1 means hyena is ahead.\n")
    L.append(f"### Training and inference, vocab {a.vocab}, width {a.hidden}, {a.layers} layers, {a.heads} heads, "
             f"MLP {a.mlp}, seq {a.seq}, batch {a.batch} ({a.rounds} rounds, {a.reps} reps each)\n")
    L.append("| model | metric | hyena | torch | ratio | per-round ratios |\n|---|---|---|---|---|---|")
    for m in ["teacher", "hyena_student"]:
        o, t = results.get(("hyena", ("train", m)), []), results.get(("torch", ("train", m)), [])
        rows = [("train tokens/s", "train_tokens_per_s", False, 0), ("forward tokens/s", "forward_tokens_per_s", False, 0),
                ("train step ms", "train_step_ms", True, 2), ("peak RSS growth MB", "peak_rss_mb", True, 1)]
        for label, field, lower_better, d in rows:
            mo, mt = med(o, field), med(t, field)
            r = ratio(mt, mo) if lower_better else ratio(mo, mt)
            L.append(f"| {m} | {label} | {fmt(mo, d)} | {fmt(mt, d)} | {r} | "
                     f"{round_ratios(o, t, field, not lower_better)} |")
        po, pt = med(o, "params"), med(t, "params")
        if po is not None and pt is not None and po != pt:
            L.append(f"| {m} | parameters DIFFER | {po} | {pt} | |")
    for kind, field, title, rounds in [("fwd_bwd", "fwd_bwd_ms", "forward + backward", a.rounds),
                                       ("fwd", "fwd_ms", "forward only", a.long_rounds)]:
        lengths = a.lengths if kind == "fwd_bwd" else a.forward_lengths
        if not lengths:
            continue
        L.append(f"\n### Hyena operator alone, {title}, batch 1, width {a.width} ({rounds} round{'s' if rounds != 1 else ''})\n")
        L.append("| L | hyena ms | torch ms | torch / hyena | per-round ratios | hyena peak RSS MB | torch peak RSS MB |\n"
                 "|---|---|---|---|---|---|---|")
        for n in lengths:
            o, t = results.get(("hyena", (kind, n)), []), results.get(("torch", (kind, n)), [])
            mo, mt = med(o, field), med(t, field)
            skip_o = next((r["skipped"] for r in o if "skipped" in r), None)
            skip_t = next((r["skipped"] for r in t if "skipped" in r), None)
            so = fmt(mo, 2) if mo is not None else f"skipped ({skip_o})" if skip_o else "n/a"
            st = fmt(mt, 2) if mt is not None else f"skipped ({skip_t})" if skip_t else "n/a"
            L.append(f"| {n} | {so} | {st} | {ratio(mt, mo)} | {round_ratios(o, t, field, False)} | "
                     f"{fmt(med(o, 'peak_rss_mb'))} | "
                     f"{fmt(med(t, 'peak_rss_mb'))} |")

    L.append("\n### Commands (each run once per round, in a fresh process)\n")
    L.append("```")
    for name, ours_cmd, torch_cmd in all_jobs:
        L.append(f"OMP_NUM_THREADS={a.threads} {shlex.join(ours_cmd)}")
        ld = ""
        if "LD_LIBRARY_PATH=" in tinfo["note"]:
            ld = "LD_LIBRARY_PATH=" + tinfo["note"].split("LD_LIBRARY_PATH=")[1].split(" ")[0] + " "
        L.append(f"{ld}OMP_NUM_THREADS={a.threads} {shlex.join(torch_cmd)}")
    L.append("```\n")
    L.append("### Versions\n")
    L.append(f"- torch {tinfo['torch']}, torch.get_num_threads() = {tinfo['threads']}, BLAS: "
             f"{', '.join(tinfo['blas']) or 'none seen'} ({tinfo['note']})")
    L.append(f"- hyena {git_describe()}, compiler {compiler(a.build)}, build type {cmake_value(a.build, 'CMAKE_BUILD_TYPE')}")
    L.append(f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores; Python {platform.python_version()} "
             f"({a.torch_python} for torch); {datetime.datetime.now().isoformat(timespec='seconds')}")
    L.append(f"- 1-minute load average {a.load[0]:.1f} at the start, {a.load[1]:.1f} at the end (above the thread "
             "count, OpenMP's waiting threads make both sides' timings meaningless)")
    L.append(f"- memory baselines: our bare process {ours_base_rss:.1f} MB; torch's runtime "
             f"{fmt(med(results.get(('torch', ('train', 'teacher')), []), 'base_rss_mb'))} MB (not counted above)")
    return "\n".join(L)


def mem_available_gb():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return 8.0


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
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


if __name__ == "__main__":
    main()
