#!/usr/bin/env bash
# check_cli_doc.sh - docs/cli.md is what tests/gen_cli_doc.sh makes from the binary's
# --help and docs/cli.md.in; otherwise one line names the first section that drifted
# and the command that regenerates the page.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
export BACKPACK=${BACKPACK:-$here/build/backpack}
[ -x "$BACKPACK" ] || { echo "check_cli_doc: $BACKPACK: no such program" >&2; exit 77; }
want=$(mktemp)
trap 'rm -f "$want"' EXIT
"$here/tests/gen_cli_doc.sh" "$want" || exit 1
cmp -s "$want" "$here/docs/cli.md" && exit 0
# the heading above the first line that differs, in the page as it should be
line=$(diff "$here/docs/cli.md" "$want" | sed -n '1s/^[0-9,]*[acd]\([0-9]*\).*/\1/p')
section=$(head -n "${line:-1}" "$want" | sed -n 's/^##* \(.*\)/\1/p' | tail -1)
echo "check_cli_doc: docs/cli.md is out of date at '${section:-the top}' (its --help or docs/cli.md.in changed): run make cli-doc" >&2
exit 1
