#!/usr/bin/env bash
# Restores a backup made by pg-backup.sh. Never touches the live database until the restored copy
# is complete and its row counts match those recorded at backup time:
#   RESTORE_MODE=replace (default)  restore into a new database, then swap names in one transaction;
#                                   the previous database is kept as <db>_pre_restore_<time>
#   RESTORE_MODE=scratch            restore into <db>_verify, check, drop it (pg-verify.sh)
#   BACKUP_NAME                     backup-<time> to restore; default: newest intact backup
#   RESTORE_JOBS (2)                parallel pg_restore / decompression workers
#   RESTORE_GLOBALS (0)             1: replay globals.sql (roles) first, for an empty server
#   RESTORE_MAINTENANCE_WORK_MEM    per-session index build memory (256MB; x RESTORE_JOBS in use)
# shellcheck source-path=SCRIPTDIR source=pg-backup-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/pg-backup-lib.sh"

RESTORE_MODE="${RESTORE_MODE:-replace}"
RESTORE_JOBS="${RESTORE_JOBS:-2}"
case "$RESTORE_MODE" in replace | scratch) ;; *) die "RESTORE_MODE must be replace or scratch" ;; esac

started="$SECONDS"
if [ -n "${BACKUP_NAME:-}" ]; then
  name="$BACKUP_NAME"
  [ -d "$BACKUP_DIR/$name" ] || die "no backup $name in $BACKUP_DIR"
  backup_is_good "$name" || die "backup $name failed checksum verification"
else
  name="$(newest_good_backup)" || die "no intact backup in $BACKUP_DIR"
fi
src="$BACKUP_DIR/$name"
target="$(meta "$name" database)"
owner="$(meta "$name" owner)"
log "restoring $name (database $target) in $RESTORE_MODE mode"

if [ "$(meta "$name" compression)" = zstd ]; then
  work="$(mktemp -d "$BACKUP_DIR/.restore-XXXXXX")"
  CLEANUP_PATHS+=("$work")
  cp "$src/db/toc.dat" "$work/"
  # shellcheck disable=SC2016 # expanded by the inner sh
  (cd "$src/db" && find . -type f -name '*.zst' -printf '%P\0') |
    xargs -0 -r -P "$RESTORE_JOBS" -I{} sh -c 'zstd -q -d "$1/$3" -o "$2/${3%.zst}"' _ "$src/db" "$work" {} ||
    die "decompression failed"
  dump="$work"
else
  dump="$src/db"
fi

if [ "$RESTORE_MODE" = scratch ]; then
  newdb="${target}_verify"
else
  newdb="${target}_restore_$(date -u +%Y%m%d%H%M%S)"
fi

if [ "${RESTORE_GLOBALS:-0}" = 1 ]; then
  # Roles that already exist error harmlessly; the rest are created.
  psql -X -q -d postgres -f "$src/globals.sql" >/dev/null 2>&1 || true
fi
psql_ -d postgres -v db="$newdb" -v owner="$owner" <<'SQL' || die "could not create database $newdb"
DROP DATABASE IF EXISTS :"db";
SELECT coalesce((SELECT rolname FROM pg_roles WHERE rolname = :'owner'), current_user) AS owner_role \gset
CREATE DATABASE :"db" OWNER :"owner_role" TEMPLATE template0 ENCODING 'UTF8';
SQL

drop_new() { psql_ -d postgres -c "drop database if exists \"$newdb\"" || true; }

# Bulk load settings for the restore sessions only. Not waiting for the synchronous standby per
# commit is safe: a failed restore is dropped, and the swap below commits synchronously after it.
restore_options="-c maintenance_work_mem=${RESTORE_MAINTENANCE_WORK_MEM:-256MB} -c synchronous_commit=off"
if ! PGOPTIONS="$restore_options" pg_restore --dbname="$newdb" --jobs="$RESTORE_JOBS" --exit-on-error "$dump"; then
  drop_new
  die "pg_restore of $name failed"
fi

# Every table must hold exactly the rows it had in the backup snapshot.
mismatches="$(
  psql_ -d "$newdb" -v counts="$src/rowcounts.tsv" <<'SQL'
create temp table expected (nsp text, rel text, n bigint);
\set copy_cmd '\\copy expected from ' :'counts'
:copy_cmd
select format('select %L || ''.'' || %L || '' has '' || count(*) || '' rows, backup had %s'' from %I.%I having count(*) <> %s',
              nsp, rel, n, nsp, rel, n) from expected \gexec
SQL
)" || {
  drop_new
  die "row count check failed"
}
if [ -n "$mismatches" ]; then
  drop_new
  die "restored data differs from the backup: $mismatches"
fi
tables="$(wc -l <"$src/rowcounts.tsv")"
log "restored into $newdb; $tables tables match the backup's row counts"

if [ "$RESTORE_MODE" = scratch ]; then
  [ "${RESTORE_KEEP_SCRATCH:-0}" = 1 ] || drop_new
  log "verification of $name passed in $((SECONDS - started))s"
  exit 0
fi

PGOPTIONS="$restore_options" vacuumdb --dbname="$newdb" --analyze-only --jobs="$RESTORE_JOBS" --quiet || die "analyze failed"
old="${target}_pre_restore_$(date -u +%Y%m%d%H%M%S)"
for attempt in 1 2 3 4 5 6 7 8 9 10; do
  if psql_ -d postgres -v target="$target" -v newdb="$newdb" -v old="$old" <<'SQL'; then
SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'target') AS have_target \gset
\if :have_target
ALTER DATABASE :"target" WITH ALLOW_CONNECTIONS false;
SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = :'target' \g /dev/null
SELECT pg_sleep(0.5) \g /dev/null
BEGIN;
ALTER DATABASE :"target" RENAME TO :"old";
ALTER DATABASE :"newdb" RENAME TO :"target";
COMMIT;
ALTER DATABASE :"old" WITH ALLOW_CONNECTIONS true;
\else
ALTER DATABASE :"newdb" RENAME TO :"target";
\endif
SQL
    log "database $target now holds backup $name (previous data kept as $old;" \
      "drop it once checked) in $((SECONDS - started))s"
    exit 0
  fi
  log "swap attempt $attempt failed (sessions still connected?); retrying"
  sleep 2
done
psql_ -d postgres -c "alter database \"$target\" with allow_connections true" || true
die "could not swap $newdb into place; the restored copy is left as $newdb"
