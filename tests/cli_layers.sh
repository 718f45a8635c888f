#!/usr/bin/env bash
# Layer plans from the command line, on a tiny 4-block model (seconds): eval and
# generate under --layers (the identity plan is the model to the printed digit, other
# plans change it), the one-line errors that point at the bad character, the sweep of
# `backpack layers --json` (its rows, its baseline, its similarity matrix), and
# --no-last-residual saved in config.json and honoured when the checkpoint reloads.
# Usage: BACKPACK=build/backpack tests/cli_layers.sh   (needs make data)
set -euo pipefail
NAME=cli_layers
source "$(dirname "$0")/cli_script.sh"

mkdir brown && cp "$BROWN/ca01" "$BROWN/ca02" brown/
bp corpus-brown --out brown.txt brown >/dev/null
bp tokenizer train --vocab-size 300 --out tok brown.txt >/dev/null
bp tokenize --tokenizer tok --out data --val-fraction 0.3 brown.txt >/dev/null 2>&1
model="--d 16 --layers 4 --heads 2 --senses 2 --context 16 --batch 4 --steps 30 --lr 3e-3 --warmup 2 --threads 1 --eval-every 0 --eval-batches 1000"
bp train --data data --tokenizer tok --out m $model >/dev/null 2>&1 || fail "train"

# --- eval and generate under a plan ---------------------------------------------------
plain=$(bp eval --model m --data data.val.tok --threads 1)
ident=$(bp eval --model m --data data.val.tok --threads 1 --layers 0,1,2,3)
same "${plain%% (*}" "${ident%% (*}" "eval with the identity plan"
echo "$ident" | grep -q ', layers 0,1,2,3)$' || fail "eval names its plan: $ident"
for plan in 0,2,1,3 0,3 '0,(1+2)*3,3'; do
    other=$(bp eval --model m --data data.val.tok --threads 1 --layers "$plan")
    differ "${plain%% (*}" "${other%% (*}" "eval under $plan"
done
g_plain=$(bp generate --model m --prompt 'The jury' --temperature 0 --max-tokens 8)
same "$g_plain" "$(bp generate --model m --prompt 'The jury' --temperature 0 --max-tokens 8 --layers '(0),1*1,2,3')" \
    "greedy generation with an identity plan"
bp generate --model m --prompt 'The jury' --temperature 0 --max-tokens 8 --layers '3,2,1,0' >/dev/null

# --- errors: one line, pointing at the character ---------------------------------------
expect_exact_error 2 "backpack: --layers: '0,1,,2': empty step at character 5" \
    bp eval --model m --data data.val.tok --layers 0,1,,2
expect_exact_error 2 "backpack: --layers: '0,4': block 4 is not below the model's 4 blocks at character 3" \
    bp generate --model m --prompt x --layers 0,4
expect_exact_error 2 "backpack: --layers: '0,(1+2': expected ')' at character 7 (the end)" \
    bp eval --model m --data data.val.tok --layers '0,(1+2'
expect_exact_error 2 "backpack: layers: --data FILE.tok is required" bp layers --model m

# --- the sweep ---------------------------------------------------------------------------
bp layers --model m --data data.val.tok --json --seeds 3 --threads 1 > sweep.jsonl
# baseline, 4 skips, 2 middle skips, repeat, reverse, 3 random + summary, parallel, 4 loops, similarity
same "$(wc -l < sweep.jsonl)" 19 "rows of the sweep"
grep -q '^{"kind": "baseline", "param": 0, "name": "baseline", "plan": "0,1,2,3", .*"delta_loss": 0.000000,' sweep.jsonl ||
    fail "baseline row: $(head -1 sweep.jsonl)"
base_loss=$(head -1 sweep.jsonl | sed 's/.*"loss": \([0-9.]*\),.*/\1/')
same "$(printf '%.4f' "$base_loss")" "$(echo "$plain" | sed 's/^loss \([0-9.]*\) .*/\1/')" "the sweep's baseline vs eval"
grep -q '"plan": "0,2,1,3"' sweep.jsonl || fail "no reverse row"
grep -q '"plan": "0,(1+2)\*4,3"' sweep.jsonl || fail "no looped r=4 row"
grep -q '^{"kind": "similarity", "positions": [0-9]*, "matrix": \[\[1.0000, ' sweep.jsonl || fail "similarity: $(tail -1 sweep.jsonl)"
table=$(bp layers --model m --data data.val.tok --seeds 2 --threads 1 --plot sweep.png)
[ "$(head -c 8 sweep.png | od -An -tx1 | tr -d ' ')" = 89504e470d0a1a0a ] || fail "--plot did not write a PNG"
echo "$table" | grep -q '^wrote sweep.png$' || fail "--plot: $table"
expect_exact_error 2 "backpack: --plot: x.gif: unknown picture format (the name must end in .png, .svg or .pdf)" \
    bp layers --model m --data data.val.tok --plot x.gif
echo "$table" | grep -q '^reverse middle  *0,2,1,3 ' || fail "table: $table"

# --- no last residual: in config.json, and the reloaded model is the trained one --------
bp train --data data --tokenizer tok --out n $model --no-last-residual >/dev/null 2>&1 || fail "train --no-last-residual"
grep -q '"no_last_residual": true' n/config.json || fail "config.json lacks no_last_residual"
val_loss=$(grep val_loss n/metrics.jsonl | tail -1 | sed 's/.*"val_loss": \([^,]*\),.*/\1/')
n_eval=$(bp eval --model n --data data.val.tok --threads 1 | sed 's/^loss \([0-9.]*\) .*/\1/')
same "$n_eval" "$(printf '%.4f' "$val_loss")" "eval of the no-last-residual model vs its trainer"
sed -i 's/"no_last_residual": true/"no_last_residual": false/' n/config.json
differ "$n_eval" "$(bp eval --model n --data data.val.tok --threads 1 | sed 's/^loss \([0-9.]*\) .*/\1/')" \
    "the flag changes the loaded model"
sed -i 's/"no_last_residual": false/"no_last_residual": 3/' n/config.json
expect_exact_error 1 "backpack: n/config.json: key 'no_last_residual' is not true or false" \
    bp eval --model n --data data.val.tok
echo "cli_layers: ok"
