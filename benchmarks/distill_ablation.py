#!/usr/bin/env python3
"""The distillation ablation (docs/results.md section 3): at equal student tokens, a Hyena
student from scratch against distilled ones that add, one at a time, what issue 10 asked for.

  python3 benchmarks/distill_ablation.py --build build --out runs/ablation [--suite stories|wikitext|all]

Variants (each one `build/benchmarks/distill_ablation` run; stage 2 is 0.8 forward KL + 0.2 CE at
tau 1, lr 2e-3, in all):
  scratch     cross-entropy from a random initialisation (lr 3e-3)
  scratch rank 4     the same student shape as "default rank 4", from scratch
  baseline    the recipe before: random mixers, 25% of the budget in stage 1 (mixer-output alignment)
  +init       baseline with the attention initialisation (stage 0)
  +operator   baseline with operator alignment in stage 1 (half of each layer's steps)
  all         attention initialisation + operator alignment
  default     attention initialisation, the whole budget end to end (rank 1)
  default order 3    the same with an order-3 Hyena operator
  default rank R     the same with a rank-R order-2 operator (R gate pairs and filters, nn/hyena.hpp);
                     `hyena distill` and the demo run "default rank 4"
  default rank 4 hidden MSE 1    the same plus the stage-2 hidden-state MSE at weight 1 (--beta 1)
Suites:
  stories     llama2.c stories260K, data-free: corpora sampled from the teacher (1M training
              tokens, 15k held-out), budgets 500k and 1M student tokens
  wikitext    the demo's GPT-NeoX teacher on byte-level WikiText-2 (trained by `hyena demo`
              if --demo has none), budgets 300k and 600k (--wikitext-budgets), 10 held-out
              points of 131k tokens per run; --wikitext-teacher-tokens N: a teacher of the same
              shape trained on N tokens instead (JSON key wikitext_teacherNM)
  rank-sweep  stories260K at 1M tokens only, "default" at the ranks and settings of SWEEP
              (its own table; JSON key stories/1000000/rank_sweep)
Writes docs/results/distill_ablation.json (every run's numbers and curves, and per budget the
tokens each distilled run needed to reach the scratch run's final held-out loss) and one PNG
of held-out loss against student tokens per suite and budget under docs/results/.
"""
import argparse
import concurrent.futures
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The recipe before this work, and each addition on its own, all with 25% of the budget in stage 1;
# "default" is what `hyena distill` runs now (no stage 1, since it measured no better per token).
BEFORE = ["--stage1-fraction", "0.25", "--tau", "1", "--alpha", "0.8"]
VARIANTS = {
    "scratch": ["--variant", "scratch"],
    "baseline": BEFORE + ["--init", "random", "--operator-fraction", "0"],
    "+init": BEFORE + ["--init", "attention", "--operator-fraction", "0"],
    "+operator": BEFORE + ["--init", "random", "--operator-fraction", "0.5"],
    "all": BEFORE + ["--init", "attention", "--operator-fraction", "0.5"],
    "default": [],
    "default order 3": ["--order", "3"],
    "default rank 4": ["--rank", "4"],
    "default rank 16": ["--rank", "16"],
    "scratch rank 4": ["--variant", "scratch", "--rank", "4"],
    "default rank 4 hidden MSE 1": ["--rank", "4", "--beta", "1"],
}
# A distilled variant's from-scratch student of the same shape: its reach is reported against both.
SAME_SHAPE_SCRATCH = {"default rank 4": "scratch rank 4", "default rank 4 hidden MSE 1": "scratch rank 4"}

# The rank sweep (--suite rank-sweep): the default recipe on stories260K at 1M tokens, one run per
# row, each the flags it adds to the default.
SWEEP = {
    "rank 1": [],
    "rank 2": ["--rank", "2"],
    "rank 4 (hyena distill's default)": ["--rank", "4"],
    "rank 8": ["--rank", "8"],
    "rank 8, lr 3e-3": ["--rank", "8", "--lr", "3e-3"],
    "rank 16": ["--rank", "16"],
    "rank 16, seed 6": ["--rank", "16", "--seed", "6"],
    "rank 32": ["--rank", "32"],
    "rank 17, taylor branches, gamma 1": ["--rank", "17", "--branches", "taylor"],
    "rank 17, taylor branches, gamma 1, seed 6": ["--rank", "17", "--branches", "taylor", "--seed", "6"],
    "rank 17, taylor branches, gamma 0.5": ["--rank", "17", "--branches", "taylor", "--taylor-scale", "0.5"],
    # Stage-2 settings at rank 4: batch, lr, tau, and the hidden-state MSE (beta, per layer).
    "rank 4, batch 2": ["--rank", "4", "--batch", "2"],
    "rank 4, batch 4": ["--rank", "4", "--batch", "4"],
    "rank 4, batch 4, lr 1e-3": ["--rank", "4", "--batch", "4", "--lr", "1e-3"],
    "rank 4, tau 2": ["--rank", "4", "--tau", "2"],
    "rank 1, hidden MSE 1": ["--beta", "1"],
    "rank 4, hidden MSE 1": ["--rank", "4", "--beta", "1"],
    "rank 4, hidden MSE 1, seed 6": ["--rank", "4", "--beta", "1", "--seed", "6"],
    "rank 4, batch 4, hidden MSE 1": ["--rank", "4", "--batch", "4", "--beta", "1"],
    "rank 4, batch 4, hidden MSE 1, seed 6": ["--rank", "4", "--batch", "4", "--beta", "1", "--seed", "6"],
}
SWEEP_BUDGET = 1_000_000


