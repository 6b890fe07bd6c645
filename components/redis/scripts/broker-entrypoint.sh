#!/usr/bin/env bash
# Starts one Celery broker Redis server (standalone, or one of a Sentinel-managed set).
# With sentinels it asks them for the current primary and starts as its replica, or as the primary
# when that is itself; when no sentinel answers (first start), BROKER_INITIAL_PRIMARY is the primary.
# Env: BROKER_CONF, REDIS_DATA_DIR, REDIS_RUNTIME_DIR, REDIS_PORT, REDIS_BIND, REDIS_BIND_SOURCE_ADDR,
#      REDIS_PASSWORD_FILE; with Sentinel also BROKER_SENTINELS ("host:port ..."), BROKER_MASTER_NAME,
#      BROKER_ANNOUNCE_HOSTNAME (this pod's stable DNS name), BROKER_INITIAL_PRIMARY ("host:port").
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "${BASH_SOURCE[0]%/*}/lib.sh"

BROKER_CONF="${BROKER_CONF:-/etc/redis/broker.conf}"
REDIS_DATA_DIR="${REDIS_DATA_DIR:-/data}"
REDIS_RUNTIME_DIR="${REDIS_RUNTIME_DIR:-/run/redis}"
REDIS_PORT="${REDIS_PORT:-6379}"
REDIS_BIND="${REDIS_BIND:-* -::*}"
REDIS_PASSWORD_FILE="${REDIS_PASSWORD_FILE:-/etc/redis-auth/password}"
BROKER_SENTINELS="${BROKER_SENTINELS:-}"

password="$(read_password "$REDIS_PASSWORD_FILE")"
replicaof=""
if [ -n "$BROKER_SENTINELS" ]; then
  : "${BROKER_MASTER_NAME:?}" "${BROKER_ANNOUNCE_HOSTNAME:?}" "${BROKER_INITIAL_PRIMARY:?}"
  self="$BROKER_ANNOUNCE_HOSTNAME:$REDIS_PORT"
  if primary="$(SENTINEL_AUTH="$password" sentinel_master "$BROKER_SENTINELS" "$BROKER_MASTER_NAME")"; then
    primary="${primary/ /:}"
    log "sentinels report primary $primary"
  else
    primary="$BROKER_INITIAL_PRIMARY"
    log "no sentinel answered; initial primary is $primary"
  fi
  if [ "$primary" != "$self" ]; then replicaof="${primary%:*} ${primary##*:}"; fi
fi

mkdir -p "$REDIS_RUNTIME_DIR" "$REDIS_DATA_DIR"
include="$REDIS_RUNTIME_DIR/runtime.conf"
(
  umask 077
  cat >"$include" <<CONF
port $REDIS_PORT
bind $REDIS_BIND
dir $REDIS_DATA_DIR
requirepass $password
masterauth $password
CONF
  if [ -n "${REDIS_BIND_SOURCE_ADDR:-}" ]; then echo "bind-source-addr $REDIS_BIND_SOURCE_ADDR" >>"$include"; fi
  if [ -n "$BROKER_SENTINELS" ]; then echo "replica-announce-ip $BROKER_ANNOUNCE_HOSTNAME" >>"$include"; fi
  if [ -n "$replicaof" ]; then echo "replicaof $replicaof" >>"$include"; fi
)
log "starting broker${replicaof:+ as replica of $replicaof}"
exec redis-server "$BROKER_CONF" --include "$include"
