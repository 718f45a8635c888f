#!/usr/bin/env bash
# `backpack induction` end to end through the binary, on a made-up corpus (no data/):
# data writes files that `backpack train` reads, eval measures the checkpoint, train
# prints the summary line scripts read, and bad input gives one-line errors naming the
# file. Usage: BACKPACK=build/backpack tests/induction_cli.sh
set -euo pipefail
BACKPACK=${BACKPACK:-build/backpack}
work=$(mktemp -d /tmp/bp-induction-cli-XXXXXX)
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS=1
for i in $(seq 200); do printf 'the cat sat on the mat; a dog ran to the cat. '; done > "$work/corpus.txt"

"$BACKPACK" induction data --text "$work/corpus.txt" --out "$work/task" --n 16 --k 2 --t 32 \
    --train-seqs 64 --val-seqs 8 --seed 3 > "$work/data.out"
grep -q "64 + 8 sequences of 32 tokens, N = 16, K = 2 fixed triggers" "$work/data.out"
for f in train.tok train.marks val.tok val.marks tokenizer/vocab.json; do test -s "$work/task.$f"; done
# deterministic by seed
"$BACKPACK" induction data --text "$work/corpus.txt" --out "$work/again" --n 16 --k 2 --t 32 \
    --train-seqs 64 --val-seqs 8 --seed 3 > /dev/null
cmp "$work/task.train.tok" "$work/again.train.tok"
cmp "$work/task.val.marks" "$work/again.val.marks"

# a full model trains on the files and eval reads its checkpoint
"$BACKPACK" train --data "$work/task" --tokenizer "$work/task.tokenizer" --arch transformer \
    --layers 1 --d 16 --heads 2 --context 32 --batch 4 --steps 3 --eval-every 0 --out "$work/model" > /dev/null 2>&1
"$BACKPACK" induction eval --model "$work/model" --data "$work/task" > "$work/eval.out"
grep -Eq '^in-context accuracy [01]\.[0-9]{3}  \([1-9][0-9]* targets\)$' "$work/eval.out"

# the simplified model: the summary line, and metrics.jsonl with one line per measure
"$BACKPACK" induction train --text "$work/corpus.txt" --n 16 --k 2 --t 17 --d 32 --batch 4 \
    --steps 4 --eval-every 2 --eval-seqs 8 --out "$work/lab" > "$work/train.out"
tail -1 "$work/train.out" | grep -Eq '^in-context accuracy [01]\.[0-9]{3}  W_O2 recall [01]\.[0-9]{3}  W_K2 recall [01]\.[0-9]{3}  W_K1 recall [01]\.[0-9]{3}$'
test "$(wc -l < "$work/lab/metrics.jsonl")" -eq 3
"$BACKPACK" induction train --text "$work/corpus.txt" --n 16 --k 2 --t 17 --d 32 --layers 1 \
    --steps 1 --eval-seqs 4 | tail -1 | grep -q 'W_K2 recall n/a'

# bad input: non-zero exit and one line naming the problem
expect_error() {   # expect_error PATTERN COMMAND...
    local pattern=$1; shift
    if "$@" > "$work/out" 2> "$work/err"; then echo "should have failed: $*"; exit 1; fi
    grep -q -e "$pattern" "$work/err" || { echo "wrong error for $*:"; cat "$work/err"; exit 1; }
}
head -c 70 "$work/task.val.marks" > "$work/bad.val.marks"
cp "$work/task.val.tok" "$work/bad.val.tok"
expect_error "bad.val.marks: size does not match" "$BACKPACK" induction eval --model "$work/model" --data "$work/bad"
expect_error "no-such.val.tok" "$BACKPACK" induction eval --model "$work/model" --data "$work/no-such"
expect_error "--triggers: expected fixed or random" "$BACKPACK" induction data --out "$work/x" --triggers some
expect_error "--k 16: the number of triggers" "$BACKPACK" induction data --text "$work/corpus.txt" --n 16 --k 16 --out "$work/x"
"$BACKPACK" induction train --text "$work/corpus.txt" --n 16 --k 2 --t 17 --d 32 --batch 4 \
    --steps 3 --eval-seqs 4 --freeze wk1:2,wo:1 | tail -1 | grep -q '^in-context accuracy'
expect_error "--freeze: 'wq' is not" "$BACKPACK" induction train --text "$work/corpus.txt" --freeze wq:3
expect_error "unknown subcommand 'fly'" "$BACKPACK" induction fly
echo "induction CLI: ok"
