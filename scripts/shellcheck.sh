#!/usr/bin/env bash
# Runs ShellCheck over every shell script of the repo (tracked or new, never node_modules).
set -euo pipefail
# shellcheck source=scripts/lib/help.sh
. "$(dirname "$0")/lib/help.sh"
help_if_asked "$@"
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files --cached --others --exclude-standard -- '*.sh' 'scripts/*' '.ci/*' |
  while read -r f; do
    [ -f "$f" ] || continue
    case "$f" in *.sh) echo "$f" ;; *) head -1 "$f" | grep -qE '^#!.*(ba)?sh' && echo "$f" ;; esac
  done | sort -u)
[ "${#files[@]}" -eq 0 ] && exit 0
shellcheck -x "${files[@]}"
echo "shellcheck: ${#files[@]} scripts clean"
