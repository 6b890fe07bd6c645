#!/usr/bin/env bash
# Restores a backup written by backup.sh into a running cluster and/or broker, online.
# Each RDB is loaded into a throw-away local redis-server; its keys are then copied with MIGRATE
# (values and TTLs kept, existing keys replaced): into the cluster by `redis-cli --cluster import`,
# which routes every key to the master owning its slot, so the target may have another number of
# masters or another slot layout than the backed-up cluster.
# Usage: restore.sh BACKUP [cluster|broker|all]   (default: cluster)
#   BACKUP: a backup directory path, a backup name under BACKUP_DIR, or `latest` (newest there).
#   With S3_ENDPOINT set (see object-store.sh), a name or `latest` is a complete backup in the
#   object store, downloaded into BACKUP_DIR first.
#        restore.sh --list   the backups there (object store or BACKUP_DIR), oldest first
# Env: BACKUP_DIR, REDIS_CLUSTER_ENTRY, REDIS_PASSWORD_FILE, BROKER_ADDR or BROKER_SENTINELS + BROKER_MASTER_NAME,
#      BROKER_PASSWORD_FILE, RESTORE_WORK_DIR (default: a temp dir), RESTORE_TMP_PORT (default 16379).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "${BASH_SOURCE[0]%/*}/lib.sh"

backup="${1:?usage: restore.sh BACKUP [cluster|broker|all]  |  restore.sh --list}"
target="${2:-cluster}"
here="${BASH_SOURCE[0]%/*}"
if [ "$backup" = --list ]; then
  if [ -n "${S3_ENDPOINT:-}" ]; then
    exec bash "$here/object-store.sh" list
  fi
  find "${BACKUP_DIR:?}" -mindepth 1 -maxdepth 1 -type d -name 'redis-*' -printf '%f\n' | sort
  exit 0
fi
case "$target" in cluster | broker | all) ;; *) die "target must be cluster, broker or all" ;; esac
if [ -n "${S3_ENDPOINT:-}" ] && [[ "$backup" != */* ]]; then
  # Object store: download the backup (`latest`: the newest complete one) into BACKUP_DIR first.
  backup="$(bash "$here/object-store.sh" fetch "$backup" "${BACKUP_DIR:?}")" || die "cannot fetch the backup from the object store"
elif [ "$backup" = latest ]; then
  backup="$(find "${BACKUP_DIR:?}" -mindepth 1 -maxdepth 1 -type d -name 'redis-*' | sort | tail -1)"
  [ -n "$backup" ] || die "no backup in $BACKUP_DIR"
elif [[ "$backup" != */* ]]; then
  backup="${BACKUP_DIR:?}/$backup"
fi
log "restoring $target from $backup"
REDIS_PASSWORD_FILE="${REDIS_PASSWORD_FILE:-/etc/redis-auth/password}"
BROKER_PASSWORD_FILE="${BROKER_PASSWORD_FILE:-/etc/redis-broker-auth/password}"
RESTORE_TMP_PORT="${RESTORE_TMP_PORT:-16379}"
[ -d "$backup" ] || die "$backup is not a backup directory"
(cd "$backup" && sha256sum --quiet -c SHA256SUMS) || die "checksums in $backup do not match"

work="$(mktemp -d "${RESTORE_WORK_DIR:-${TMPDIR:-/tmp}}/redis-restore.XXXXXX")"
source_pid=""
cleanup() {
  stop_source
  rm -rf "$work"
}
trap cleanup EXIT

# load_source RDB PASSWORD: serves RDB from a local, unpersisted redis-server on
# 127.0.0.1:RESTORE_TMP_PORT protected by PASSWORD.
load_source() {
  stop_source
  cp "$1" "$work/source.rdb"
  (umask 077 && printf 'requirepass %s\n' "$2" >"$work/source-auth.conf")
  redis-server --bind 127.0.0.1 --port "$RESTORE_TMP_PORT" --dir "$work" --dbfilename source.rdb \
    --appendonly no --save "" --daemonize no --logfile "$work/source.log" --include "$work/source-auth.conf" &
  source_pid=$!
  local tries=0
  until [ "$(REDISCLI_AUTH="$2" rcli 127.0.0.1 "$RESTORE_TMP_PORT" PING 2>/dev/null)" = PONG ]; do
    tries=$((tries + 1))
    [ "$tries" -lt 300 ] || die "temporary server did not load $1: $(tail -3 "$work/source.log")"
    sleep 0.2
  done
}

