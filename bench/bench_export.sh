#!/usr/bin/env bash
# bench_export.sh - throughput of `backpack export` (MB of sense vectors per second)
# for a randomly initialized model of a given shape; by default the published small
# Backpack (V = 50264, d = 768, L = 12, H = 12, k = 16: 2.5 GB of senses, ~6e13 flops
# of top-word scores). Needs ~3 GB of free disk beside TMPDIR and ~3 GB of memory.
#
#   BACKPACK=build/backpack bench/bench_export.sh            # the small shape
#   V=8192 D=256 K=16 bench/bench_export.sh                  # a quick smaller shape
#
# Prints the export's own summary line and the database size. Uses data/gpt2 for the
# token names (make data).
set -euo pipefail
BACKPACK=${BACKPACK:-build/backpack}
V=${V:-50264} D=${D:-768} L=${L:-12} H=${H:-12} K=${K:-16}
TOKENIZER=${TOKENIZER:-data/gpt2}
work=$(mktemp -d "${TMPDIR:-/tmp}/bp-bench-export-XXXXXX")
trap 'rm -rf "$work"' EXIT
tok_args=()
if [ -f "$TOKENIZER/vocab.json" ] && [ "$V" -ge 50257 ]; then tok_args=(--tokenizer "$TOKENIZER"); fi
"$BACKPACK" init --out "$work/model" "${tok_args[@]}" --vocab "$V" --d "$D" --layers "$L" --heads "$H" \
    --senses "$K" --context 512 --seed 1 >/dev/null
echo "bench_export: V=$V d=$D L=$L H=$H k=$K threads=${OMP_NUM_THREADS:-all} cores=$(nproc)"
"$BACKPACK" export --model "$work/model" --db "$work/senses.db" </dev/null
echo "bench_export: database $(du -m "$work/senses.db" | cut -f1) MB"
