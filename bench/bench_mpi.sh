#!/usr/bin/env bash
# Communication against computation in data-parallel training (docs/distributed.md), on
# this machine over loopback TCP. Not run by make test.
#   1. `backpack train` on 1 process and on 2 processes with the same per-process batch
#      (one thread each): training tokens/s of each (from metrics.jsonl, which excludes
#      evaluation and saves) and the seconds per step;
#   2. the allreduce of the model's gradient buffer alone on 2 processes
#      (tests/tool_train_allreduce), against the step time of 1.
# Usage: BACKPACK=build/backpack TOOLS=build/tests bench/bench_mpi.sh
#   SHAPE   model and batch flags (default: --d 128 --layers 4 --heads 4 --senses 16
#           --context 128 --batch 4), vocabulary from data/gpt2 (make data)
#   STEPS   timed steps per run (default 20)
set -euo pipefail
BACKPACK=${BACKPACK:-build/backpack}
TOOLS=${TOOLS:-build/tests}
SHAPE=${SHAPE:---d 128 --layers 4 --heads 4 --senses 16 --context 128 --batch 4}
STEPS=${STEPS:-20}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/bp-bench-mpi-XXXXXX)
trap 'rm -rf "$work"' EXIT
MPI=(mpirun --allow-run-as-root --oversubscribe --mca btl self,tcp --mca btl_tcp_if_include lo)

awk 'BEGIN { srand(1); n = split("the cat sat on a mat and dog ran to park with big red ball while small bird sang in tree", w, " ");
    for (d = 0; d < 200; d++) { s = ""; for (i = 0; i < 400; i++) s = s w[int(rand() * n) + 1] " "; print s; print "<|endoftext|>" } }' > "$work/corpus.txt"
"$BACKPACK" tokenize --tokenizer "$here/data/gpt2" --out "$work/data" "$work/corpus.txt" >/dev/null
# shellcheck disable=SC2086
FLAGS=(--data "$work/data" --tokenizer "$here/data/gpt2" $SHAPE --steps "$STEPS" --threads 1
       --eval-every 0 --eval-batches 1 --save-every 0)

rate() { sed -n 's/.*"tokens_per_s": \([0-9.]*\).*/\1/p' "$1/metrics.jsonl" | tail -1; }
"$BACKPACK" train "${FLAGS[@]}" --out "$work/one" 2> "$work/one.log"
"${MPI[@]}" -np 2 "$BACKPACK" train "${FLAGS[@]}" --out "$work/two" 2> "$work/two.log"
params=$(sed -n 's/.*: \([0-9]*\) parameters.*/\1/p' "$work/one.log" | head -1)
tokens_per_step=$(awk -v s="$SHAPE" 'BEGIN { n = split(s, a, " "); b = 16; t = 128;
    for (i = 1; i < n; i++) { if (a[i] == "--batch") b = a[i + 1]; if (a[i] == "--context") t = a[i + 1] } print b * t }')
one=$(rate "$work/one")
two=$(rate "$work/two")
allreduce=$("${MPI[@]}" -np 2 "$TOOLS/tool_train_allreduce" "$params" 10)
median=$(sed -n 's/.*"median_s": \([0-9.]*\).*/\1/p' <<<"$allreduce")
awk -v p="$params" -v k="$tokens_per_step" -v one="$one" -v two="$two" -v ar="$median" 'BEGIN {
    step1 = k / one; step2 = 2 * k / two;
    printf "parameters %d, %d tokens per process per step\n", p, k;
    printf "1 process:   %.0f tokens/s, %.3f s per step\n", one, step1;
    printf "2 processes: %.0f tokens/s, %.3f s per step (%.2fx the tokens/s of 1)\n", two, step2, two / one;
    printf "allreduce of %d floats on 2 processes: %.3f s (median of 10) = %.0f%% of a 1-process step\n", p, ar, 100 * ar / step1 }'
echo "$allreduce"
