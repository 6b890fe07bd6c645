#!/usr/bin/env bash
# Pre-migration backup: the init container of the API's migration Job runs it (PostgreSQL image,
# so pg_dump matches the server) before the migration command may touch the schema. One pg_dump
# of DATABASE_URL in custom format (schema + data; pg_restore reads it) is written to a .partial
# file, fsynced, checked with pg_restore --list and renamed into place; then only the newest
# MIGRATE_BACKUP_KEEP dumps are kept. Any failure exits non-zero: the Job fails before the
# migration runs, the Pulumi update stops, and the old API version keeps serving.
#   DATABASE_URL          libpq URL of the app database (from the PostgreSQL Secret)
#   MIGRATE_BACKUP_DIR    where dumps go (/backups, the Job's own PVC)
#   MIGRATE_BACKUP_KEEP   dumps to keep, newest first (5)
#   MIGRATE_TAG           names the dump: pre-migrate-<UTC time>-<tag>.dump (the Job's hash)
# Restore (docs/RUNBOOK.md, "Rolling back an upgrade"):
#   pg_restore --clean --if-exists --single-transaction --no-owner -d "$DATABASE_URL" <dump>
set -euo pipefail
# help.sh is scripts/lib/help.sh, shipped beside this script in the Job's scripts ConfigMap.
# shellcheck source=scripts/lib/help.sh
. "$(dirname "${BASH_SOURCE[0]}")/help.sh"
help_if_asked "$@"

log() { printf '%s pre-migrate-backup: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

: "${DATABASE_URL:?DATABASE_URL must be set (the app database)}"
dir="${MIGRATE_BACKUP_DIR:-/backups}"
keep="${MIGRATE_BACKUP_KEEP:-5}"
tag="${MIGRATE_TAG:-manual}"
[[ "$keep" =~ ^[1-9][0-9]*$ ]] || die "MIGRATE_BACKUP_KEEP must be a positive integer, not $keep"
[[ "$tag" =~ ^[A-Za-z0-9._-]+$ ]] || die "MIGRATE_TAG may hold only letters, digits, '.', '_', '-'"
if [ ! -d "$dir" ] || [ ! -w "$dir" ]; then die "$dir is not a writable directory"; fi

name="pre-migrate-$(date -u +%Y%m%dT%H%M%SZ)-$tag.dump"
partial="$dir/.partial-$name"
trap 'rm -f "$partial"' EXIT

log "dumping the app database into $dir/$name"
pg_dump --format=custom --no-password --dbname="$DATABASE_URL" --file="$partial" ||
  die "pg_dump failed: no migration runs without a fresh backup"
# A dump pg_restore cannot list is no backup.
tables="$(pg_restore --list "$partial" | grep -c ' TABLE DATA ' || true)"
sync "$partial"
mv "$partial" "$dir/$name"
sync "$dir"
log "wrote $name ($(stat -c %s "$dir/$name") bytes, $tables tables with data)"

# Keep the newest $keep dumps (names sort by time).
mapfile -t old < <(find "$dir" -maxdepth 1 -name 'pre-migrate-*.dump' -printf '%f\n' | sort -r | tail -n +"$((keep + 1))")
for f in "${old[@]}"; do
  rm -f "$dir/$f"
  log "pruned $f"
done
