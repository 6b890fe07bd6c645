#!/usr/bin/env bash
# Nightly backup (CronJob postgresql-backup). Parallel directory-format pg_dump of BACKUP_DATABASE
# plus pg_dumpall --globals-only, row counts taken in the very snapshot the dump used (the restore
# checks against them), SHA-256 manifest, written to a temp dir, fsynced and renamed into place;
# then prunes (pg-backup-prune.sh). Any failure exits non-zero, so the Job shows Failed.
#   BACKUP_JOBS (2)                 parallel dump / compression workers
#   BACKUP_COMPRESSION (zstd)       zstd: pg_dump uncompressed, then zstd per table file, in parallel
#                                   gzip: pg_dump's own per-file gzip (PostgreSQL 15 has no zstd)
#   BACKUP_COMPRESSION_LEVEL        default 3 for zstd, 6 for gzip
# shellcheck source-path=SCRIPTDIR source=pg-backup-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/pg-backup-lib.sh"

BACKUP_JOBS="${BACKUP_JOBS:-2}"
BACKUP_COMPRESSION="${BACKUP_COMPRESSION:-zstd}"
case "$BACKUP_COMPRESSION" in
  zstd) level="${BACKUP_COMPRESSION_LEVEL:-3}" ;;
  gzip) level="${BACKUP_COMPRESSION_LEVEL:-6}" ;;
  *) die "BACKUP_COMPRESSION must be zstd or gzip, not $BACKUP_COMPRESSION" ;;
esac

started="$SECONDS"
name="backup-$(date -u +%Y%m%dT%H%M%SZ)"
[ -e "$BACKUP_DIR/$name" ] && die "$BACKUP_DIR/$name already exists"
tmp="$BACKUP_DIR/.partial-$name"
mkdir -p "$tmp"
CLEANUP_PATHS+=("$tmp")
log "backing up database $BACKUP_DATABASE from ${PGHOST:-local}:${PGPORT:-5432} into $name"

# Hold a snapshot open for the whole dump: pg_dump uses it, and the row counts come from it too.
coproc SNAP { psql -X -q -At -v ON_ERROR_STOP=1 -d "$BACKUP_DATABASE"; }
# shellcheck disable=SC2153 # SNAP_PID is set by coproc
snap_pid="$SNAP_PID"
snap_in="${SNAP[1]}"
echo "begin isolation level repeatable read read only; select pg_export_snapshot();" >&"${SNAP[1]}"
read -r -t 60 snapshot <&"${SNAP[0]}" || die "could not export a snapshot"

# Row counts in the dump's snapshot, taken while pg_dump runs.
psql_ -d "$BACKUP_DATABASE" -F $'\t' >"$tmp/rowcounts.tsv" <<SQL &
begin isolation level repeatable read read only;
set transaction snapshot '$snapshot';
select format('select %L, %L, count(*) from %I.%I', n.nspname, c.relname, n.nspname, c.relname)
  from pg_class c join pg_namespace n on n.oid = c.relnamespace
 where c.relkind = 'r' and c.relpersistence <> 't'
   and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_toast'
 order by 1 \gexec
commit;
SQL
counts_pid=$!
if [ "$BACKUP_COMPRESSION" = zstd ]; then dump_level=0; else dump_level="$level"; fi
pg_dump -d "$BACKUP_DATABASE" --format=directory --jobs="$BACKUP_JOBS" --compress="$dump_level" \
  --snapshot="$snapshot" --file="$tmp/db" || die "pg_dump failed"

wait "$counts_pid" || die "row counts failed"
owner="$(psql_ -d "$BACKUP_DATABASE" -c "select pg_get_userbyid(datdba) from pg_database where datname = current_database()")"
version="$(psql_ -d "$BACKUP_DATABASE" -c "show server_version_num")"
echo "commit;" >&"${SNAP[1]}"
exec {snap_in}>&-
wait "$snap_pid" || die "snapshot session failed"

pg_dumpall --globals-only --file="$tmp/globals.sql" || die "pg_dumpall --globals-only failed"

if [ "$BACKUP_COMPRESSION" = zstd ]; then
  find "$tmp/db" -type f -name '*.dat' ! -name toc.dat -print0 |
    xargs -0 -r -P "$BACKUP_JOBS" -n 4 zstd -q --rm -T"$BACKUP_JOBS" "-$level" || die "zstd failed"
fi

cat >"$tmp/backup.meta" <<META
name=$name
created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
database=$BACKUP_DATABASE
owner=$owner
server_version_num=$version
compression=$BACKUP_COMPRESSION
format=directory
META
(cd "$tmp" && find . -type f ! -name 'MANIFEST.sha256*' -printf '%P\0' | xargs -0 -P "$BACKUP_JOBS" -n 32 sha256sum) >"$tmp/MANIFEST.sha256.part" ||
  die "checksumming failed"
mv "$tmp/MANIFEST.sha256.part" "$tmp/MANIFEST.sha256"
sync -f "$tmp/MANIFEST.sha256"
mv -T "$tmp" "$BACKUP_DIR/$name"
sync -f "$BACKUP_DIR"
log "backup $name complete: $(du -sb "$BACKUP_DIR/$name" | cut -f1) bytes in $((SECONDS - started))s"

"$(dirname "${BASH_SOURCE[0]}")/pg-backup-prune.sh" || die "pruning failed"