def data_dir():
    return os.environ.get("HYENA_DATA_DIR", os.path.join(ROOT, "..", "shared", "data"))


def run(binary, out, common, extra, force):
    result = os.path.join(out, "result.json")
    if os.path.exists(result) and not force:
        print("have", result, file=sys.stderr)
    else:
        cmd = [binary, "--out", out] + common + extra
        print("$", " ".join(cmd), file=sys.stderr, flush=True)
        subprocess.run(cmd, check=True)
    with open(result) as f:
        return json.load(f)


def split_names(text, known):
    """A comma-separated list of names, some with commas of their own ("rank 8, lr 3e-3"): at each
    position the longest run of pieces that is a known name (else one piece, reported unknown)."""
    pieces, names, i = text.split(","), [], 0
    while i < len(pieces):
        j = next((j for j in range(len(pieces), i, -1) if ",".join(pieces[i:j]).strip() in known), i + 1)
        names.append(",".join(pieces[i:j]).strip())
        i = j
    return names


def tokens_to_reach(curve, target):
    """First student-token count at which the held-out curve is <= target (linear between points)."""
    prev = None
    for tokens, loss in curve:
        if loss <= target:
            if prev is None or prev[1] == loss:
                return tokens
            t0, l0 = prev
            return t0 + (tokens - t0) * (l0 - target) / (l0 - loss)
        prev = (tokens, loss)
    return None


