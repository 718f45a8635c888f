#!/usr/bin/env bash
# check_packages.sh - every package the tree uses is in one of the Makefile's install
# lists (DEB_PACKAGES*), so `make test` and `make demo` pass on a fresh machine. Checks
# the Python modules imported by tests/, bench/ and the README's example, and the
# programs the scripts call. (.ci/run proves the same by removing packages first.)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
lists=$(make -s -C "$here" --no-print-directory -f Makefile -f - print-packages <<'MK'
print-packages: ; @echo $(foreach v,$(filter DEB_PACKAGES%,$(.VARIABLES)),$($(v)))
MK
)
[ -n "$lists" ] || { echo "check_packages: no DEB_PACKAGES lists in the Makefile" >&2; exit 1; }
bad=0
need() {  # need PACKAGE WHY
    case " $lists " in *" $1 "*) ;; *) echo "check_packages: $2 needs $1, which no DEB_PACKAGES list installs" >&2; bad=1;; esac
}
# Python: every module that is not in the standard library is a Debian python3-* package
stdlib=$("$PYTHON" -c 'import sys; print(" ".join(sorted(sys.stdlib_module_names)))')
local_mods=" torch_model reference "
for f in "$here"/tests/*.py "$here"/bench/*.py "$here"/README.md; do
    for m in $(sed -n 's/^[[:space:]]*\(import\|from\)[[:space:]]\+\([A-Za-z_][A-Za-z0-9_]*\).*/\2/p' "$f" | sort -u); do
        case " $stdlib $local_mods " in *" $m "*) continue;; esac
        need "python3-$m" "${f#$here/} (import $m)"
    done
done
# programs the scripts and the Makefile call, and the package that brings each
while read -r prog pkg; do
    if grep -qsw -- "$prog" $(ls "$here"/tests/*.sh "$here"/bench/*.sh "$here"/demo*.sh |
                              grep -v /check_packages.sh); then
        need "$pkg" "a script calling $prog"
    fi
done <<'EOF2'
tmux tmux
sqlite3 sqlite3
mpirun openmpi-bin
EOF2
[ "$bad" -eq 0 ] && echo "check_packages: every package used is in the Makefile's lists"
exit "$bad"
