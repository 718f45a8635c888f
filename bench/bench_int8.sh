#!/usr/bin/env bash
# bench/bench_int8.sh - at the published small shape (configuration S: V = 50264, d = 768,
# L = 12, H = 12, k = 16, random weights of the spec's initialization), in the same run:
#   1. greedy generation, batch 1, caches: C float, C with `--quantize int8`
#      (model/quant.h), PyTorch float (bench/torch_model.py); ratios to PyTorch per round;
#   2. training: tokens/s and peak RSS of the C trainer and PyTorch's (a few steps each,
#      for information).
# `make bench` runs it after bench/run.sh; alone:
#   BACKPACK=build/backpack bench/bench_int8.sh
# Environment: INT8_ROUNDS (3) generation rounds, INT8_NEW (64) new tokens per run,
# INT8_TRAIN_ROUNDS (2), INT8_TRAIN_STEPS (2) timed steps after 1 warm-up step, of batch
# 1 x context 512; INT8_GROUP (64) inputs per scale; BENCH_THREADS (2);
# INT8_OUT (bench/results-int8.md). Each process runs once untimed before its timed run
# (generation) or steps (training); the order of the sides rotates between rounds.
# Ratios are per round (numerator and denominator measured back to back), reported as
# the median with the range: on a shared machine compare those, not absolute rates.
# CPU seconds (all threads, getrusage / process_time) are reported beside wall time:
# they measure the work done and are less sensitive to waiting for a core.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
BACKPACK=${BACKPACK:-build/backpack}
TOOLS=${TOOLS:-$(dirname "$BACKPACK")/tests}
PYTHON=${PYTHON:-/usr/bin/python3}
THREADS=${BENCH_THREADS:-2}
ROUNDS=${INT8_ROUNDS:-3}
NEW=${INT8_NEW:-64}
TRAIN_ROUNDS=${INT8_TRAIN_ROUNDS:-2}
TRAIN_STEPS=${INT8_TRAIN_STEPS:-2}
GROUP=${INT8_GROUP:-64}
OUT=${INT8_OUT:-$here/results-int8.md}

[ -x "$TOOLS/tool_train_bench" ] || { echo "bench_int8.sh: $TOOLS/tool_train_bench is missing" >&2; exit 1; }
"$PYTHON" -c 'import torch, numpy' 2>/dev/null ||
    { echo "bench_int8.sh: $PYTHON lacks torch/numpy (apt-get install python3-torch)" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/bp-int8-XXXXXX")
trap 'rm -rf "$work"' EXIT
env_=(env OMP_NUM_THREADS="$THREADS" OMP_WAIT_POLICY=PASSIVE)
log() { echo "bench_int8: $*" >&2; }
load_start=$(cut -d' ' -f1 /proc/loadavg)
start=$(date +%s)

dir="$work/S"
"${env_[@]}" "$TOOLS/tool_train_bench" prepare --out "$dir" --vocab 50264 --d 768 --layers 12 \
    --heads 12 --senses 16 --ctx 512 --batch 1 --batches $((1 + TRAIN_STEPS)) --seed 1 >/dev/null

c_float() { "${env_[@]}" "$TOOLS/tool_train_bench" generate --dir "$dir" --new "$NEW" --runs 1 \
                --threads "$THREADS" >> "$work/gen_c_float.jsonl"; }
c_int8() { "${env_[@]}" "$TOOLS/tool_train_bench" generate --dir "$dir" --new "$NEW" --runs 1 \
               --threads "$THREADS" --int8 "$GROUP" >> "$work/gen_c_int8.jsonl"; }
t_float() { "${env_[@]}" "$PYTHON" "$here/torch_model.py" generate --dir "$dir" --new "$NEW" \
                --runs 1 --threads "$THREADS" >> "$work/gen_torch.jsonl"; }
for r in $(seq 1 "$ROUNDS"); do
    case $((r % 3)) in
        1) c_int8; t_float; c_float ;;
        2) t_float; c_float; c_int8 ;;
        0) c_float; c_int8; t_float ;;
    esac
    log "generation round $r/$ROUNDS ($(( $(date +%s) - start )) s)"
done
c_train() { "${env_[@]}" "$TOOLS/tool_train_bench" train --dir "$dir" --batch 1 --warmup 1 \
                --steps "$TRAIN_STEPS" --threads "$THREADS" >> "$work/train_c.jsonl"; }
t_train() { "${env_[@]}" "$PYTHON" "$here/torch_model.py" train --dir "$dir" --batch 1 --warmup 1 \
                --steps "$TRAIN_STEPS" --threads "$THREADS" >> "$work/train_torch.jsonl"; }
