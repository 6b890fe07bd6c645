#!/usr/bin/env bash
# Backs up the cache cluster (one RDB per master plus the topology) and the Celery broker.
#  - every master: BGSAVE, confirmed by LASTSAVE advancing and rdb_bgsave_in_progress:0 with
#    rdb_last_bgsave_status:ok (never a sleep);
#  - `redis-cli --cluster backup` pulls each master's RDB over the replication protocol and writes
#    nodes.json (slots per master); CLUSTER NODES is kept too; the broker's primary RDB via --rdb;
#  - every RDB passes redis-check-rdb; the set is written to a temp dir and renamed into place;
#  - backups older than RETENTION_DAYS are pruned, never the newest KEEP_MIN;
#  - with S3_ENDPOINT set, the backup is uploaded to the object store and pruned there by the same
#    rule (object-store.sh); a failed upload fails the run.
# Exits non-zero, leaving no partial backup, on any failure.
# Env: REDIS_CLUSTER_ENTRY ("host:port" of any cluster node), REDIS_PASSWORD_FILE,
#      BROKER_ADDR ("host:port") or BROKER_SENTINELS + BROKER_MASTER_NAME (optional: no broker backup),
#      BROKER_PASSWORD_FILE, BACKUP_DIR, RETENTION_DAYS (30), KEEP_MIN (7), SAVE_TIMEOUT_S (300);
#      S3_* and the rclone credentials of object-store.sh (optional).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "${BASH_SOURCE[0]%/*}/lib.sh"

: "${REDIS_CLUSTER_ENTRY:?}" "${BACKUP_DIR:?}"
REDIS_PASSWORD_FILE="${REDIS_PASSWORD_FILE:-/etc/redis-auth/password}"
BROKER_PASSWORD_FILE="${BROKER_PASSWORD_FILE:-/etc/redis-broker-auth/password}"
RETENTION_DAYS="${RETENTION_DAYS:-30}"
KEEP_MIN="${KEEP_MIN:-7}"
SAVE_TIMEOUT_S="${SAVE_TIMEOUT_S:-300}"
[ "$KEEP_MIN" -ge 1 ] || die "KEEP_MIN must be at least 1"

stamp="$(date -u +%Y%m%dT%H%M%SZ)"
final="$BACKUP_DIR/redis-$stamp"
tmp="$BACKUP_DIR/.tmp-redis-$stamp"
mkdir -p "$BACKUP_DIR"
[ ! -e "$final" ] || die "$final already exists"
# Runs never overlap (CronJob concurrencyPolicy: Forbid): leftovers are from killed runs.
find "$BACKUP_DIR" -mindepth 1 -maxdepth 1 -name '.tmp-redis-*' -exec rm -rf {} +
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp"

# bgsave_confirmed HOST PORT: BGSAVE and wait until LASTSAVE moves past its previous value.
bgsave_confirmed() {
  local host="$1" port="$2" before reply info deadline=$((SECONDS + SAVE_TIMEOUT_S))
  before="$(rcli "$host" "$port" LASTSAVE)"
  # LASTSAVE has 1 s resolution: start the save in a later second so a change is unambiguous.
  until [ "$(rcli "$host" "$port" TIME | head -1)" -gt "$before" ]; do sleep 0.2; done
  until reply="$(rcli "$host" "$port" BGSAVE SCHEDULE)" && [[ "$reply" == Background* ]]; do
    # Another save is running (e.g. a `save` rule): ours must start after it.
    [[ "$reply" == *"already in progress"* ]] || die "BGSAVE on $host:$port: $reply"
    [ "$SECONDS" -lt "$deadline" ] || die "BGSAVE on $host:$port never started"
    sleep 0.5
  done
  while :; do
    info="$(rcli "$host" "$port" INFO persistence)"
    if [ "$(rcli "$host" "$port" LASTSAVE)" -gt "$before" ] &&
      [ "$(info_field "$info" rdb_bgsave_in_progress)" = 0 ]; then
      [ "$(info_field "$info" rdb_last_bgsave_status)" = ok ] || die "BGSAVE on $host:$port failed"
      return 0
    fi
    [ "$SECONDS" -lt "$deadline" ] || die "BGSAVE on $host:$port not finished after ${SAVE_TIMEOUT_S}s"
    sleep 0.5
  done
}

