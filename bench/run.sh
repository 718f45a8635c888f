#!/usr/bin/env bash
# bench/run.sh - the C Backpack against PyTorch on the same CPU (the speed targets are
# in bench/README.md); `make bench`.
#
#   make bench                      # ~10-15 minutes on 2 idle cores
#   BENCH_QUICK=1 make bench        # ~2 minutes: fewer runs and steps
#   BACKPACK=build/backpack TOOLS=build/tests SGEMM=build/bench/sgemm bench/run.sh
#
# Environment: BENCH_THREADS (2), BENCH_RUNS (runs per side and configuration),
# BENCH_CONFIGS ("A B S"), BENCH_DATA (zipf | uniform), BENCH_OUT (bench/results.md),
# BENCH_KEEP=1 keeps the work directory (raw JSON of every run).
#
# What it does, per configuration
#   A: V = 8192,  d = 256, L = 4, H = 4, k = 16, context T = 256, batch B = 8
#   B: V = 50264, the rest as A
#   S: the published small shape (V = 50264, d = 768, L = 12, H = 12, k = 16), generation
#      only: what a user of the published weights runs; no target, for information
# 1. tool_train_bench prepare: one random model (the spec's initialization, seed 1) as a
#    checkpoint, and random token data (seed 2; Zipf-like frequencies P(rank r) ~ 1/(r+1),
#    as in text, so batches repeat words as text does). Both sides load these same files.
# 2. RUNS rounds, each: the C trainer, PyTorch's trainer (the order alternates between
#    rounds), and the sgemm benchmark, each a fresh process with the same thread count.
#    A trainer process does WARMUP untimed and STEPS timed steps (forward, backward,
#    clip at 1.0, AdamW; no dropout) and reports tokens/s over its timed steps and its
#    peak RSS (getrusage). Medians over the rounds are reported, with the spread
#    (min..max) so the machine's noise is visible. The losses of both sides are
#    compared step by step (same weights, same data: they must agree to ~1e-4).
# 3. GEN_RUNS rounds of greedy generation, batch 1, 256 new tokens from the prompt token
#    0, with caches (C: model/infer.h; PyTorch: bench/torch_model.py), interleaved; the
#    greedy token ids of both must be identical.
# Both sides run with OMP_NUM_THREADS=THREADS and OMP_WAIT_POLICY=PASSIVE (PyTorch also
# with torch.set_num_threads(THREADS)). PASSIVE is PyTorch's best setting (its OpenMP
# pool and the pthread OpenBLAS it calls otherwise spin against each other) and costs
# the C side nothing measurable (one OpenMP pool, shared with the OpenMP OpenBLAS); on
# a shared machine, idle threads that spin steal the cores of the working ones. Both
# use the OpenBLAS kernels of the environment (OPENBLAS_CORETYPE, if set, applies to
# both; the report names the kernel each side used).
#
# Model FLOPs (bench/report.py, flops_per_token): the FULL per-position computation of
# docs/backpack-spec.md, matrix products only (elementwise work is not counted),
# 2 flops per multiply-add, every position computing its own sense network, attention
# and sense-weight products over the full T x T square (as dense implementations do):
#   forward per position =
#       24 L d^2                         transformer: QKV 6d^2, W_o 2d^2, MLP 16d^2
#     + 4 L T d                          attention scores and weighted values
#     + 24 d^2 + 8 k d^2                 sense network: U_1, U_2, F_1 (8 d^2 each), F_2
#     + 4 d^2 + 2 T d                    sense weights: W_c, and the k score products
#     + 2 T k d                          mixing: sum over j and l of alpha C(x_j)_l
#     + 2 d V                            tied output
#   training = 3 x forward (backward = two products per forward product)
# Configuration A: 72.0 MFLOP per trained token; B: 136.6 MFLOP. The C model's
# once-per-distinct-word sense network does less work than this count, which is
# counted at the full rate anyway, so both sides are scored on the same work. Achieved GFLOP/s = tokens/s x flops per token; it is compared
# with the combined OpenBLAS sgemm rate on the model's own product shapes in the three
# orientations of training (bench/sgemm.c), measured in the same rounds.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
BACKPACK=${BACKPACK:-build/backpack}
build=$(dirname "$BACKPACK")
TOOLS=${TOOLS:-$build/tests}
SGEMM=${SGEMM:-$build/bench/sgemm}
PYTHON=${PYTHON:-/usr/bin/python3}
THREADS=${BENCH_THREADS:-2}
CONFIGS=${BENCH_CONFIGS:-A B S}
DATA=${BENCH_DATA:-zipf}
OUT=${BENCH_OUT:-$here/results.md}
if [ "${BENCH_QUICK:-0}" = 1 ]; then
    RUNS=${BENCH_RUNS:-2} WARMUP=1 STEPS=2 GEN_RUNS=1 SGEMM_SECONDS=0.05
