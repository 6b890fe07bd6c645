#!/bin/sh
# The migration Job's container `migrate` runs this in the API's image, with migration.command as
# its arguments: it checks that the image has what the command needs, then execs the command.
#   sh /scripts/migrate.sh <migration.command ...>
#   e.g. sh /scripts/migrate.sh psql --single-transaction --file=/migrations/upgrade.sql "$DATABASE_URL"
# The image contract (docs/RUNBOOK.md, "Upgrading"): /bin/sh, the command's program on PATH (psql
# for the default command) and every file given to psql with --file=FILE or -f FILE
# (/migrations/upgrade.sql by default). When one is missing the Job fails at once with one line
# on stderr naming it (exit 127 for the program, 66 for a file) and the database is untouched.
set -eu
# shellcheck source=scripts/lib/help.sh
. "${0%/*}/help.sh"
help_if_asked "$@"

fail() {
  echo "migrate: $1 (the API image must contain it, or set migration.command; docs/RUNBOOK.md, \"Upgrading\")" >&2
  exit "$2"
}
[ "$#" -gt 0 ] || fail "no migration command given" 2
command -v "$1" >/dev/null 2>&1 || fail "'$1' is not on the API image's PATH ($PATH)" 127
# The SQL files psql would read: --file=FILE, -fFILE and -f FILE (other programs: not parsed).
if [ "${1##*/}" = psql ]; then
  next_is_file=false
  for a in "$@"; do
    file=""
    if [ "$next_is_file" = true ]; then
      file="$a"
      next_is_file=false
    else
      case "$a" in
        --file=*) file="${a#--file=}" ;;
        -f) next_is_file=true ;;
        -f?*) file="${a#-f}" ;;
      esac
    fi
    [ -z "$file" ] || [ "$file" = - ] || [ -r "$file" ] ||
      fail "migration file $file is missing or unreadable" 66
  done
fi
exec "$@"