stop_source() {
  if [ -n "$source_pid" ]; then
    kill "$source_pid" 2>/dev/null || true
    wait "$source_pid" 2>/dev/null || true
    source_pid=""
  fi
}

if [ "$target" != broker ]; then
  : "${REDIS_CLUSTER_ENTRY:?}"
  REDISCLI_AUTH="$(read_password "$REDIS_PASSWORD_FILE")"
  export REDISCLI_AUTH
  entry_ip="$(resolve_ipv4 "${REDIS_CLUSTER_ENTRY%:*}")" || die "cannot resolve ${REDIS_CLUSTER_ENTRY%:*}"
  entry="$entry_ip:${REDIS_CLUSTER_ENTRY##*:}"
  mapfile -t rdbs < <(find "$backup/cluster" -name '*.rdb' | sort)
  [ "${#rdbs[@]}" -ge 1 ] || die "no cluster RDBs in $backup/cluster"
  for rdb in "${rdbs[@]}"; do
    load_source "$rdb" "$REDISCLI_AUTH"
    n="$(rcli 127.0.0.1 "$RESTORE_TMP_PORT" DBSIZE)"
    log "importing $n keys from $(basename "$rdb")"
    if [ "$n" -gt 0 ]; then
      # The source password goes through stdin (--cluster-from-askpass), not argv.
      printf '%s\n' "$REDISCLI_AUTH" |
        redis-cli --no-auth-warning --cluster import "$entry" --cluster-from "127.0.0.1:$RESTORE_TMP_PORT" \
          --cluster-from-askpass --cluster-copy --cluster-replace >"$work/import.log" 2>&1 ||
        die "import of $(basename "$rdb") failed: $(tail -5 "$work/import.log")"
      ! grep -q 'ERR\|Failed' "$work/import.log" || die "import of $(basename "$rdb") reported errors: $(grep -m3 'ERR\|Failed' "$work/import.log")"
    fi
  done
  log "cluster restored from $backup"
fi

if [ "$target" != cluster ]; then
  [ -s "$backup/broker.rdb" ] || die "no broker.rdb in $backup"
  password="$(read_password "$BROKER_PASSWORD_FILE")"
  if [ -n "${BROKER_SENTINELS:-}" ]; then
    primary="$(SENTINEL_AUTH="$password" sentinel_master "$BROKER_SENTINELS" "${BROKER_MASTER_NAME:?}")" ||
      die "no sentinel reports the broker primary"
    primary="${primary/ /:}"
  else
    primary="${BROKER_ADDR:?BROKER_ADDR or BROKER_SENTINELS is required}"
  fi
  broker_ip="$(resolve_ipv4 "${primary%:*}")" || die "cannot resolve ${primary%:*}"
  load_source "$backup/broker.rdb" "$password"
  export REDISCLI_AUTH="$password"
  log "copying $(rcli 127.0.0.1 "$RESTORE_TMP_PORT" DBSIZE) keys into the broker primary $primary"
  # MIGRATE runs on the local server; commands go through stdin so the password is in no argv.
  # Broker keys (Celery/kombu names) are plain tokens; anything else is refused, not mangled.
  rcli 127.0.0.1 "$RESTORE_TMP_PORT" --scan >"$work/keys"
  ! grep -qv '^[[:alnum:]_.:@/+=-]\+$' "$work/keys" || die "broker has keys this script cannot quote safely"
  xargs -r -n 200 <"$work/keys" |
    while read -r keys; do
      printf 'MIGRATE %s %s "" 0 10000 COPY REPLACE AUTH %s KEYS %s\n' "$broker_ip" "${primary##*:}" "$password" "$keys"
    done |
    rcli 127.0.0.1 "$RESTORE_TMP_PORT" >"$work/migrate.log"
  ! grep -qv '^OK$\|^NOKEY$' "$work/migrate.log" || die "MIGRATE into the broker failed: $(grep -v '^OK$' "$work/migrate.log" | head -3)"
  log "broker restored from $backup"
fi
