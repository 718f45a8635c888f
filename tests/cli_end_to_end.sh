#!/usr/bin/env bash
# The binary as a user runs it, on a tiny model and corpus (seconds): one large text
# file from tokenizer training to train, eval and generate, with real values checked
# (eval's loss is the trainer's validation loss, seeded sampling repeats exactly, edits
# change and undo restores the numbers), and the input checks of every command (each
# error one line "backpack: ..." ending with a newline, the user's files kept).
# Usage: BACKPACK=build/backpack tests/cli_end_to_end.sh   (needs make data)
set -euo pipefail
NAME=cli_end_to_end
source "$(dirname "$0")/cli_script.sh"

# --- one large text file, no preparation: tokenizer, tokenize, train ----------------
mkdir brown && cp "$BROWN/ca01" "$BROWN/ca02" "$BROWN/cb01" brown/
bp corpus-brown --out brown.txt brown >/dev/null
grep -v '<|endoftext|>' brown.txt > my.txt
bp tokenizer train --vocab-size 300 --out tok my.txt >/dev/null
bp tokenize --tokenizer tok --out data my.txt >/dev/null 2>note.txt
grep -q '^backpack: tokenize: 1 document is too few for --val-fraction 0.1: data.val.tok holds the last [0-9]* ids instead (.*, cut at a line end)$' note.txt ||
    fail "tokenize did not say it held out the tail: $(cat note.txt)"
model="--d 16 --layers 1 --heads 2 --senses 2 --context 16"
# every validation window in the trainer's evaluation (4 x 1000 windows > the file's)
bp train --data data --tokenizer tok --out m $model --batch 4 --steps 20 --eval-every 0 \
    --eval-batches 1000 --lr 3e-3 --warmup 2 --threads 1 2>train.txt ||
    fail "train on one text file: $(cat train.txt)"
val_loss=$(grep val_loss m/metrics.jsonl | tail -1 | sed 's/.*"val_loss": \([^,]*\),.*/\1/')
[ -n "$val_loss" ] || fail "no val_loss in metrics.jsonl"

# --- eval: the trainer's validation loss; --text equals the same ids as a token file -
eval_out=$(bp eval --model m --data data.val.tok --threads 1)
eval_loss=$(echo "$eval_out" | sed 's/^loss \([0-9.]*\) .*/\1/')
same "$eval_loss" "$(printf '%.4f' "$val_loss")" "eval loss vs the trainer's val_loss"
head -c 3000 my.txt | head -n -1 | tr -d '\n' > piece.txt
printf '<|endoftext|>' >> piece.txt
bp tokenize --tokenizer tok --out piece --val-fraction 0 piece.txt >/dev/null
text_out=$(bp eval --model m --text piece.txt --threads 1)
data_out=$(bp eval --model m --data piece.train.tok --threads 1)
same "$text_out" "$data_out" "eval --text vs eval --data of the same ids"
echo "$text_out" | grep -q '^loss [0-9.]*  perplexity [0-9.]*  ([0-9]* tokens predicted' || fail "eval output: $text_out"

# --- edits: export, edit a sense of the prompt's token, eval and generate change ----
bp export --model m --db s.db >/dev/null
the=$(printf ' the' | bp tokenizer encode --tokenizer tok)
case "$the" in *' '*) fail "' the' is several tokens: $the";; esac
bp edit --db s.db "#$the" --sense 0 --scale 5 >/dev/null
base_eval=$(bp eval --model m --data data.val.tok --threads 1)
edit_eval=$(bp eval --model m --data data.val.tok --edits s.db --threads 1)
echo "$edit_eval" | grep -q ', with edits)$' || fail "eval --edits: $edit_eval"
differ "${base_eval%% (*}" "${edit_eval%% (*}" "eval loss with a sense scaled by 5"
base_next=$(bp generate --model m --prompt 'It was the' --next 5 --max-tokens 0)
edit_next=$(bp generate --model m --prompt 'It was the' --next 5 --max-tokens 0 --edits s.db)
[ "$(echo "$base_next" | wc -l)" = 5 ] || fail "--next 5: $base_next"
differ "$base_next" "$edit_next" "next-token probabilities with the edit"
bp edit --db s.db --undo >/dev/null
same "$base_next" "$(bp generate --model m --prompt 'It was the' --next 5 --max-tokens 0 --edits s.db)" \
    "next-token probabilities after undo"
same "${base_eval%% (*}" "$(bp eval --model m --data data.val.tok --edits s.db --threads 1 | sed 's/ (.*//')" \
    "eval loss after undo"

