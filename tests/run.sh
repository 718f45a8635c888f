#!/usr/bin/env bash
# Runs each cmocka test binary given as an argument (and each shell script *.sh, which
# counts as one test that passes when it exits 0), then prints one closing line
# "N passed, N failed" counting the tests of all suites. Exit status 1 if any failed.
set -u
passed=0 failed=0 broken=""
for bin in "$@"; do
    case "$bin" in
    *.sh)
        if out=$(bash "$bin" 2>&1); then passed=$((passed + 1)); echo "[  PASSED  ] $bin";
        else printf '%s\n' "$out"; failed=$((failed + 1)); echo "[  FAILED  ] $bin"; fi
        continue;;
    esac
    out=$("$bin" 2>&1); rc=$?
    printf '%s\n' "$out"
    p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
    if [ "$rc" -ne 0 ] && [ -z "$f" ]; then failed=$((failed + 1)); broken="$broken $bin"; fi
done
[ -n "$broken" ] && echo "crashed or failed outside a test:$broken"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
