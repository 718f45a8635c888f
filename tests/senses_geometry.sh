#!/usr/bin/env bash
# `backpack geometry` end to end: random directions (--json against the exact values),
# a tiny model's sense database and a Transformer checkpoint (the counts of pairs a
# sample of 20 words must give), the associative memory, and bad options.
# Usage: BACKPACK=build/backpack tests/senses_geometry.sh
set -euo pipefail
BACKPACK=${BACKPACK:-build/backpack}
PYTHON=${PYTHON:-/usr/bin/python3}
work=$(mktemp -d /tmp/bp-geometry-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "senses_geometry: $*" >&2; exit 1; }

"$BACKPACK" geometry random --dims 2,3,100,1000 --pairs 100000 --seed 5 --json > "$work/random.jsonl"
"$PYTHON" - "$work/random.jsonl" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
assert [r["d"] for r in rows] == [2, 3, 100, 1000], rows
want = {2: 0.0111, 3: 0.0175, 100: 0.1375, 1000: 0.4187}
for r in rows:
    assert abs(r["exact"] - want[r["d"]]) < 1e-4, r
    assert abs(r["fraction"] - r["exact"]) < 0.01, r   # 100000 pairs: sd <= 0.0016
PY

# a tiny random Backpack (k = 2 senses, d = 16) over a small trained tokenizer
for i in $(seq 1 40); do echo "the river bank and the money bank, word$i and more words $i"; done > "$work/text.txt"
"$BACKPACK" tokenizer train --vocab-size 320 --out "$work/bpe" "$work/text.txt" >/dev/null
"$BACKPACK" init --out "$work/model" --tokenizer "$work/bpe" --d 16 --layers 1 --heads 2 --senses 2 \
    --context 16 --seed 3 >/dev/null
"$BACKPACK" export --model "$work/model" --db "$work/senses.db" >/dev/null
out=$("$BACKPACK" geometry senses --db "$work/senses.db" --sample 20 --seed 3 --plot "$work/angles.svg")
# 20 words x 2 senses: C(40, 2) - 20 = 760 pairs of different words, 20 own pairs, 40 nearest
printf '%s\n' "$out" | grep -q "sense vectors: random pairs *760 " || fail "sense pairs: $out"
printf '%s\n' "$out" | grep -q "a word's own senses *20 " || fail "own pairs: $out"
printf '%s\n' "$out" | grep -q "sense vectors: nearest neighbour *40 " || fail "nearest: $out"
printf '%s\n' "$out" | grep -q "embeddings E: random pairs *190 " || fail "E pairs: $out"
printf '%s\n' "$out" | grep -q "Welch bound 0.1961" || fail "Welch bound sqrt(24 / (16 * 39)) for 40 in 16 dims: $out"
"$PYTHON" -c "import sys, xml.etree.ElementTree as ET; ET.parse(sys.argv[1])" "$work/angles.svg"

# a Transformer has no senses: its embeddings through --model
"$BACKPACK" init --out "$work/tf" --tokenizer "$work/bpe" --arch transformer --d 16 --layers 1 --heads 2 \
    --context 16 --seed 3 >/dev/null
out=$("$BACKPACK" geometry senses --model "$work/tf" --sample 30)
printf '%s\n' "$out" | grep -q "embeddings E: random pairs *435 " || fail "--model: $out"

out=$("$BACKPACK" geometry memory --dims 256 --pairs 65,4096 --seed 1)
printf '%s\n' "$out" | grep -q "^ *256 *1.000 *0\.[0-7]" || fail "memory: $out"

# bad input: one line, non-zero
for args in "random --dims 1" "random --dims 10 --band 91:89" "random" "senses --sample 5" \
    "memory --dims 64" "nothing"; do
    # shellcheck disable=SC2086
    if "$BACKPACK" geometry $args >/dev/null 2>&1; then fail "accepted: geometry $args"; fi
done
if "$BACKPACK" geometry senses --db "$work/none.db" 2>"$work/err"; then fail "missing db accepted"; fi
[ "$(wc -l < "$work/err")" = 1 ] || fail "error is not one line"
echo "senses geometry: ok"