for r in $(seq 1 "$TRAIN_ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then c_train; t_train; else t_train; c_train; fi
    log "training round $r/$TRAIN_ROUNDS ($(( $(date +%s) - start )) s)"
done

"$PYTHON" - "$work" "$OUT" "$load_start" "$(cut -d' ' -f1 /proc/loadavg)" \
    "$(( $(date +%s) - start ))" "$NEW" "$GROUP" "$THREADS" "$TRAIN_STEPS" <<'EOF'
import json, statistics, sys, datetime
work, out, load0, load1, secs, new, group, threads, train_steps = sys.argv[1:]
def rows(name):
    try:
        with open(f"{work}/{name}.jsonl") as f:
            return [json.loads(l) for l in f if l.strip()]
    except FileNotFoundError:  # INT8_TRAIN_ROUNDS=0
        return []
cf, ci, tf = rows("gen_c_float"), rows("gen_c_int8"), rows("gen_torch")
trc, trt = rows("train_c"), rows("train_torch")
rate = lambda r: r["median_tokens_per_s"]
def stat(xs, fmt="{:,.1f}"):
    return f"{fmt.format(statistics.median(xs))} ({fmt.format(min(xs))}..{fmt.format(max(xs))})"
ratio_int8 = [rate(a) / rate(b) for a, b in zip(ci, tf)]
ratio_float = [rate(a) / rate(b) for a, b in zip(cf, tf)]
ratio_int8_float = [rate(a) / rate(b) for a, b in zip(ci, cf)]
same_float = all(a["tokens"] == b["tokens"] for a, b in zip(cf, tf))
agree = statistics.mean(sum(x == y for x, y in zip(a["tokens"], b["tokens"])) / len(a["tokens"])
                        for a, b in zip(ci, cf))
first = min(next((i for i, (x, y) in enumerate(zip(a["tokens"], b["tokens"])) if x != y), None) or 10**9
            for a, b in zip(ci, cf))
cpu = lambda r: r["cpu_seconds_per_token"]
cpu_ratio_int8 = [cpu(b) / cpu(a) for a, b in zip(ci, tf)]
cpu_ratio_float = [cpu(b) / cpu(a) for a, b in zip(cf, tf)]
tr_ratio = [a["tokens_per_s"] / b["tokens_per_s"] for a, b in zip(trc, trt)]
mib = lambda r: r["peak_rss_kib"] / 1024
x = lambda v: f"{v:.2f}x"
lines = [
    f"# int8 generation and training at the published small shape ({datetime.date.today()})",
    "",
    f"`bench/bench_int8.sh`: V 50264, d 768, L 12, H 12, k 16, random weights; {threads} threads each, "
    f"OMP_WAIT_POLICY=PASSIVE; generation: {new} greedy tokens from token 0, batch 1, caches, "
    f"{len(tf)} rounds; int8: one scale per {group} inputs. Training: batch 1 x context 512, "
    f"1 warm-up + {train_steps} timed steps, {len(trc)} rounds. "
    f"Load average {load0} at the start, {load1} at the end; {secs} s. Medians (range over rounds); "
    f"ratios per round.",
    "",
    "| | C | PyTorch (float) | C / PyTorch |",
    "|---|---|---|---|",
    f"| generation, int8 (tokens/s) | {stat([rate(r) for r in ci])} | {stat([rate(r) for r in tf])} | "
    f"**{stat(ratio_int8, '{:.2f}')}x** |",
    f"| generation, float (tokens/s) | {stat([rate(r) for r in cf])} | (same runs) | "
    f"{stat(ratio_float, '{:.2f}')}x, same tokens: {'yes' if same_float else 'NO'} |",
    f"| int8 / float C (same rounds) | {stat(ratio_int8_float, '{:.2f}')}x | | |",
    f"| generation, CPU ms per token (all threads): int8 / float | "
    f"{stat([1e3 * cpu(r) for r in ci])} / {stat([1e3 * cpu(r) for r in cf])} | "
    f"{stat([1e3 * cpu(r) for r in tf])} | int8 {stat(cpu_ratio_int8, '{:.2f}')}x, "
    f"float {stat(cpu_ratio_float, '{:.2f}')}x |",
] + ([] if not trc else [
    f"| training (tokens/s) | {stat([r['tokens_per_s'] for r in trc])} | "
    f"{stat([r['tokens_per_s'] for r in trt])} | {stat(tr_ratio, '{:.2f}')}x |",
    f"| training, CPU s per step (all threads) | {stat([r['cpu_seconds_per_step'] for r in trc])} | "
    f"{stat([r['cpu_seconds_per_step'] for r in trt])} | "
    f"{stat([b['cpu_seconds_per_step'] / a['cpu_seconds_per_step'] for a, b in zip(trc, trt)], '{:.2f}')}x |",
    f"| training peak RSS (MiB) | {stat([mib(r) for r in trc], '{:,.0f}')} | "
    f"{stat([mib(r) for r in trt], '{:,.0f}')} | |",
    f"| training losses, round 1 (warm-up step first) | {trc[0]['losses']} | {trt[0]['losses']} | "
    f"max difference {max(abs(a - b) for a, b in zip(trc[0]['losses'], trt[0]['losses'])):.2g} |",
]) + [
    f"| generation peak RSS (MiB) | float {stat([mib(r) for r in cf], '{:,.0f}')}, "
    f"int8 {stat([mib(r) for r in ci], '{:,.0f}')} | {stat([mib(r) for r in tf], '{:,.0f}')} | |",
    "",
    f"int8 greedy tokens equal to the float model's (random weights, for information): "
    f"{agree:.0%} of positions, "
    + (f"first difference at token {first}." if first < 10**9 else "no difference."),
]
text = "\n".join(lines) + "\n"
sys.stdout.write(text)
with open(out, "w") as f:
    f.write(text)
EOF
