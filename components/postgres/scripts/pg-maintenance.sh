#!/usr/bin/env bash
# Weekly maintenance (CronJob postgresql-maintenance): VACUUM ANALYZE of every database.
#   PGHOST, PGPORT, PGUSER, PG_PASSWORD_FILE as for the backup scripts; MAINTENANCE_JOBS (2)
set -euo pipefail
export PGUSER="${PGUSER:-postgres}"
if [ -n "${PG_PASSWORD_FILE:-}" ]; then
  PGPASSFILE="$(mktemp)"
  trap 'rm -f "$PGPASSFILE"' EXIT
  printf '*:*:*:%s:%s\n' "$PGUSER" "$(sed -e 's/\\/\\\\/g' -e 's/:/\\:/g' "$PG_PASSWORD_FILE")" >"$PGPASSFILE"
  chmod 600 "$PGPASSFILE"
  export PGPASSFILE
fi
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) vacuum analyze of all databases"
vacuumdb --all --analyze --jobs="${MAINTENANCE_JOBS:-2}"
echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) done"