def plot(path_png, title, runs, teacher_loss):
    dat = path_png[:-4] + ".dat"
    with open(dat, "w") as f:
        for name, r in runs.items():
            f.write(f"# {name}\n")
            for t, l in r["curve"]:
                f.write(f"{t} {l}\n")
            f.write("\n\n")
    plots = [f"'{dat}' index {i} with linespoints title '{name}'" for i, name in enumerate(runs)]
    plots.append(f"{teacher_loss} with lines dashtype 2 title 'teacher'")
    script = (f"set terminal png size 900,560\nset output '{path_png}'\nset title \"{title}\"\n"
              "set xlabel 'student tokens'\nset ylabel 'held-out loss (nats per token)'\nset grid\n"
              "set key top right\nplot " + ", ".join(plots) + "\n")
    subprocess.run(["gnuplot"], input=script.encode(), check=False)
    os.remove(dat)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--out", default=os.path.join(ROOT, "runs", "ablation"))
    ap.add_argument("--suite", default="all", choices=["stories", "wikitext", "all", "rank-sweep"],
                    help="all: stories and wikitext (the sweep runs only when named)")
    ap.add_argument("--variants", default=None, help="comma-separated subset of the suite's variants "
                    "(default: all of VARIANTS, or of SWEEP for rank-sweep)")
    ap.add_argument("--demo", default=None, help="a `hyena demo --preset small` run folder (default: OUT/demo)")
    ap.add_argument("--threads", default="1", help="threads per run")
    ap.add_argument("--jobs", type=int, default=2, help="runs side by side (2 single-thread runs use 2 cores "
                    "better than one 2-thread run on these small models)")
    ap.add_argument("--wikitext-budgets", default="300000,600000", help="student-token budgets of the wikitext suite")
    ap.add_argument("--wikitext-teacher-tokens", type=int, default=0,
                    help="train the wikitext suite's teacher on this many tokens (default: the demo's own teacher)")
    ap.add_argument("--force", action="store_true", help="rerun runs that have a result.json")
    ap.add_argument("--json", default=os.path.join(ROOT, "docs", "results", "distill_ablation.json"))
    a = ap.parse_args()
    binary = os.path.join(a.build, "benchmarks", "distill_ablation")
    table_of = SWEEP if a.suite == "rank-sweep" else VARIANTS
    names = split_names(a.variants, table_of) if a.variants else list(table_of)
    unknown = [n for n in names if n not in table_of]
    if unknown:
        ap.error(f"unknown variant(s) {unknown}; the {a.suite} suite has {list(table_of)}")
    suites = []
    if a.suite in ("stories", "all", "rank-sweep"):
        teacher = os.path.join(data_dir(), "stories260k", "stories260K.bin")
        corpus = os.path.join(a.out, "stories", "corpus")
        sample = ["--sample", "1000000,15000", "--corpus", corpus]
        if not os.path.exists(os.path.join(corpus, "held_15000.tok")):  # once, before the parallel runs
            subprocess.run([binary, "--teacher", teacher, "--out", os.path.join(a.out, "stories"), "--tokens", "0"]
                           + sample, check=True)
        if a.suite == "rank-sweep":
            return rank_sweep(a, binary, teacher, sample, names)
        suites.append(("stories", "stories260K, data-free", teacher, sample, [500_000, 1_000_000]))
    if a.suite in ("wikitext", "all"):
        # The demo's teacher as it was through 2026-11-30 (3M tokens; the demo's preset has trained
        # 10M since) by default, so the rows under "wikitext" keep their teacher;
        # --wikitext-teacher-tokens trains another of the same shape, kept apart (its own demo folder,
        # JSON key and PNGs).
        key, title, folder = "wikitext", "WikiText-2 (bytes), the demo's GPT-NeoX teacher", "demo"
        if a.wikitext_teacher_tokens:
            m = f"{a.wikitext_teacher_tokens / 1e6:g}M"
            key, title = f"wikitext_teacher{m}", f"WikiText-2 (bytes), a GPT-NeoX teacher of the demo's shape on {m} tokens"
            folder = f"demo_teacher{m}"
        extra = ["--teacher-tokens", str(a.wikitext_teacher_tokens or 3_000_000)]
        demo = a.demo or os.path.join(a.out, folder)
        teacher = os.path.join(demo, "teacher", "model.safetensors")
        if not os.path.exists(teacher):
            subprocess.run([os.path.join(a.build, "hyena"), "demo", "--preset", "small", "--out", demo,
                            "--threads", a.threads] + extra, check=True)
        suites.append((key, title, teacher,
                       ["--train", os.path.join(demo, "data", "train.tok"), "--held",
                        os.path.join(demo, "data", "valid.tok"), "--curve-tokens", "131072",
                        "--eval-points", "10"],
                       [int(b) for b in a.wikitext_budgets.split(",")]))

    results = {}
    if os.path.exists(a.json):
        with open(a.json) as f:
            results = json.load(f)
    # Every run of every suite and budget first (a.jobs at a time), then the tables.
    pending = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=a.jobs) as pool:
        for key, title, teacher, data, budgets in suites:
            for budget in budgets:
                for name in names:
                    out = os.path.join(a.out, key, str(budget), name.replace("+", "plus_").replace(" ", "_"))
                    common = ["--teacher", teacher, "--tokens", str(budget), "--threads", a.threads] + data
                    pending[(key, budget, name)] = pool.submit(run, binary, out, common, VARIANTS[name], a.force)
    for key, title, teacher, data, budgets in suites:
        for budget in budgets:
            runs = {name: pending[(key, budget, name)].result() for name in names}
            # Rows not rerun this time stay as the JSON has them; every row's reach is recomputed.
            before = results.get(f"{key}/{budget}", {})
            table = {name: row for name, row in before.get("runs", {}).items() if name not in runs}
            for name, r in runs.items():
                row = {"held_out_loss": r["student"]["loss"], "ppl": r["student"]["ppl"], "kl": r["student"]["kl"],
                       "ppl_over_teacher": r["student"]["ppl"] / r["teacher_scores"]["ppl"],
                       "seconds": r["train_seconds"], "curve": r["curve"], "recipe": r.get("recipe", {})}
                for k in ("fit_after_stage0", "fit_after_stage1"):
                    if k in r:
                        row[k] = r[k]
                table[name] = row
            table = {name: table[name] for name in list(VARIANTS) + list(table) if name in table}
            scratch_final = table["scratch"]["curve"][-1][1] if "scratch" in table else None
            for name, row in table.items():
                if name.startswith("scratch"):
                    continue
                if scratch_final is not None:
                    reach = tokens_to_reach(row["curve"], scratch_final)
                    row["tokens_to_scratch_final"] = reach
                    row["fraction_to_scratch_final"] = None if reach is None else reach / budget
                same = SAME_SHAPE_SCRATCH.get(name)
                if same in table:  # the from-scratch student of the same shape (rank), a fairer bar
                    reach = tokens_to_reach(row["curve"], table[same]["curve"][-1][1])
                    row["same_shape_scratch"] = same
                    row["tokens_to_same_shape_scratch_final"] = reach
            teacher_scores = next(iter(runs.values()))["teacher_scores"] if runs else before["teacher"]
            results[f"{key}/{budget}"] = {"suite": title, "budget_tokens": budget, "teacher": teacher_scores,
                                          "scratch_final_loss": scratch_final, "runs": table}
            runs = table
            png = os.path.join(os.path.dirname(a.json), f"distill_ablation_{key}_{budget // 1000}k.png")
            plot(png, f"{title}: {budget // 1000}k student tokens", runs, teacher_scores["loss"])
            print(f"\n### {title}, {budget} student tokens (teacher ppl {teacher_scores['ppl']:.3f})\n")
            print("| variant | held-out ppl | / teacher | KL(teacher || student) | tokens to scratch's final loss |")
            print("|---|---|---|---|---|")
            def reach_text(reach):
                return "not reached" if reach is None else f"{reach:,.0f} ({100 * reach / budget:.0f}%)"
            for name, row in table.items():
                reach_s = "-" if name.startswith("scratch") else reach_text(row.get("tokens_to_scratch_final"))
                print(f"| {name} | {row['ppl']:.3f} | {row['ppl_over_teacher']:.3f}x | {row['kl']:.4f} | {reach_s} |")
            for name, row in table.items():
                if "same_shape_scratch" in row:
                    reach = row["tokens_to_same_shape_scratch_final"]
                    print(f"\n{name} against {row['same_shape_scratch']} (final ppl "
                          f"{table[row['same_shape_scratch']]['ppl']:.3f}): " +
                          ("never reached its final loss" if reach is None else
                           f"reached its final loss after {reach_text(reach)} of the tokens"))
            os.makedirs(os.path.dirname(a.json), exist_ok=True)
            with open(a.json, "w") as f:
                json.dump(results, f, indent=1)
    print("\nwrote", a.json)


