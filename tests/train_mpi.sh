#!/usr/bin/env bash
# Data-parallel training over Open MPI on this machine (TCP over loopback), tiny models:
#   - 1 process --batch 8 = 2 processes --batch 4 = 4 processes --batch 2, with and
#     without dropout (step-1 loss 1e-6 relative, step-20 loss 1e-3, weights 1e-4), and
#     the parameters bit-identical on every rank after every step (BACKPACK_REPLICA_LOG);
#   - --zero 1 equals the plain allreduce, and its saved moments continue alike on one
#     process; two runs of the same N are bit-identical;
#   - SIGTERM to one rank: every rank stops, rank 0 saves, and the resumed run ends
#     bit-identical to an uninterrupted one;
#   - a killed rank ends the job non-zero within 30 s with no process left, the last
#     checkpoint loads and resumes (same N: bit-identical; 4 processes instead of 2:
#     losses 1e-5 right after the resume, 1e-3 at the end, the same data position);
#   - different flags or data on different ranks: a clean error on every rank.
# Usage: BACKPACK=build/backpack TOOLS=build/tests tests/train_mpi.sh
set -euo pipefail
BACKPACK=${BACKPACK:-build/backpack}
TOOLS=${TOOLS:-build/tests}
CKPT="$TOOLS/tool_train_ckpt"
work=$(mktemp -d /tmp/bp-train-mpi-XXXXXX)
# on a failure, end the jobs this script started in the background (by their ids)
cleanup() {
    local left
    left=$(jobs -p)
    if [ -n "$left" ]; then kill $left 2>/dev/null || true; wait 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT
# Open MPI's own allocations outlive MPI_Finalize in components it has unloaded (no
# symbol to suppress them by), so the sanitizer build checks leaks in the
# single-process runs only.
MPI=(mpirun --allow-run-as-root --oversubscribe --mca btl self,tcp --mca btl_tcp_if_include lo
     -x LSAN_OPTIONS=detect_leaks=0)
fail() { echo "train_mpi: $*" >&2; exit 1; }

# A corpus of random sentences over 22 words, a 300-id tokenizer, token files.
corpus() {  # corpus SEED FILE
    awk -v seed="$1" 'BEGIN { srand(seed); n = split("the cat sat on a mat and dog ran to park with big red ball while small bird sang in tree", w, " ");
        for (d = 0; d < 40; d++) { s = ""; for (i = 0; i < 300; i++) s = s w[int(rand() * n) + 1] " "; print s; print "<|endoftext|>" } }' > "$2"
}
corpus 7 "$work/corpus.txt"
corpus 8 "$work/other.txt"
"$BACKPACK" tokenizer train --vocab-size 300 --out "$work/tok" "$work/corpus.txt" >/dev/null
"$BACKPACK" tokenize --tokenizer "$work/tok" --out "$work/data" "$work/corpus.txt" >/dev/null
"$BACKPACK" tokenize --tokenizer "$work/tok" --out "$work/other" "$work/other.txt" >/dev/null

FLAGS=(--data "$work/data" --tokenizer "$work/tok" --d 16 --layers 2 --heads 2 --senses 4
       --context 16 --threads 1 --eval-every 10 --eval-batches 2 --lr 2e-3 --warmup 2 --seed 3)

