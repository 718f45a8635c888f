#!/usr/bin/env bash
# bench_export.sh - `backpack export` and `backpack nearest` of a randomly initialized
# model, the current build and an older one side by side; by default the published small
# Backpack (V = 50264, d = 768, L = 12, H = 12, k = 16: 2.5 GB of senses, 6.2e13 flops of
# float top-word scores). Needs ~7 GB of free disk beside TMPDIR and ~4 GB of memory,
# and minutes of CPU per export: run it with nice, and not in `make test`.
#
#   BACKPACK=build/backpack bench/bench_export.sh            # the published small shape
#   V=8192 D=256 K=16 bench/bench_export.sh                  # a quick smaller shape
#   OLD=0 bench/bench_export.sh                              # the current build only
#
# The old build is OLD_REF (default 8055850: export scoring with float sgemm and a scan
# of every score, nearest loading every sense vector into memory on each call), built
# from `git archive` in a temporary directory; OLD_BACKPACK=path uses a binary instead.
# Prints, for each build: the export's wall and CPU seconds, then `nearest` (one sense,
# and --min) three times each with wall seconds; then how many top/bottom lists of the
# two databases differ (the old lists ranked float sgemm scores, the new ones exact
# scores: they differ only where two words' scores are within float rounding), and the
# score product alone, old and new, on 256 words (tool_senses_scorebench, if built).
set -euo pipefail
BACKPACK=${BACKPACK:-build/backpack}
TOOLS=${TOOLS:-build/tests}
V=${V:-50264} D=${D:-768} L=${L:-12} H=${H:-12} K=${K:-16}
OLD=${OLD:-1} OLD_REF=${OLD_REF:-8055850}
TOKENIZER=${TOKENIZER:-data/gpt2}
PYTHON=${PYTHON:-/usr/bin/python3}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/bp-bench-export-XXXXXX")
trap 'rm -rf "$work"' EXIT
tok_args=()
if [ -f "$TOKENIZER/vocab.json" ] && [ "$V" -ge 50257 ]; then tok_args=(--tokenizer "$TOKENIZER"); fi
"$BACKPACK" init --out "$work/model" "${tok_args[@]}" --vocab "$V" --d "$D" --layers "$L" --heads "$H" \
    --senses "$K" --context 512 --seed 1 >/dev/null
echo "bench_export: $(date -u '+%Y-%m-%d %H:%M UTC') V=$V d=$D L=$L H=$H k=$K threads=${OMP_NUM_THREADS:-all}" \
     "cores=$(nproc) load=$(cut -d' ' -f1-3 /proc/loadavg)"

old_bin=
if [ "$OLD" = 1 ]; then
    if [ -n "${OLD_BACKPACK:-}" ]; then old_bin=$OLD_BACKPACK
    else
        mkdir -p "$work/old"
        git -C "$here" archive "$OLD_REF" | tar -x -C "$work/old"
        make -C "$work/old" -j2 build/backpack >/dev/null 2>&1 || { echo "bench_export: cannot build $OLD_REF" >&2; exit 1; }
        old_bin=$work/old/build/backpack
    fi
fi

# one export and the nearest-neighbour queries on its database
bench() {  # label binary db
    local label=$1 bin=$2 db=$3
    /usr/bin/time -f "$label export: %e s wall, %U s user + %S s system" \
        "$bin" export --model "$work/model" --db "$db" </dev/null >/dev/null
    echo "$label database: $(du -m "$db" | cut -f1) MB$( [ -f "$db.index" ] && echo ", index $(du -m "$db.index" | cut -f1) MB")"
    for args in "--sense 3" "--min"; do
        for i in 1 2 3; do
            # shellcheck disable=SC2086
            /usr/bin/time -f "$label nearest $args (call $i): %e s wall, %M KB resident" \
                "$bin" nearest --db "$db" "#1000" $args >/dev/null
        done
    done
}

bench new "$BACKPACK" "$work/new.db"
if [ -n "$old_bin" ]; then
    bench old "$old_bin" "$work/old.db"
    "$PYTHON" - "$work/old.db" "$work/new.db" <<'EOF'
import sqlite3, sys
import numpy as np
a, b = (sqlite3.connect(p) for p in sys.argv[1:3])
q = "SELECT top_ids, bottom_ids, top_scores FROM senses ORDER BY id"
rows = order = sets = 0
worst = 0.0
for (ta, ba, sa), (tb, bb, sb) in zip(a.execute(q), b.execute(q)):
    rows += 1
    ia, ib = np.frombuffer(ta + ba, "<i4"), np.frombuffer(tb + bb, "<i4")
    if not np.array_equal(ia, ib):
        order += 1
        half = len(ia) // 2
        sets += set(ia[:half]) != set(ib[:half]) or set(ia[half:]) != set(ib[half:])
    fa, fb = np.frombuffer(sa, "<f4").astype(float), np.frombuffer(sb, "<f4").astype(float)
    worst = max(worst, float(np.max(np.abs(fa - fb) / np.maximum(np.abs(fb), 1e-30))))
print(f"lists old vs new: {rows} senses, {order} with a list in another order, {sets} with another set of words; "
      f"largest relative difference of a stored top score {worst:.1e}")
EOF
fi
if [ -x "$TOOLS/tool_senses_scorebench" ]; then
    "$TOOLS/tool_senses_scorebench" --vocab "$V" --d "$D" --senses "$K" --words 256
fi
