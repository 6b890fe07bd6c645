#!/usr/bin/env bash
# Restores a pgBackRest backup into an EMPTY data directory: a new member set or a new stack,
# never over live data (a PGDATA that holds anything is refused).
#   pg-backrest-restore.sh                       newest backup, replayed to the end of the archive
#   pg-backrest-restore.sh --to '2026-12-01 14:05:00+08'
#                                                point in time: only transactions committed up to it
#   pg-backrest-restore.sh --set 20261201-020000F
#                                                that backup, consistent as of its end
# The restored server promotes itself once the target is reached (recovery.signal, restore_command
# from pgBackRest); start it with the member's usual entrypoint / Patroni.
# Environment: PGDATA (target, empty or absent), PGBACKREST_STANZA, PGBACKREST_CONFIG,
#   RESTORE_ARCHIVE_MODE (preserve | off: the restored server does not archive), PGBACKREST_REPO
set -euo pipefail
# help.sh is scripts/lib/help.sh, shipped beside this script in the scripts ConfigMap.
# shellcheck source=scripts/lib/help.sh
source "$(dirname "${BASH_SOURCE[0]}")/help.sh"
help_if_asked "$@"
log() { echo "pg-backrest-restore [$(date -u +%FT%TZ)] $*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}
: "${PGDATA:?PGDATA must name the (empty) data directory to restore into}"
: "${PGBACKREST_STANZA:?PGBACKREST_STANZA must name the stanza}"
export PGBACKREST_STANZA

to="" set=""
while [ $# -gt 0 ]; do
  case "$1" in
    --to)
      to="${2:?--to needs a timestamp with time zone, e.g. '2026-12-01 14:05:00+08'}"
      shift 2
      ;;
    --set)
      set="${2:?--set needs a backup label}"
      shift 2
      ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[ -z "$to" ] || [ -z "$set" ] || die "--to and --set exclude each other"
if [ -n "$to" ] && ! [[ "$to" =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}[\ T][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?\ ?(Z|[+-][0-9]{2}(:?[0-9]{2})?)$ ]]; then
  die "--to '$to' is not a timestamp with an explicit time zone (e.g. '2026-12-01 14:05:00+08')"
fi

if [ -e "$PGDATA" ] && [ -n "$(ls -A "$PGDATA")" ]; then
  die "$PGDATA is not empty: restores go into a new, empty data directory only (never over live data)"
fi
mkdir -p "$PGDATA"
chmod 700 "$PGDATA"

# Stanza and config on the command line: pgBackRest copies them into the restore_command it
# writes, which the restored server runs without this environment.
args=("--stanza=$PGBACKREST_STANZA")
[ -z "${PGBACKREST_CONFIG:-}" ] || args+=("--config=$PGBACKREST_CONFIG")
args+=(restore "--pg1-path=$PGDATA" "--archive-mode=${RESTORE_ARCHIVE_MODE:-preserve}")
if [ -n "$to" ]; then
  # pgBackRest picks the newest backup that ended before the target.
  args+=(--type=time "--target=$to" --target-action=promote)
  log "restoring to the point in time $to"
elif [ -n "$set" ]; then
  args+=("--set=$set" --type=immediate --target-action=promote)
  log "restoring backup $set (consistent at its end)"
else
  log "restoring the newest backup and all archived WAL after it"
fi
started=$SECONDS
pgbackrest "${args[@]}"
log "restored into $PGDATA in $((SECONDS - started)) s; start the server to replay WAL and promote"