# train N OUT FLAGS...: N processes (1: no mpirun), each rank logging its weights hash
# after every step to OUT.replicas.<rank>.
train() {
    local n=$1 out=$2
    shift 2
    if [ "$n" = 1 ]; then
        BACKPACK_REPLICA_LOG="$out.replicas" "$BACKPACK" train "${FLAGS[@]}" --out "$out" "$@" 2>/dev/null
    else
        "${MPI[@]}" -x BACKPACK_REPLICA_LOG="$out.replicas" -np "$n" "$BACKPACK" train "${FLAGS[@]}" \
            --out "$out" "$@" 2>/dev/null
    fi
}
loss() {  # loss DIR STEP: the training loss of that step
    sed -n "s/^{\"step\": $2, \"loss\": \([^,]*\),.*/\1/p" "$1/metrics.jsonl"
}
close() {  # close A B TOL WHAT: |A - B| <= TOL |A|
    awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; m = a < 0 ? -a : a; exit !(a != "" && d <= t * m) }' ||
        fail "$4: $1 vs $2 (tolerance $3)"
}
weights_close() {  # weights_close DIR1 DIR2 TOL
    local d
    d=$("$CKPT" diff "$1" "$2" | awk '{ print $2 }')
    awk -v d="$d" -v t="$3" 'BEGIN { exit !(d != "" && d <= t) }' || fail "weights of $1 and $2 differ by $d (tolerance $3)"
}
same_replicas() {  # same_replicas OUT N STEPS: every rank's weights hash equals rank 0's, every step
    [ "$(wc -l < "$1.replicas.0")" -eq "$3" ] || fail "$1: rank 0 logged $(wc -l < "$1.replicas.0") steps, not $3"
    for r in $(seq 1 $(($2 - 1))); do
        cmp -s "$1.replicas.0" "$1.replicas.$r" || fail "$1: rank $r's weights differ from rank 0's"
    done
}
state() { "$CKPT" state "$1"; }
field() { state "$1" | awk -v k="$2" '{ for (i = 1; i < NF; i++) if ($i == k) print $(i + 1) }'; }
rank_pid() {  # rank_pid OUT RANK: the process of that rank of the job writing OUT
    local p
    for p in $(pgrep -f -- "--out $1( |$)"); do
        if tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2"; then echo "$p"; return; fi
    done
}
wait_for_step() {  # wait_for_step DIR STEP: until DIR's checkpoint is at STEP or later
    for _ in $(seq 600); do
        s=$(field "$1" step 2>/dev/null || true)
        [ -n "$s" ] && [ "$s" -ge "$2" ] && return 0
        sleep 0.05
    done
    fail "$1 never reached step $2"
}

# 1. The same training on 1, 2 and 4 processes, without and with dropout.
for drop in 0 0.1; do
    train 1 "$work/n1-$drop" --batch 8 --steps 20 --dropout "$drop"
    train 2 "$work/n2-$drop" --batch 4 --steps 20 --dropout "$drop"
    train 4 "$work/n4-$drop" --batch 2 --steps 20 --dropout "$drop"
    for n in 2 4; do
        close "$(loss "$work/n1-$drop" 1)" "$(loss "$work/n$n-$drop" 1)" 1e-6 "dropout $drop, $n processes: step-1 loss"
        close "$(loss "$work/n1-$drop" 20)" "$(loss "$work/n$n-$drop" 20)" 1e-3 "dropout $drop, $n processes: step-20 loss"
        weights_close "$work/n1-$drop" "$work/n$n-$drop" 1e-4
        same_replicas "$work/n$n-$drop" "$n" 20
    done
done
# the global batch is saved: one train_state.bin format for any N
[ "$(field "$work/n4-0.1" batch)" = 8 ] || fail "n4: saved batch is not the global 8"

# 2. ZeRO-1 against the allreduce; the same run twice.
train 2 "$work/zero" --batch 4 --steps 20 --dropout 0.1 --zero 1
close "$(loss "$work/n2-0.1" 20)" "$(loss "$work/zero" 20)" 1e-5 "--zero 1: step-20 loss"
weights_close "$work/n2-0.1" "$work/zero" 1e-4
same_replicas "$work/zero" 2 20
# the moments gathered under ZeRO-1 are the whole AdamW state: both runs continue alike
# on one process (the global batch of 8 shared out)
cp -r "$work/n2-0.1" "$work/plain"
"$BACKPACK" train --resume "$work/zero" --steps 25 2>/dev/null
"$BACKPACK" train --resume "$work/plain" --steps 25 2>/dev/null
[ "$(field "$work/zero" step)" = 25 ] || fail "--zero 1 run did not resume"
close "$(loss "$work/plain" 25)" "$(loss "$work/zero" 25)" 1e-5 "--zero 1 resumed on 1 process: step-25 loss"
weights_close "$work/plain" "$work/zero" 1e-4
train 2 "$work/again" --batch 4 --steps 20 --dropout 0.1
cmp -s "$work/n2-0.1.replicas.0" "$work/again.replicas.0" || fail "two runs of 2 processes differ"

# 3. Longer runs: uninterrupted, stopped by SIGTERM to rank 1, and killed.
LONG=(--batch 4 --steps 150 --dropout 0.1 --save-every 10 --eval-every 50)
train 2 "$work/whole" "${LONG[@]}"
final=$(field "$work/whole" hash)

train 2 "$work/stop" "${LONG[@]}" &
job=$!
wait_for_step "$work/stop" 20
rank1=$(rank_pid "$work/stop" 1)
[ -n "$rank1" ] || fail "no rank 1 in the job writing $work/stop"
kill -TERM "$rank1"
wait "$job" || fail "a SIGTERM to rank 1: mpirun exited $?"
stopped=$(field "$work/stop" step)
[ "$stopped" -lt 150 ] || fail "SIGTERM did not stop the run early"
[ "$(grep -c '"loss"' "$work/stop/metrics.jsonl")" -eq "$stopped" ] || fail "stop: metrics lines != $stopped steps"
"${MPI[@]}" -np 2 "$BACKPACK" train --resume "$work/stop" 2>/dev/null
[ "$(field "$work/stop" hash)" = "$final" ] || fail "stop and resume: final weights differ from the uninterrupted run"

