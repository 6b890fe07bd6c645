#!/usr/bin/env bash
# pgBackRest operations on a PostgreSQL member (run where PGDATA is: the backup CronJob execs it in
# the member's container; tests run it beside a local server). Object-store keys come only from
# the environment (PGBACKREST_REPO<n>_S3_KEY / _KEY_SECRET, from a Secret).
#   pg-backrest.sh init               stanza-create (when missing) and check: archiving works end to end
#   pg-backrest.sh backup full|diff|incr
#                                     init, the backup, then expire (below)
#   pg-backrest.sh expire             keep every full backup of the last BACKUP_RETENTION_DAYS days
#                                     plus the newest older one (the base of the window's first
#                                     restore point), never fewer than BACKUP_MIN_FULL fulls, in
#                                     every repository; WAL older than the oldest kept full goes too
#   pg-backrest.sh keep-count REPO    print the number of fulls expire keeps in repository REPO
# Environment: PGBACKREST_STANZA (required), PGBACKREST_CONFIG (default /etc/pgbackrest/pgbackrest.conf),
#   BACKUP_RETENTION_DAYS (7), BACKUP_MIN_FULL (2), BACKUP_NOW (epoch seconds; default now, for tests)
set -euo pipefail
# help.sh is scripts/lib/help.sh, shipped beside this script in the scripts ConfigMap.
# shellcheck source=scripts/lib/help.sh
source "$(dirname "${BASH_SOURCE[0]}")/help.sh"
help_if_asked "$@"

log() { echo "pg-backrest [$(date -u +%FT%TZ)] $*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

: "${PGBACKREST_STANZA:?PGBACKREST_STANZA must name the stanza}"
export PGBACKREST_STANZA
RETENTION_DAYS="${BACKUP_RETENTION_DAYS:-7}"
MIN_FULL="${BACKUP_MIN_FULL:-2}"
[[ "$RETENTION_DAYS" =~ ^[1-9][0-9]*$ ]] || die "BACKUP_RETENTION_DAYS must be a whole number >= 1"
[[ "$MIN_FULL" =~ ^[1-9][0-9]*$ ]] || die "BACKUP_MIN_FULL must be a whole number >= 1"

# Repository numbers configured (repo1-type=..., repo2-type=...).
repos() {
  local conf="${PGBACKREST_CONFIG:-/etc/pgbackrest/pgbackrest.conf}"
  sed -n 's/^repo\([0-9]\)-type=.*/\1/p' "$conf" | sort -u
}

init() {
  # stanza-create only when the repository has no stanza yet: it takes every lock of the stanza
  # and so fails while an asynchronous archive-push runs (often, under load). A stanza of another
  # cluster (system id mismatch) makes `check` fail below.
  local code
  code="$(pgbackrest info --output=json | jq -r '.[0].status.code')"
  if [ "$code" = 1 ]; then
    pgbackrest stanza-create
  fi
  # Forces a WAL switch and waits until that segment is in every repository.
  pgbackrest check
  log "stanza $PGBACKREST_STANZA ready; WAL archiving checked"
}

# Full backups to keep in repository $1 (see the header).
keep_count() {
  local repo=$1 now="${BACKUP_NOW:-$(date +%s)}"
  pgbackrest info --output=json --repo="$repo" | jq -r \
    --argjson now "$now" --argjson days "$RETENTION_DAYS" --argjson min "$MIN_FULL" '
      [.[0].backup[]? | select(.type == "full") | .timestamp.stop] as $f
      | ($f | map(select(. >= $now - $days * 86400)) | length) as $recent
      | [$min, $recent + (if ($f | length) > $recent then 1 else 0 end)] | max'
}

expire() {
  local repo keep
  for repo in $(repos); do
    keep="$(keep_count "$repo")"
    [[ "$keep" =~ ^[0-9]+$ ]] || die "cannot read backups of repo$repo"
    log "repo$repo: keeping $keep full backups (${RETENTION_DAYS} days, at least ${MIN_FULL})"
    pgbackrest expire --repo="$repo" "--repo$repo-retention-full=$keep"
  done
}

backup() {
  local type=$1 started=$SECONDS
  case "$type" in full | diff | incr) ;; *) die "backup type must be full, diff or incr" ;; esac
  init
  # Expire runs below with the computed count, not pgBackRest's static one.
  pgbackrest backup --type="$type" --no-expire-auto
  log "$type backup done in $((SECONDS - started)) s"
  expire
}

case "${1:-}" in
  init) init ;;
  backup) backup "${2:-}" ;;
  expire) expire ;;
  keep-count) keep_count "${2:?repository number}" ;;
  *) die "usage: pg-backrest.sh init | backup full|diff|incr | expire | keep-count REPO" ;;
esac
