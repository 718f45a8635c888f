#!/usr/bin/env bash
# make_corpus.sh - writes the seed corpus tests/fuzz/corpus/<target>/ with $BACKPACK
# (the committed seeds were made by it; rerun it only to change them). Each seed is a
# small valid file of the loader's format, plus a few near misses.
#   BACKPACK=build/backpack tests/fuzz/make_corpus.sh
set -euo pipefail
B=${BACKPACK:?BACKPACK must name the backpack binary}
here=$(cd "$(dirname "$0")" && pwd)
out="$here/corpus"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf "$out"
mkdir -p "$out"/{model_safetensors,model_config,text_tokenizer,text_tokfile,senses_store,tui_keys}

# a tokenizer and two tiny models (Backpack, Transformer) from a few sentences
printf '%s\n' "The bank of the river is green. The bank lends money to the band." \
    "A river runs by the bank; the band plays by the river." '<|endoftext|>' \
    "The café is by the river bank, and the band is in the café." > "$work/text.txt"
"$B" tokenizer train --vocab-size 270 --out "$work/tok" "$work/text.txt" >/dev/null
"$B" init --out "$work/bp" --tokenizer "$work/tok" --d 8 --layers 1 --heads 2 --senses 2 --context 8 >/dev/null
"$B" init --out "$work/tf" --vocab 16 --arch transformer --d 4 --layers 1 --heads 1 --context 4 >/dev/null

# safetensors: the Transformer's weights (small), and near misses of it
st="$out/model_safetensors"
cp "$work/tf/model.safetensors" "$st/transformer.safetensors"
head -c 200 "$work/tf/model.safetensors" > "$st/truncated.safetensors"
printf '\x10\x00\x00\x00\x00\x00\x00\x00{"__metadata__":{}}' > "$st/empty.safetensors"
hdr='{"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[1,1],"data_offsets":[4,6]},"c":{"dtype":"I64","shape":[],"data_offsets":[6,14]}}'
{ printf "\\x$(printf %02x ${#hdr})\\x00\\x00\\x00\\x00\\x00\\x00\\x00"; printf '%s' "$hdr"; printf '\x00\x3c\x00\x7c\x80\x3f\x01\x00\x00\x00\x00\x00\x00\x00'; } \
    > "$st/dtypes.safetensors"

# config.json: both architectures, and one wrong value
cp "$work/bp/config.json" "$out/model_config/backpack.json"
cp "$work/tf/config.json" "$out/model_config/transformer.json"
sed 's/"n_head": 2/"n_head": 3/' "$work/bp/config.json" > "$out/model_config/bad_heads.json"

# tokenizer: vocab.json, the separator line, merges.txt (fuzz_text_tokenizer.c)
{ cat "$work/tok/vocab.json"; printf '\n#merges.txt\n'; cat "$work/tok/merges.txt"; } > "$out/text_tokenizer/trained"
{ printf '{"a": 0, "b": 1, "ab": 2, "\\u0120": 3}'; printf '\n#merges.txt\n'; printf '#version: 0.2\na b\n'; } \
    > "$out/text_tokenizer/tiny"

# token files: 2-byte ids with the tokenizer's hash, and 4-byte ids
"$B" tokenize --tokenizer "$work/tok" --out "$work/t" "$work/text.txt" >/dev/null 2>&1
cp "$work/t.train.tok" "$out/text_tokfile/uint16.tok"
{ printf 'BKPK\x01\x00\x00\x00\x00\x00\x01\x00\x04\x00\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00'
  head -c 40 /dev/zero; printf '\x05\x00\x00\x00\xff\xff\x00\x00'; } > "$out/text_tokfile/uint32.tok"

# sense database: a tiny Backpack's export (no tokenizer: 24 ids), repacked into small
# pages so that the seed is small
"$B" init --out "$work/bp24" --vocab 24 --d 4 --layers 1 --heads 1 --senses 2 --context 4 >/dev/null
"$B" export --model "$work/bp24" --db "$work/s.db" >/dev/null 2>&1
sqlite3 "$work/s.db" 'PRAGMA journal_mode=DELETE; PRAGMA page_size=512; VACUUM;' >/dev/null
cp "$work/s.db" "$out/senses_store/export.db"
# and SQL run on the fixture's database (fuzz_senses_store.c): hostile contents
sql() { printf 'SQL\n%s\n' "$2" > "$out/senses_store/sql_$1"; }
sql vocab_huge "UPDATE meta SET value='1000000000' WHERE key='vocab_size';"
sql embd_negative "UPDATE meta SET value='-1' WHERE key='n_embd';"
sql senses_zero "UPDATE meta SET value='0' WHERE key='num_senses';"
sql top_n_text "UPDATE meta SET value='nan' WHERE key='top_n';"
sql vector_short "UPDATE senses SET vector=x'00' WHERE id=0;"
sql top_ids_range "UPDATE senses SET top_ids=x'ffffff7f000000000000000000000000' WHERE id<8;"
sql wte_short "UPDATE wte SET vector=zeroblob(3) WHERE id=2;"
sql token_missing "DELETE FROM tokens WHERE id=5; DELETE FROM senses WHERE token=7;"
sql token_bytes "UPDATE tokens SET bytes=x'', text=char(27)||'[2J', token=x'ff' WHERE id=3;"
sql edits_bogus "INSERT INTO edits VALUES(1,0,'scale',0,99,'x',0); INSERT INTO edit_changes VALUES(1,0,99,1,1,x'00',x'00'); INSERT INTO edited_senses VALUES(-4,0,1.0,x'0000');"
sql files_bad "UPDATE files SET data=x'7b22' WHERE name='vocab.json'; UPDATE files SET data=x'0a0a' WHERE name='merges.txt';"
sql senses_dup "UPDATE senses SET sense=0, token=0;"

# key scripts: what docs/browser.md shows, and each screen
k="$out/tui_keys"
printf '%s' '/bank<Enter>' > "$k/search"
printf '%s' '/river<Enter><Enter><Down><Enter><Tab><Esc>' > "$k/sense"
printf '%s' '?<PgDn><Esc>q' > "$k/help"
printf '%s' 'p<C-u>The bank<Enter><Down><Enter>' > "$k/prompt"
printf '%s' '/bank<Enter><Enter>e<Down>0.5<Enter>y<Esc>u' > "$k/edit"
printf '%s' '<Resize:20x5>/band<Enter><Resize:100x30>n<lt><Left><Right><Home><End><BS><Del><S-Tab>' > "$k/resize"
# a longer tour, so that libFuzzer (whose inputs grow to the longest seed) writes long scripts
printf '%s' '/the<Enter><Enter><Down><Down><Enter><Tab><Tab><Esc><Esc>/river<Enter>n<Up><PgDn><PgUp><Home><End><Enter>e<Down><Down>2<Enter>y<Esc>u<Esc>p<C-u>The river bank is<Enter><Down><Enter><Esc>?<Down><Esc><Resize:40x12>/caf<Enter><Resize:80x24>q' > "$k/tour"
ls -l "$out"/*
