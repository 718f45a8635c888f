#!/usr/bin/env bash
# The real `backpack browse` on a real (tmux) terminal: send keys, read the pane.
#   tests/tui_tmux.sh BACKPACK DB MODEL_DIR WORKDIR
# Run by tests/test_tui_screens.c (which builds DB and MODEL_DIR). Exit 0 when every
# check passed; otherwise one line on stderr naming the failed check, with the pane.
set -u
bin=$1 db=$2 model=$3 work=$4
mkdir -p "$work/tmux"
# a server of our own, in a directory of our own: other runs on the machine cannot meet it
export TMUX_TMPDIR="$work/tmux"
sock="bp-tui-test-$$"
t() { tmux -u -L "$sock" -f /dev/null "$@"; }
cleanup() {
    t kill-server 2>/dev/null
    rm -rf "$work/tmux"
}
trap cleanup EXIT

fail() {
    echo "tui_tmux.sh: $1 | pane: $(t capture-pane -p -t browse 2>/dev/null | tr '\n' '|' | tr -s ' ')" >&2
    exit 1
}

# Waits (up to 10 s) until the pane shows the text.
wait_for() {
    for _ in $(seq 100); do
        t capture-pane -p -t browse 2>/dev/null | grep -qF -- "$1" && return 0
        sleep 0.1
    done
    fail "timed out waiting for '$1'"
}

start() {
    # the shell prints the exit status after browse returns, on the restored screen; a
    # loaded machine sometimes loses the server as it starts ("server exited
    # unexpectedly"), so starting is tried three times
    for _ in 1 2 3; do
        t new-session -d -s browse -x 100 -y 30 \
            "env LANG=C.UTF-8 TERM=screen $bin browse --db '$db' $1; echo \"EXIT=\$?\"; sleep 30" && return 0
        sleep 0.5
    done
    fail "tmux cannot start a session"
}

# 1. search, open a word, its senses are drawn; resize below 80x24 and back
start "--model '$model'"
wait_for "Sense browser"
t send-keys -t browse "/" "bank"
wait_for "start with 'bank'"
t send-keys -t browse Enter
wait_for "␣bank  #"
wait_for "sense 0: norm"
t send-keys -t browse Down Down
wait_for "sense 2: norm"
t resize-window -t browse -x 70 -y 20
wait_for "terminal too small: 70x20"
t resize-window -t browse -x 100 -y 30
wait_for "sense 2: norm"
t send-keys -t browse Enter
wait_for "nearest (cos of sense 2)"
t send-keys -t browse "?"
wait_for "Keys (on the sense screen now"
t send-keys -t browse "?" "p" "the bank" Enter
wait_for "prob"
t send-keys -t browse "q"
wait_for "EXIT=0"
# the alternate screen is gone: the browser's header is no longer on the pane
t capture-pane -p -t browse | grep -qF "? help  q quit" && fail "screen not restored after q"
t kill-session -t browse

# 2. Ctrl-C quits cleanly too
start ""
wait_for "Sense browser"
t send-keys -t browse C-c
wait_for "EXIT=0"
t kill-session -t browse

# 3. SIGTERM: the terminal is restored and the status says so
start ""
wait_for "Sense browser"
pid=$(pgrep -P "$(t display-message -p -t browse '#{pane_pid}')" -f "browse --db" || true)
[ -n "$pid" ] || fail "browse process not found"
kill -TERM "$pid"
wait_for "EXIT=143"
t capture-pane -p -t browse | grep -qF "? help  q quit" && fail "screen not restored after SIGTERM"
exit 0
