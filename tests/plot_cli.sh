#!/usr/bin/env bash
# `backpack plot` end to end: a tiny model trained for a few steps, its curves as PNG,
# SVG (parsed as XML) and PDF and in the terminal; metrics.jsonl files that are cut off
# or corrupt; the senses of its sense database. Usage: BACKPACK=build/backpack tests/plot_cli.sh
set -euo pipefail
BACKPACK=${BACKPACK:-build/backpack}
PYTHON=${PYTHON:-/usr/bin/python3}
work=$(mktemp -d /tmp/bp-plot-cli-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "plot_cli: $*" >&2; exit 1; }

# a small text, a small tokenizer trained on it, a tiny model trained for 8 steps
for i in $(seq 1 60); do
    echo "The river bank was quiet, and the bank by the river kept money $i."
    [ $((i % 6)) = 0 ] && echo "<|endoftext|>"
done > "$work/text.txt"
tok="$work/bpe"
"$BACKPACK" tokenizer train --vocab-size 300 --out "$tok" "$work/text.txt" >/dev/null
"$BACKPACK" tokenize --tokenizer "$tok" --out "$work/t" --val-fraction 0.2 "$work/text.txt" >/dev/null
"$BACKPACK" train --data "$work/t" --tokenizer "$tok" --out "$work/run" --steps 8 --d 16 --layers 1 \
    --heads 2 --senses 2 --context 16 --batch 2 --eval-every 4 --eval-batches 1 --threads 1 >/dev/null 2>&1
[ "$(grep -c '"loss"' "$work/run/metrics.jsonl")" = 8 ] || fail "expected 8 step lines"

# pictures in the three formats
for ext in png svg pdf; do
    "$BACKPACK" plot "$work/run" --out "$work/loss.$ext" --x step >/dev/null
done
"$PYTHON" - "$work" <<'PY'
import struct, sys, xml.etree.ElementTree as ET
w = sys.argv[1]
png = open(w + "/loss.png", "rb").read()
assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
width, height = struct.unpack(">II", png[16:24])
assert (width, height) == (1200, 900), (width, height)
root = ET.parse(w + "/loss.svg").getroot()
assert root.tag.endswith("svg"), root.tag
assert root.get("width").startswith("1200"), root.get("width")
assert len(list(root.iter())) > 50, "an almost empty SVG"
pdf = open(w + "/loss.pdf", "rb").read()
assert pdf[:5] == b"%PDF-" and b"%%EOF" in pdf[-64:], "not a PDF"
PY

# two runs overlaid, against minutes: the second run's curves in the second colour
cp -r "$work/run" "$work/second"
"$BACKPACK" plot "$work/run" --out "$work/one.svg" --x time >/dev/null
"$BACKPACK" plot "$work/run" "$work/second" --out "$work/two.svg" --x time >/dev/null
orange='stroke:rgb(100%,49.803922%,5.490196%)'
! grep -q "$orange" "$work/one.svg" || fail "one run drawn in two colours"
grep -q "$orange" "$work/two.svg" || fail "the second run is not drawn"

# the terminal: exactly the lines asked for, the curves in braille
out=$("$BACKPACK" plot --term "$work/run" --width 60 --height 15)
[ "$(printf '%s\n' "$out" | wc -l)" = 15 ] || fail "--term: expected 15 lines"
printf '%s\n' "$out" | grep -q "run: training loss" || fail "--term: no legend"
printf '%s\n' "$out" | head -n 12 | "$PYTHON" -c "import sys; t = sys.stdin.read(); sys.exit(0 if any(0x2801 <= ord(c) <= 0x28FF for c in t) else 1)" ||
    fail "--term: no braille dots in the plotting area"

# a cut-off last line: the valid lines are plotted, with a note naming file and line
bad="$work/bad"
cp -r "$work/run" "$bad"
head -c -20 "$work/run/metrics.jsonl" > "$bad/metrics.jsonl"
n=$(wc -l < "$bad/metrics.jsonl")
err=$("$BACKPACK" plot "$bad" --out "$work/bad.png" 2>&1 >/dev/null)
[ -s "$work/bad.png" ] || fail "no picture from the valid lines"
printf '%s\n' "$err" | grep -q "metrics.jsonl:$((n + 1)): incomplete last line" || fail "no note: $err"
# garbage in the middle, and an empty file: one line naming file and line, no picture
{ head -n 2 "$work/run/metrics.jsonl"; echo 'not json at all'; tail -n 3 "$work/run/metrics.jsonl"; } > "$bad/metrics.jsonl"
if err=$("$BACKPACK" plot "$bad" --out "$work/bad2.png" 2>&1); then fail "garbage accepted"; fi
[ "$(printf '%s\n' "$err" | wc -l)" = 1 ] || fail "error is not one line: $err"
printf '%s\n' "$err" | grep -q "^backpack: $bad/metrics.jsonl:3: " || fail "error does not name file and line: $err"
[ ! -e "$work/bad2.png" ] || fail "a picture was written from a corrupt file"
: > "$bad/metrics.jsonl"
if err=$("$BACKPACK" plot "$bad" --out "$work/bad3.png" 2>&1); then fail "empty file accepted"; fi
printf '%s\n' "$err" | grep -q "metrics.jsonl: empty file" || fail "empty: $err"
# usage errors
if "$BACKPACK" plot "$work/run" --out "$work/x.gif" 2>/dev/null; then fail ".gif accepted"; fi
if "$BACKPACK" plot "$work/run" --out "$work/x.png" --x bananas 2>/dev/null; then fail "--x bananas accepted"; fi

# senses: one word as bars, several as a map
"$BACKPACK" export --model "$work/run" --db "$work/senses.db" >/dev/null
"$BACKPACK" plot senses --db "$work/senses.db" river --out "$work/river.svg" >/dev/null
"$BACKPACK" plot senses --db "$work/senses.db" river bank money --out "$work/map.png" >/dev/null
"$PYTHON" -c "import sys, xml.etree.ElementTree as ET; ET.parse(sys.argv[1])" "$work/river.svg"
[ -s "$work/map.png" ] || fail "no sense map"
if "$BACKPACK" plot senses --db "$work/nothing.db" river --out "$work/none.png" 2>/dev/null; then
    fail "a missing database accepted"
fi
[ ! -e "$work/none.png" ] || fail "a picture from a missing database"
echo "plot cli: ok"
