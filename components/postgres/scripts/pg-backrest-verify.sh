#!/usr/bin/env bash
# Verification of the newest pgBackRest backup in its own pod (CronJob postgresql-backup-verify),
# never on a live member: the newest backup must be recent, `pgbackrest verify` must find every
# backup and WAL file in the repository intact, and the backup must restore into a scratch data
# directory, start, promote, pass pg_amcheck (heap and B-tree checks of every database) and show
# the row counts of the main tables. Exits non-zero on any failure (the Job fails and alerts).
# Environment: PGBACKREST_STANZA, PGBACKREST_CONFIG, VERIFY_DIR (scratch, ephemeral volume),
#   VERIFY_DATABASE (stock_analysis), VERIFY_TABLES (space-separated; each must exist),
#   VERIFY_MAX_AGE_HOURS (26), VERIFY_JOBS (2), VERIFY_PORT (5432),
#   VERIFY_METRICS_FILE (optional: Prometheus text format, written on success and failure)
set -euo pipefail
# help.sh is scripts/lib/help.sh, shipped beside this script in the scripts ConfigMap.
# shellcheck source=scripts/lib/help.sh
source "$(dirname "${BASH_SOURCE[0]}")/help.sh"
help_if_asked "$@"
: "${PGBACKREST_STANZA:?PGBACKREST_STANZA must name the stanza}"
: "${VERIFY_DIR:?VERIFY_DIR must name the scratch directory}"
export PGBACKREST_STANZA
DB="${VERIFY_DATABASE:-stock_analysis}"
MAX_AGE_HOURS="${VERIFY_MAX_AGE_HOURS:-26}"
JOBS="${VERIFY_JOBS:-2}"
PORT="${VERIFY_PORT:-5432}"
pgdata="$VERIFY_DIR/pgdata"
run="$VERIFY_DIR/run"
started=$SECONDS
label="" age=-1
declare -A rows=()

log() { echo "pg-backrest-verify [$(date -u +%FT%TZ)] $*" >&2; }
metrics() {
  local ok=$1 t
  [ -n "${VERIFY_METRICS_FILE:-}" ] || return 0
  {
    echo "# HELP pg_backup_verify_success 1 when the newest backup passed every check."
    echo "# TYPE pg_backup_verify_success gauge"
    echo "pg_backup_verify_success{stanza=\"$PGBACKREST_STANZA\"} $ok"
    echo "# TYPE pg_backup_verify_last_run_timestamp_seconds gauge"
    echo "pg_backup_verify_last_run_timestamp_seconds{stanza=\"$PGBACKREST_STANZA\"} $(date +%s)"
    echo "# TYPE pg_backup_verify_duration_seconds gauge"
    echo "pg_backup_verify_duration_seconds{stanza=\"$PGBACKREST_STANZA\"} $((SECONDS - started))"
    echo "# TYPE pg_backup_newest_age_seconds gauge"
    echo "pg_backup_newest_age_seconds{stanza=\"$PGBACKREST_STANZA\"} $age"
    echo "# TYPE pg_backup_verify_table_rows gauge"
    for t in "${!rows[@]}"; do
      echo "pg_backup_verify_table_rows{stanza=\"$PGBACKREST_STANZA\",backup=\"$label\",table=\"$t\"} ${rows[$t]}"
    done
  } >"$VERIFY_METRICS_FILE.tmp"
  mv "$VERIFY_METRICS_FILE.tmp" "$VERIFY_METRICS_FILE"
}
stop_scratch() {
  if [ -f "$pgdata/postmaster.pid" ]; then pg_ctl stop -D "$pgdata" -m immediate -w >/dev/null 2>&1 || true; fi
  [ "${VERIFY_KEEP_SCRATCH:-0}" = 1 ] || rm -rf "$pgdata" "$run"
}
fail() {
  log "FAILED: $*"
  metrics 0
  stop_scratch
  exit 1
}
trap 'fail "unexpected error (line $LINENO)"' ERR