else
    RUNS=${BENCH_RUNS:-7} WARMUP=2 STEPS=8 GEN_RUNS=3 SGEMM_SECONDS=0.1
fi
NEW=256

for f in "$TOOLS/tool_train_bench" "$SGEMM"; do
    [ -x "$f" ] || { echo "bench/run.sh: $f is missing (make BUILD=$build bench builds it)" >&2; exit 1; }
done
"$PYTHON" -c 'import torch, numpy' 2>/dev/null ||
    { echo "bench/run.sh: $PYTHON lacks torch/numpy (apt-get install python3-torch)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/bp-bench-XXXXXX")
if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench/run.sh: raw results in $work" >&2
else trap 'rm -rf "$work"' EXIT; fi

c_env=(env OMP_NUM_THREADS="$THREADS" OMP_WAIT_POLICY=PASSIVE)
torch_env=(env OMP_NUM_THREADS="$THREADS" OMP_WAIT_POLICY=PASSIVE)
log() { echo "bench: $*" >&2; }

start=$(date +%s)
BENCH_LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
export BENCH_LOAD_START
for cfg in $CONFIGS; do
    train_rounds=$RUNS
    case $cfg in
        A) V=8192 D=256 L=4 H=4 CTX=256 ;;
        B) V=50264 D=256 L=4 H=4 CTX=256 ;;
        S) V=50264 D=768 L=12 H=12 CTX=512 train_rounds=0 ;;
        *) echo "bench/run.sh: unknown configuration $cfg (A, B or S)" >&2; exit 1 ;;
    esac
    dir="$work/$cfg"
    mkdir -p "$dir"
    batches=$((WARMUP + STEPS))
    "${c_env[@]}" "$TOOLS/tool_train_bench" prepare --out "$dir" --vocab "$V" --d "$D" --layers "$L" \
        --heads "$H" --senses 16 --ctx "$CTX" --batch 8 --batches "$batches" --seed 1 --data "$DATA" \
        > "$dir/prepare.json"
    log "$cfg: V=$V d=$D L=$L H=$H k=16 T=$CTX, $THREADS threads, $train_rounds training rounds of $WARMUP+$STEPS steps (B=8)"
    for r in $(seq 1 "$train_rounds"); do
        c_run() { "${c_env[@]}" "$TOOLS/tool_train_bench" train --dir "$dir" --batch 8 --warmup "$WARMUP" \
                      --steps "$STEPS" --threads "$THREADS" >> "$dir/c_train.jsonl"; }
        t_run() { "${torch_env[@]}" "$PYTHON" "$here/torch_model.py" train --dir "$dir" --batch 8 \
                      --warmup "$WARMUP" --steps "$STEPS" --threads "$THREADS" >> "$dir/torch_train.jsonl"; }
        if [ $((r % 2)) = 1 ]; then c_run; t_run; else t_run; c_run; fi
        "${c_env[@]}" "$SGEMM" --threads "$THREADS" --n 2048 --d 256 --vocab "$V" --senses 16 \
            --seconds "$SGEMM_SECONDS" >> "$dir/sgemm.jsonl"
        log "$cfg: round $r/$RUNS done ($(( $(date +%s) - start )) s)"
    done
    for r in $(seq 1 "$GEN_RUNS"); do
        c_gen() { "${c_env[@]}" "$TOOLS/tool_train_bench" generate --dir "$dir" --new "$NEW" --runs 1 \
                      --threads "$THREADS" >> "$dir/c_gen.jsonl"; }
        t_gen() { "${torch_env[@]}" "$PYTHON" "$here/torch_model.py" generate --dir "$dir" --new "$NEW" \
                      --runs 1 --threads "$THREADS" >> "$dir/torch_gen.jsonl"; }
        if [ $((r % 2)) = 1 ]; then c_gen; t_gen; else t_gen; c_gen; fi
    done
    log "$cfg: generation done ($(( $(date +%s) - start )) s)"
done

"$PYTHON" "$here/report.py" --work "$work" --configs "$CONFIGS" --threads "$THREADS" \
    --seconds $(( $(date +%s) - start )) --quick "${BENCH_QUICK:-0}" --out "$OUT"