train 2 "$work/kill" "${LONG[@]}" &
job=$!
wait_for_step "$work/kill" 20
rank1=$(rank_pid "$work/kill" 1)
[ -n "$rank1" ] || fail "no rank 1 in the job writing $work/kill"
t0=$(date +%s)
kill -KILL "$rank1"
if wait "$job"; then fail "mpirun exited 0 after a rank was killed"; fi
[ $(($(date +%s) - t0)) -le 30 ] || fail "mpirun took more than 30 s to end after a rank died"
sleep 0.5
if pgrep -f -- "--out $work/kill" >/dev/null; then fail "processes of the killed job are left"; fi
at=$(field "$work/kill" step)  # the last checkpoint loads
[ -n "$at" ] && [ "$at" -ge 20 ] && [ "$at" -lt 150 ] || fail "killed run: checkpoint at step '$at'"
cp -r "$work/kill" "$work/kill4"
"${MPI[@]}" -np 2 "$BACKPACK" train --resume "$work/kill" 2>/dev/null
[ "$(field "$work/kill" hash)" = "$final" ] || fail "kill and resume: final weights differ from the uninterrupted run"

# 4. Resume on 4 processes (the saved global batch 8 shared out as 2 each).
"${MPI[@]}" -np 4 "$BACKPACK" train --resume "$work/kill4" 2>/dev/null
[ "$(field "$work/kill4" step)" = 150 ] || fail "resume on 4 processes did not finish"
[ "$(field "$work/kill4" epoch) $(field "$work/kill4" index)" = "$(field "$work/whole" epoch) $(field "$work/whole" index)" ] ||
    fail "resume on 4 processes: data position differs"
# right after the resume only rounding differs; over the ~130 steps that follow, Adam
# grows those differences (1 vs 4 processes from scratch: weights 5e-4 to 2e-3 apart)
for s in $((at + 1)) $((at + 5)) $((at + 10)); do
    close "$(loss "$work/whole" $s)" "$(loss "$work/kill4" $s)" 1e-5 "resume on 4 processes: step-$s loss"
done
close "$(loss "$work/whole" 150)" "$(loss "$work/kill4" 150)" 1e-3 "resume on 4 processes: step-150 loss"
weights_close "$work/whole" "$work/kill4" 2e-2
# 3 processes cannot share a global batch of 8; --batch must make 8
out=$("${MPI[@]}" -np 3 "$BACKPACK" train --resume "$work/kill4" --steps 160 2>&1) && fail "3 processes resumed a batch of 8"
grep -q "global batch of 8 windows does not divide among 3 processes" <<<"$out" || fail "3 processes: $out"
out=$("${MPI[@]}" -np 2 "$BACKPACK" train --resume "$work/kill4" --steps 160 --batch 3 2>&1) && fail "2 x 3 resumed a batch of 8"
grep -q "give --batch 4" <<<"$out" || fail "--batch 3: $out"

# 5. Different flags, different data: the same clean error on every rank, nothing written.
out=$("${MPI[@]}" --tag-output -np 1 "$BACKPACK" train "${FLAGS[@]}" --out "$work/bad" --steps 5 --batch 4 : \
      -np 1 "$BACKPACK" train "${FLAGS[@]}" --out "$work/bad" --steps 5 --batch 2 2>&1) && fail "different --batch ran"
for r in 0 1; do
    grep -q "^\[1,$r\]<stderr>:backpack: rank 1: --batch differs from rank 0's" <<<"$out" || fail "rank $r: $out"
done
out=$("${MPI[@]}" --tag-output -np 1 "$BACKPACK" train "${FLAGS[@]}" --out "$work/bad" --steps 5 --batch 4 : \
      -np 1 "$BACKPACK" train "${FLAGS[@]}" --data "$work/other" --out "$work/bad" --steps 5 --batch 4 2>&1) &&
    fail "different data ran"
for r in 0 1; do
    grep -q "^\[1,$r\]<stderr>:backpack: .*training data differs between rank 0 .* and rank 1" <<<"$out" || fail "rank $r: $out"
done
[ ! -e "$work/bad" ] || fail "a refused run wrote $work/bad"
echo "train over MPI: ok"
