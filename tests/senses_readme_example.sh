#!/usr/bin/env bash
# Runs the Python example of README.md against a freshly exported
# database of a tiny random model with the GPT-2 vocabulary (make data), so the README
# never shows code that does not run. Usage: BACKPACK=build/backpack tests/senses_readme_example.sh
set -euo pipefail
BACKPACK=${BACKPACK:-build/backpack}
PYTHON=${PYTHON:-/usr/bin/python3}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/bp-readme-senses-XXXXXX)
trap 'rm -rf "$work"' EXIT
"$BACKPACK" init --out "$work/model" --tokenizer "$here/data/gpt2" --vocab 50264 --d 16 --layers 1 \
    --heads 2 --senses 2 --context 16 --seed 7 >/dev/null
"$BACKPACK" export --model "$work/model" --db "$work/senses.db" >/dev/null
# the ```python block of the README section, run where senses.db is
sed -n '/^```python$/,/^```$/p' "$here/README.md" | sed '1d;$d' > "$work/example.py"
(cd "$work" && "$PYTHON" example.py)
# and the sqlite3 examples: the ```sh block after "With the `sqlite3` command"
awk '/^With the `sqlite3` command/ {f = 1} f && /^```sh$/ {g = 1; next} g && /^```$/ {exit} g' \
    "$here/README.md" > "$work/sql.sh"
grep -q '^sqlite3' "$work/sql.sh"
(cd "$work" && bash sql.sh >/dev/null)
echo "senses README example: ok"