# 1. The newest backup exists and is recent.
info="$(pgbackrest info --output=json)" || fail "pgbackrest info failed: repository unreachable?"
read -r label stop < <(jq -r '[.[0].backup[]?] | sort_by(.timestamp.stop) | last | "\(.label // "") \(.timestamp.stop // 0)"' <<<"$info")
[ -n "$label" ] || fail "no backup in the repository for stanza $PGBACKREST_STANZA"
age=$(($(date +%s) - stop))
[ "$age" -le $((MAX_AGE_HOURS * 3600)) ] ||
  fail "newest backup $label is $((age / 3600)) h old (limit $MAX_AGE_HOURS h): backups are not running"
log "newest backup $label, $((age / 60)) min old"

# 2. Every backup and archived WAL file in the repository matches its recorded checksum.
verify_out="$(pgbackrest verify --output=text 2>&1)" || fail "pgbackrest verify: $verify_out"
if grep -Eiq 'invalid|missing|error' <<<"$verify_out"; then fail "pgbackrest verify: $verify_out"; fi
log "pgbackrest verify: repository intact"

# 3. Restore the newest backup into the scratch directory and bring it up (consistent at the
#    backup's end, promoted, never archiving into the production repository).
[ ! -e "$pgdata" ] || [ -z "$(ls -A "$pgdata")" ] || fail "$pgdata is not empty"
mkdir -p "$run"
pgbackrest restore "--pg1-path=$pgdata" "--set=$label" --type=immediate --target-action=promote \
  --archive-mode=off >/dev/null || fail "restore of $label failed"
printf 'local all all trust\n' >"$VERIFY_DIR/pg_hba.conf"
cat >"$VERIFY_DIR/postgresql.conf" <<CONF
data_directory = '$pgdata'
hba_file = '$VERIFY_DIR/pg_hba.conf'
ident_file = '$VERIFY_DIR/pg_hba.conf'
listen_addresses = ''
port = $PORT
unix_socket_directories = '$run'
archive_mode = off
hot_standby = off
max_connections = 20
shared_buffers = 128MB
max_wal_senders = 0
max_replication_slots = 0
wal_level = replica
CONF
# pg_ctl returns once the postmaster runs; with hot_standby off nobody connects before the
# promotion at the backup's end, so wait for that (bounded by VERIFY_START_TIMEOUT seconds).
pg_ctl start -D "$pgdata" -o "-c config_file=$VERIFY_DIR/postgresql.conf" -l "$VERIFY_DIR/postgres.log" \
  -w -t 60 >/dev/null || fail "restored server did not start: $(tail -n 20 "$VERIFY_DIR/postgres.log")"
export PGHOST="$run" PGPORT="$PORT" PGUSER=postgres
deadline=$((SECONDS + ${VERIFY_START_TIMEOUT:-3600}))
until [ "$(psql -X -Atq -d postgres -c 'select pg_is_in_recovery()' 2>/dev/null)" = f ]; do
  [ -f "$pgdata/postmaster.pid" ] || fail "restored server stopped: $(tail -n 20 "$VERIFY_DIR/postgres.log")"
  [ "$SECONDS" -lt "$deadline" ] || fail "restored server did not promote: $(tail -n 20 "$VERIFY_DIR/postgres.log")"
  sleep 1
done
log "backup $label restored and running in $((SECONDS - started)) s"

# 4. Physical consistency: heap and B-tree checks of every database (amcheck goes into the scratch
#    copy only).
amcheck_out="$(pg_amcheck --all --install-missing --jobs="$JOBS" 2>&1)" || fail "pg_amcheck: $amcheck_out"
log "pg_amcheck: every database clean"

# 5. Row counts of the main tables.
for t in ${VERIFY_TABLES:-}; do
  n="$(psql -X -Atq -v ON_ERROR_STOP=1 -d "$DB" -c "select count(*) from $t" 2>&1)" ||
    fail "table $t in $DB: $n"
  rows[$t]=$n
  log "$DB.$t: $n rows"
done

trap - ERR
metrics 1
stop_scratch
log "verification of $label passed in $((SECONDS - started)) s"