# --- generate: greedy and seeded sampling repeat exactly; seeds differ --------------
g1=$(bp generate --model m --prompt 'The jury' --max-tokens 8 --temperature 0)
g2=$(bp generate --model m --prompt 'The jury' --max-tokens 8 --temperature 0 --seed 99)
same "$g1" "$g2" "greedy generation (temperature 0 ignores the seed)"
case "$g1" in 'The jury'?*) ;; *) fail "generate does not continue the prompt: $g1";; esac
s1=$(bp generate --model m --prompt 'The jury' --max-tokens 8 --temperature 1.5 --top-k 50 --top-p 1 --seed 7)
s2=$(bp generate --model m --prompt 'The jury' --max-tokens 8 --temperature 1.5 --top-k 50 --top-p 1 --seed 7)
s3=$(bp generate --model m --prompt 'The jury' --max-tokens 8 --temperature 1.5 --top-k 50 --top-p 1 --seed 8)
same "$s1" "$s2" "sampling with --seed 7, twice"
differ "$s1" "$s3" "sampling with --seed 7 and --seed 8"
p1=$(bp generate --model m --prompt 'The jury' --max-tokens 8 --temperature 1 --top-p 0.5 --seed 3)
same "$p1" "$(bp generate --model m --prompt 'The jury' --max-tokens 8 --temperature 1 --top-p 0.5 --seed 3)" \
    "top-p sampling with a seed, twice"
# top-k 1 is greedy whatever the temperature and seed
same "$(bp generate --model m --prompt 'The jury' --max-tokens 8 --temperature 2 --top-k 1 --seed 5)" "$g1" \
    "--top-k 1 vs greedy"
bp generate --model m --prompt 'The jury' --max-tokens 5 --edits s.db --temperature 0 >/dev/null

# --- input checks -------------------------------------------------------------------
mkdir notes && echo mine > notes/notes.txt
expect_error 1 "notes is not empty (it holds 'notes.txt'" bp init --out notes --tokenizer tok $model
expect_error 1 "notes is not empty" bp init --out notes --tokenizer tok $model --force
same "$(cat notes/notes.txt)" mine "the user's file after init"
bp init --out fresh --tokenizer tok $model >/dev/null
expect_error 1 "fresh already holds a model (--force replaces it)" bp init --out fresh --tokenizer tok $model
bp init --out fresh --tokenizer tok $model --force --seed 2 >/dev/null
expect_error 2 "eval: --context 17 is longer than the model's 16 positions" \
    bp eval --model m --data data.val.tok --context 17
bp eval --model m --data data.val.tok --context 16 >/dev/null
# a tokenizer with more ids than the model: the same check for eval --text and generate
bp tokenizer train --vocab-size 320 --out tok320 my.txt >/dev/null
cp -r m big && cp tok320/vocab.json tok320/merges.txt big/
expect_error 1 "big: the tokenizer has 320 ids, the model only 300" bp eval --model big --text piece.txt
expect_error 1 "big: the tokenizer has 320 ids, the model only 300" bp generate --model big --prompt hi
# token files of another tokenizer: another size, and the same size (the header's hash)
bp tokenize --tokenizer tok320 --out data320 my.txt >/dev/null 2>&1
expect_error 1 "data320.train.tok: made by a tokenizer of 320 ids, but tok has 300" \
    bp train --data data320 --tokenizer tok --out other $model --steps 1
head -c 20000 brown.txt > other.txt
bp tokenizer train --vocab-size 300 --out tokother other.txt >/dev/null
expect_error 1 "data.train.tok: made by a different tokenizer than tokother" \
    bp train --data data --tokenizer tokother --out other $model --steps 1
[ ! -e other/model.safetensors ] || fail "a refused train wrote a model"
expect_error 1 "data320.val.tok: made by a tokenizer of 320 ids, but m has 300" bp eval --model m --data data320.val.tok
bp tokenize --tokenizer tokother --out dataother other.txt >/dev/null 2>&1
expect_error 1 "dataother.val.tok: made by a different tokenizer than m" bp eval --model m --data dataother.val.tok
# ids as text: a round trip, and a bad id named alone (not the rest of its line)
printf ' The jury said' > said.txt
same "$(bp tokenizer encode --tokenizer tok said.txt | bp tokenizer decode --tokenizer tok -)" ' The jury said' \
    "tokenizer encode | decode"
printf '10 x\n20\n' > ids.txt
expect_error 1 "ids.txt: 'x' is not a token id (0..299)$" bp tokenizer decode --tokenizer tok ids.txt
# usage errors: exit 2, one line
expect_error 2 "train: unknown option '--bogus' (backpack train --help)" bp train --bogus
expect_error 2 "eval: --batch: expected an integer from 1 to 4096, got 'x'" bp eval --model m --batch x
expect_error 2 "generate: --top-p needs a value" bp generate --model m --prompt a --top-p
expect_error 2 "tokenize: --val-fraction: expected a number from 0 to 1, got '2'" \
    bp tokenize --tokenizer tok --out x --val-fraction 2 my.txt
expect_error 2 "senses: WORD is required" bp senses --db s.db
expect_error 1 "sense 9 out of range" bp nearest --db s.db the --sense 9
expect_error 1 "closest" bp edit --db s.db zzqqxxv --sense 0 --scale 2
expect_error 2 "browse: --size wants COLSxROWS" bp browse --db s.db --size 10by3
for cmd in corpus-brown tokenizer tokenize init train eval generate export senses nearest \
           similarity edit edits browse; do
    bp $cmd --help | grep -q '^usage: backpack' || fail "$cmd --help"
done
echo "cli end to end: ok (val loss $val_loss, eval $eval_loss)"