def rank_sweep(a, binary, teacher, sample, names):
    """The SWEEP runs (a.jobs at a time) and their table; JSON key stories/1000000/rank_sweep."""
    common = ["--teacher", teacher, "--tokens", str(SWEEP_BUDGET), "--threads", a.threads] + sample
    with concurrent.futures.ThreadPoolExecutor(max_workers=a.jobs) as pool:
        pending = {name: pool.submit(run, binary, os.path.join(a.out, "stories", str(SWEEP_BUDGET), "rank_sweep",
                                                               name.replace(" ", "_").replace(",", "")),
                                     common, SWEEP[name], a.force)
                   for name in names}
        runs = {name: f.result() for name, f in pending.items()}
    table = {}
    for name, r in runs.items():
        table[name] = {"extra": SWEEP[name], "ppl": r["student"]["ppl"],
                       "ppl_over_teacher": r["student"]["ppl"] / r["teacher_scores"]["ppl"],
                       "kl": r["student"]["kl"], "held_out_loss": r["student"]["loss"],
                       "loss_after_stage0": r["curve"][0][1], "train_seconds": r["train_seconds"],
                       "parameters": r["parameters"], "curve": r["curve"]}
    teacher_scores = next(iter(runs.values()))["teacher_scores"]
    command = ("build/benchmarks/distill_ablation --teacher $HYENA_DATA_DIR/stories260k/stories260K.bin --out OUT "
               f"--tokens {SWEEP_BUDGET} --threads {a.threads} --sample 1000000,15000 --corpus "
               "runs/ablation/stories/corpus EXTRA")
    results = {}
    if os.path.exists(a.json):
        with open(a.json) as f:
            results = json.load(f)
    key = f"stories/{SWEEP_BUDGET}/rank_sweep"
    # Rows not rerun this time are kept; the table lists them in SWEEP's order.
    merged = {**results.get(key, {}).get("runs", {}), **table}
    table = {name: merged[name] for name in list(SWEEP) + list(merged) if name in merged}
    results[key] = {"suite": "stories260K, data-free, rank sweep", "budget_tokens": SWEEP_BUDGET,
                    "teacher": teacher_scores, "command": command,
                    "driver": "python3 benchmarks/distill_ablation.py --suite rank-sweep", "runs": table}
    print(f"\n### stories260K, data-free, {SWEEP_BUDGET} student tokens: rank sweep "
          f"(teacher ppl {teacher_scores['ppl']:.3f})\n")
    print("| student | extra flags | held-out ppl | / teacher | KL(teacher || student) | loss after stage 0 | "
          "parameters | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for name, row in table.items():
        print(f"| {name} | `{' '.join(row['extra']) or '(none)'}` | {row['ppl']:.3f} | {row['ppl_over_teacher']:.3f}x | "
              f"{row['kl']:.4f} | {row['loss_after_stage0']:.3f} | {row['parameters']:,} | {row['train_seconds']:.0f} |")
    os.makedirs(os.path.dirname(a.json), exist_ok=True)
    with open(a.json, "w") as f:
        json.dump(results, f, indent=1)
    print("\nwrote", a.json)


if __name__ == "__main__":
    main()