# --- cache cluster ---
REDISCLI_AUTH="$(read_password "$REDIS_PASSWORD_FILE")"
export REDISCLI_AUTH
entry_host="${REDIS_CLUSTER_ENTRY%:*}" entry_port="${REDIS_CLUSTER_ENTRY##*:}"
entry_ip="$(resolve_ipv4 "$entry_host")" || die "cannot resolve $entry_host"
[ "$(info_field "$(rcli "$entry_ip" "$entry_port" CLUSTER INFO)" cluster_state)" = ok ] ||
  die "cluster is not in state ok; refusing to back up a degraded cluster"
rcli "$entry_ip" "$entry_port" CLUSTER NODES | tr -d '\r' >"$tmp/cluster-nodes.txt"
# Masters owning slots: "<id> <ip>:<port>@<cport>[,<hostname>] <flags> ... <slots...>".
mapfile -t masters < <(awk '$3 ~ /master/ && $3 !~ /fail/ && NF >= 9 { split($2, a, "@"); print $1, a[1] }' "$tmp/cluster-nodes.txt")
[ "${#masters[@]}" -ge 1 ] || die "no master owns slots"
for m in "${masters[@]}"; do
  addr="${m#* }"
  bgsave_confirmed "${addr%:*}" "${addr##*:}"
  log "BGSAVE confirmed on master ${m%% *} ($addr)"
done
mkdir "$tmp/cluster"
redis-cli --no-auth-warning --cluster backup "$entry_ip:$entry_port" "$tmp/cluster" >"$tmp/cluster-backup.log" 2>&1 ||
  die "redis-cli --cluster backup failed: $(tail -5 "$tmp/cluster-backup.log")"
for m in "${masters[@]}"; do
  rdb="$(find "$tmp/cluster" -name "*-${m%% *}.rdb")"
  [ -s "$rdb" ] || die "no RDB for master ${m%% *}"
  redis-check-rdb "$rdb" >/dev/null || die "$rdb fails redis-check-rdb"
done
[ "$(find "$tmp/cluster" -name '*.rdb' | wc -l)" -eq "${#masters[@]}" ] ||
  die "RDB count differs from the ${#masters[@]} masters (topology changed during backup?)"

# --- Celery broker ---
if [ -n "${BROKER_ADDR:-}${BROKER_SENTINELS:-}" ]; then
  REDISCLI_AUTH="$(read_password "$BROKER_PASSWORD_FILE")"
  if [ -n "${BROKER_SENTINELS:-}" ]; then
    primary="$(SENTINEL_AUTH="$REDISCLI_AUTH" sentinel_master "$BROKER_SENTINELS" "${BROKER_MASTER_NAME:?}")" ||
      die "no sentinel reports the broker primary"
    primary="${primary/ /:}"
  else
    primary="$BROKER_ADDR"
  fi
  broker_ip="$(resolve_ipv4 "${primary%:*}")" || die "cannot resolve ${primary%:*}"
  bgsave_confirmed "$broker_ip" "${primary##*:}"
  rcli "$broker_ip" "${primary##*:}" --rdb "$tmp/broker.rdb" >/dev/null 2>&1 || die "fetching the broker RDB failed"
  redis-check-rdb "$tmp/broker.rdb" >/dev/null || die "broker.rdb fails redis-check-rdb"
  log "broker RDB taken from $primary"
fi

(cd "$tmp" && find . -type f -name '*.rdb' -print0 | sort -z | xargs -0 sha256sum >SHA256SUMS)
sync -f "$tmp/SHA256SUMS" 2>/dev/null || sync
mv "$tmp" "$final"
trap - EXIT
log "backup written: $final"

# Prune: newest first by name (UTC stamps sort chronologically); age by mtime.
mapfile -t backups < <(find "$BACKUP_DIR" -mindepth 1 -maxdepth 1 -type d -name 'redis-*' -printf '%f\n' | sort -r)
for ((i = KEEP_MIN; i < ${#backups[@]}; i++)); do
  old="$BACKUP_DIR/${backups[$i]}"
  if [ -n "$(find "$old" -maxdepth 0 -mmin +$((RETENTION_DAYS * 1440)))" ]; then
    rm -rf "$old"
    log "pruned $old"
  fi
done

if [ -n "${S3_ENDPOINT:-}" ]; then
  bash "${BASH_SOURCE[0]%/*}/object-store.sh" upload "$final"
  bash "${BASH_SOURCE[0]%/*}/object-store.sh" prune
fi
