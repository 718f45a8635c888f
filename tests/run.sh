#!/usr/bin/env bash
# Runs each cmocka test binary given as an argument (and each shell script *.sh, which
# counts as one test: it passes when it exits 0 and is skipped when it exits 77), then
# prints one closing line "N passed, N failed, N skipped" counting the tests of all
# suites. Exit status 1 if any failed, or if any was skipped: a test skips when what it
# needs is missing (tmux, numpy, $BACKPACK, a fixture), and `make test` must not pass
# without running it. ALLOW_SKIP=1 accepts skips (e.g. on a machine without tmux).
set -u
passed=0 failed=0 skipped=0 broken="" skippers=""
for bin in "$@"; do
    case "$bin" in
    *.sh)
        out=$(bash "$bin" 2>&1); rc=$?
        if [ "$rc" -eq 0 ]; then passed=$((passed + 1)); echo "[  PASSED  ] $bin"
        elif [ "$rc" -eq 77 ]; then printf '%s\n' "$out"; skipped=$((skipped + 1))
            skippers="$skippers $bin"; echo "[  SKIPPED ] $bin"
        else printf '%s\n' "$out"; failed=$((failed + 1)); echo "[  FAILED  ] $bin"; fi
        continue;;
    esac
    out=$("$bin" 2>&1); rc=$?
    printf '%s\n' "$out"
    p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    s=$(printf '%s\n' "$out" | sed -n 's/^\[  SKIPPED \] \([0-9]*\) test.*/\1/p' | tail -1)
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${s:-0}))
    [ -n "$s" ] && skippers="$skippers $bin"
    if [ "$rc" -ne 0 ] && [ -z "$f" ]; then failed=$((failed + 1)); broken="$broken $bin"; fi
done
[ -n "$broken" ] && echo "crashed or failed outside a test:$broken"
[ -n "$skippers" ] && echo "skipped tests in:$skippers"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] || exit 1
if [ "$skipped" -gt 0 ] && [ "${ALLOW_SKIP:-0}" != 1 ]; then
    echo "tests/run.sh: $skipped test(s) skipped; install what they need (make deps) or set ALLOW_SKIP=1" >&2
    exit 1
fi
exit 0
