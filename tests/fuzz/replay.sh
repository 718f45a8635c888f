#!/usr/bin/env bash
# replay.sh - every committed fuzz input through its target once, without libFuzzer: the
# seed corpus (tests/fuzz/corpus/<target>/) and every crasher found so far
# (tests/fuzz/crashes/<target>/), by $TOOLS/fuzz/replay_<target> - under ASan and UBSan
# in the second pass of `make test`.
set -u
# libFuzzer fails an input that asks for more than 2 GB at once (-malloc_limit_mb, its
# default rss limit); under ASan the replay does the same
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}max_allocation_size_mb=2048"
here=$(cd "$(dirname "$0")" && pwd)
TOOLS=${TOOLS:?TOOLS must name the directory of the test binaries}
rc=0
for src in "$here"/fuzz_*.c; do
    t=$(basename "$src" .c)
    t=${t#fuzz_}
    bin="$TOOLS/fuzz/replay_$t"
    if [ ! -x "$bin" ]; then echo "replay.sh: $bin is not built" >&2; exit 1; fi
    if [ -z "$(ls -A "$here/corpus/$t" 2>/dev/null)" ]; then
        echo "replay.sh: no seed corpus in tests/fuzz/corpus/$t" >&2
        rc=1
        continue
    fi
    if ! out=$("$bin" "$here/corpus/$t" "$here/crashes/$t" 2>&1); then
        printf '%s\n' "$out"
        echo "replay.sh: $t failed" >&2
        rc=1
        continue
    fi
    echo "$t: $out"
done
exit $rc
