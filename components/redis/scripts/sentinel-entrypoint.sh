#!/usr/bin/env bash
# Starts one Sentinel for the Celery broker. Sentinel rewrites its config file, so the mounted
# template is copied to a writable file; the primary it monitors is the one the other sentinels
# report (a restarted sentinel must not go back to a demoted primary), else BROKER_INITIAL_PRIMARY.
# Env: SENTINEL_TEMPLATE, SENTINEL_RUNTIME_DIR, SENTINEL_PORT, SENTINEL_BIND, REDIS_BIND_SOURCE_ADDR,
#      SENTINEL_ANNOUNCE_HOSTNAME (pod DNS name), REDIS_PASSWORD_FILE, BROKER_MASTER_NAME,
#      BROKER_SENTINELS ("host:port ..." of all sentinels), BROKER_INITIAL_PRIMARY ("host:port").
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "${BASH_SOURCE[0]%/*}/lib.sh"

SENTINEL_TEMPLATE="${SENTINEL_TEMPLATE:-/etc/redis/sentinel.conf}"
SENTINEL_RUNTIME_DIR="${SENTINEL_RUNTIME_DIR:-/run/sentinel}"
SENTINEL_PORT="${SENTINEL_PORT:-26379}"
SENTINEL_BIND="${SENTINEL_BIND:-* -::*}"
REDIS_PASSWORD_FILE="${REDIS_PASSWORD_FILE:-/etc/redis-auth/password}"
: "${SENTINEL_ANNOUNCE_HOSTNAME:?}" "${BROKER_MASTER_NAME:?}" "${BROKER_SENTINELS:?}" "${BROKER_INITIAL_PRIMARY:?}"

password="$(read_password "$REDIS_PASSWORD_FILE")"
others=""
for s in $BROKER_SENTINELS; do
  [ "$s" = "$SENTINEL_ANNOUNCE_HOSTNAME:$SENTINEL_PORT" ] || others="$others $s"
done
if primary="$(SENTINEL_AUTH="$password" sentinel_master "$others" "$BROKER_MASTER_NAME")"; then
  log "other sentinels report primary $primary"
else
  primary="${BROKER_INITIAL_PRIMARY/:/ }"
  log "no other sentinel answered; monitoring initial primary $primary"
fi
read -r host port <<<"$primary"

mkdir -p "$SENTINEL_RUNTIME_DIR"
conf="$SENTINEL_RUNTIME_DIR/sentinel.conf"
(
  umask 077
  sed -e "s/@PRIMARY_HOST@/$host/" -e "s/@PRIMARY_PORT@/$port/" "$SENTINEL_TEMPLATE" >"$conf"
  cat >>"$conf" <<CONF
port $SENTINEL_PORT
bind $SENTINEL_BIND
sentinel announce-ip $SENTINEL_ANNOUNCE_HOSTNAME
requirepass $password
sentinel sentinel-pass $password
sentinel auth-pass $BROKER_MASTER_NAME $password
CONF
  if [ -n "${REDIS_BIND_SOURCE_ADDR:-}" ]; then echo "bind-source-addr $REDIS_BIND_SOURCE_ADDR" >>"$conf"; fi
)
exec redis-sentinel "$conf"
