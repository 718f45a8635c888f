#!/usr/bin/env python3
"""Summarizes the raw JSON of bench/run.sh into a markdown table (stdout and --out).

    report.py --work DIR --configs "A B S" --threads 2 --seconds S --quick 0|1 --out FILE

DIR/<cfg>/ holds prepare.json, c_train.jsonl, torch_train.jsonl, sgemm.jsonl,
c_gen.jsonl and torch_gen.jsonl (one JSON line per process). The FLOP count is
flops_per_token() below; bench/run.sh's header explains it.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

CONFIGS = {
    "A": dict(V=8192, d=256, L=4, H=4, k=16, T=256, B=8),
    "B": dict(V=50264, d=256, L=4, H=4, k=16, T=256, B=8),
    "S": dict(V=50264, d=768, L=12, H=12, k=16, T=512, B=8),  # generation only, no target
}
TARGETS = {"A": 2.0, "B": 1.5}  # training speed ratio C / PyTorch (the targets in bench/README.md)
GEN_TARGETS = {"A": 3.0, "B": 3.0}  # generation speed ratio; S is for information
GFLOPS_FRACTION_TARGET = 0.70


def flops_per_token(V, d, L, k, T, **_):
    """Training flops per token: 3 x the forward's matrix products at every position
    (each position's own sense network; attention and sense weights over the full
    T x T square); 2 flops per multiply-add."""
    forward = (24 * L * d * d            # transformer: QKV, W_o, MLP
               + 4 * L * T * d           # attention scores and values
               + 24 * d * d + 8 * k * d * d  # sense network U_1, U_2, F_1, F_2
               + 4 * d * d + 2 * T * d   # sense weights: W_c and scores
               + 2 * T * k * d           # mixing
               + 2 * d * V)              # tied output
    return 3 * forward


def read_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def spread(xs):
    """'median (min..max, +-x%)' where x is half the range relative to the median."""
    m = statistics.median(xs)
    half = (max(xs) - min(xs)) / 2 / m * 100 if m else 0.0
    return m, f"{min(xs):,.0f}..{max(xs):,.0f} (±{half:.0f}%)"


def mib(kib):
    return kib / 1024.0


def machine():
    model = "?"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    start = os.environ.get("BENCH_LOAD_START", "?")
    return (f"{model}, {os.cpu_count()} cores, {platform.machine()}, load average {start} at the "
            f"start and {load:.1f} at the end")


def training_row(cfg, c, t, sg, prep, emit, notes, cores):
    """Emits the training row of one configuration; returns whether its targets are met."""
    fpt = flops_per_token(**CONFIGS[cfg])
    cm, cs = spread([r["tokens_per_s"] for r in c])
    tm, ts = spread([r["tokens_per_s"] for r in t])
    sm, ss = spread([r["combined_gflops"] for r in sg])
    # rounds are interleaved pairs: the median of the per-round ratios cancels most of
    # the load that other processes put on the machine during a round
    pairs = [x["tokens_per_s"] / y["tokens_per_s"] for x, y in zip(c, t)]
    ratio = statistics.median(pairs)
    cg, tg = cm * fpt * 1e-9, tm * fpt * 1e-9
    crss = statistics.median(r["peak_rss_kib"] for r in c)
    trss = statistics.median(r["peak_rss_kib"] for r in t)
    diffs = [abs(x - y) for x, y in zip(c[0]["losses"], t[0]["losses"])]
    ccpu = statistics.median(r.get("cpu_seconds_per_step", float("nan")) for r in c)
    tcpu = statistics.median(r.get("cpu_seconds_per_step", float("nan")) for r in t)
    cores.add(f"C {sg[0].get('blas_core', '?')}, PyTorch {t[0].get('blas_core', '?')}")
    emit(f"| {cfg} | {cm:,.0f}<br>{cs} | {tm:,.0f}<br>{ts} | **{ratio:.2f}x**<br>"
         f"{min(pairs):.2f}..{max(pairs):.2f} | ≥ {TARGETS[cfg]}x "
         f"| {ccpu:.2f} / {tcpu:.2f} ({tcpu / ccpu:.2f}x) "
         f"| {cg:.1f} ({cg / sm * 100:.0f}%) | {tg:.1f} ({tg / sm * 100:.0f}%) | {sm:.1f}<br>{ss} "
         f"| {mib(crss):,.0f} MiB | {mib(trss):,.0f} MiB | {diffs[0]:.0e} / {max(diffs):.0e} |")
    ok = ratio >= TARGETS[cfg] and cg / sm >= GFLOPS_FRACTION_TARGET and crss <= trss
    if prep:
        p = prep[0]
        notes.append(f"{cfg}: {fpt / 1e6:.1f} MFLOP per trained token; "
                     f"{p['distinct_in_batch0']} distinct words in the {p['positions_per_batch']} "
                     f"positions of the first batch; losses of the first round, step by step: "
                     f"C {c[0]['losses'][:3]}..., PyTorch {t[0]['losses'][:3]}... (float "
                     f"rounding differences grow over the steps: AdamW normalizes them)")
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", required=True)
    ap.add_argument("--configs", default="A B S")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=int, default=0)
    ap.add_argument("--quick", default="0")
    ap.add_argument("--out")
    a = ap.parse_args()

    try:
        import torch
        torch_version = torch.__version__
    except ImportError:
        torch_version = "?"
    lines = []
    emit = lines.append
    quick = a.quick == "1"
    emit(f"## Benchmark: C Backpack vs PyTorch{' (BENCH_QUICK=1: few steps, rough)' if quick else ''}")
    emit("")
    emit(f"`{'BENCH_QUICK=1 ' if quick else ''}make bench` on {datetime.date.today().isoformat()}; "
         f"{machine()}; {a.threads} threads each; PyTorch {torch_version}; "
         f"total {a.seconds // 60} min {a.seconds % 60} s.")
    emit("")
    emit("Training: tokens/s of forward + backward + clip + AdamW, batch 8 x 256, no dropout, "
         "median over rounds with the range (min..max) of the rounds; C / PyTorch is the median "
         "(and range) of the ratios within each round (the two runs of a round are back to "
         "back, so they see similar load from other processes). GFLOP/s counts the full "
         "per-position computation of the spec (bench/run.sh), compared with OpenBLAS sgemm on "
         "the model's own product shapes, measured in the same rounds.")
    emit("")
    emit("| config | C tokens/s | PyTorch tokens/s | C / PyTorch | target | CPU s per step C / PyTorch "
         "| C GFLOP/s (% of sgemm) | PyTorch GFLOP/s (% of sgemm) | sgemm GFLOP/s | C peak RSS "
         "| PyTorch peak RSS | loss diff: step 1 / all steps |")
    emit("|---|---|---|---|---|---|---|---|---|---|---|---|")
    gen_rows, notes, ok_all, cores = [], [], True, set()
    for cfg in a.configs.split():
        d = os.path.join(a.work, cfg)
        c = read_jsonl(os.path.join(d, "c_train.jsonl"))
        t = read_jsonl(os.path.join(d, "torch_train.jsonl"))
        sg = read_jsonl(os.path.join(d, "sgemm.jsonl"))
        prep = read_jsonl(os.path.join(d, "prepare.json"))
        if cfg in TARGETS:  # S has no training rounds
            if not c or not t or not sg:
                emit(f"| {cfg} | missing results | | | | | | | | | | |")
                ok_all = False
                continue
            ok_all &= training_row(cfg, c, t, sg, prep, emit, notes, cores)
        else:
            notes.append(f"{cfg}: the published small shape (V {CONFIGS[cfg]['V']}, d "
                         f"{CONFIGS[cfg]['d']}, L {CONFIGS[cfg]['L']}, k {CONFIGS[cfg]['k']}), "
                         "random weights, generation only; no target")
        cgen = read_jsonl(os.path.join(d, "c_gen.jsonl"))
        tgen = read_jsonl(os.path.join(d, "torch_gen.jsonl"))
        if cgen and tgen:
            gm, gs = spread([x for r in cgen for x in r["tokens_per_s"]])
            pm, ps = spread([x for r in tgen for x in r["tokens_per_s"]])
            same = all(r["tokens"] == tgen[0]["tokens"] for r in cgen + tgen)
            first_diff = next((i for i, (x, y) in enumerate(zip(cgen[0]["tokens"], tgen[0]["tokens"]))
                               if x != y), None)
            ident = "yes" if same else f"**no** (first difference at token {first_diff})"
            target = f"≥ {GEN_TARGETS[cfg]}x" if cfg in GEN_TARGETS else "none (for information)"
            gen_rows.append(f"| {cfg} | {gm:,.1f}<br>{gs} | {pm:,.1f}<br>{ps} | **{gm / pm:.2f}x** "
                            f"| {target} | {ident} "
                            f"| {mib(statistics.median(r['peak_rss_kib'] for r in cgen)):,.0f} MiB "
                            f"| {mib(statistics.median(r['peak_rss_kib'] for r in tgen)):,.0f} MiB |")
            ok_all &= same and gm / pm >= GEN_TARGETS.get(cfg, 0.0)
    emit("")
    emit(f"Generation: batch 1, greedy, {256} new tokens from the prompt token 0, with key/value "
         "and sense caches; tokens/s median (range).")
    emit("")
    emit("| config | C tokens/s | PyTorch tokens/s | C / PyTorch | target | same greedy tokens "
         "| C peak RSS | PyTorch peak RSS |")
    emit("|---|---|---|---|---|---|---|---|")
    lines.extend(gen_rows)
    emit("")
    for n in notes:
        emit(f"- {n}")
    emit(f"- OpenBLAS kernels: {'; '.join(sorted(cores))}. CPU s per step: CPU time of all "
         "threads per timed training step (work done, insensitive to waiting for a core).")
    emit(f"- All targets met: {'yes' if ok_all else 'no'}")
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if a.out:
        tmp = a.out + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, a.out)


if __name__ == "__main__":
    main()
