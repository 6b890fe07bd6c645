#!/usr/bin/env bash
# Starts one Redis Cluster node.
#  1. Writes the runtime include (port, bind, dir, auth, announced hostname) from env and the
#     mounted Secret, so no password is ever in a ConfigMap or on a command line.
#  2. Re-points every peer in nodes.conf at the current address of its announced hostname, so a
#     cluster whose pods all came back with new IPs finds itself again (Redis gossips by IP).
#  3. Execs redis-server with the mounted redis.conf plus the include.
# Env: REDIS_ANNOUNCE_HOSTNAME (required: this pod's stable DNS name), REDIS_CONF, REDIS_DATA_DIR,
#      REDIS_RUNTIME_DIR, REDIS_PORT, REDIS_BIND, REDIS_PASSWORD_FILE, and REDIS_BIND_SOURCE_ADDR
#      for hosts with several addresses (unset in pods: a pod has one IP).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "${BASH_SOURCE[0]%/*}/lib.sh"

REDIS_CONF="${REDIS_CONF:-/etc/redis/redis.conf}"
REDIS_DATA_DIR="${REDIS_DATA_DIR:-/data}"
REDIS_RUNTIME_DIR="${REDIS_RUNTIME_DIR:-/run/redis}"
REDIS_PORT="${REDIS_PORT:-6379}"
REDIS_BIND="${REDIS_BIND:-* -::*}"
REDIS_PASSWORD_FILE="${REDIS_PASSWORD_FILE:-/etc/redis-auth/password}"
: "${REDIS_ANNOUNCE_HOSTNAME:?REDIS_ANNOUNCE_HOSTNAME must be the stable DNS name of this node}"

password="$(read_password "$REDIS_PASSWORD_FILE")"
mkdir -p "$REDIS_RUNTIME_DIR" "$REDIS_DATA_DIR"
include="$REDIS_RUNTIME_DIR/runtime.conf"
(
  umask 077
  cat >"$include" <<CONF
port $REDIS_PORT
bind $REDIS_BIND
dir $REDIS_DATA_DIR
cluster-announce-hostname $REDIS_ANNOUNCE_HOSTNAME
requirepass $password
masterauth $password
CONF
  if [ -n "${REDIS_BIND_SOURCE_ADDR:-}" ]; then echo "bind-source-addr $REDIS_BIND_SOURCE_ADDR" >>"$include"; fi
)

# nodes.conf line: <id> <ip>:<port>@<cport>[,<hostname>[,aux...]] <flags> ...
nodes="$REDIS_DATA_DIR/nodes.conf"
if [ -s "$nodes" ]; then
  tmp="$nodes.rewrite"
  : >"$tmp"
  while IFS= read -r line; do
    read -r id addr rest <<<"$line"
    if [ "$id" != "vars" ] && [[ "$addr" == *,* ]]; then
      endpoint="${addr%%,*}"
      aux="${addr#*,}"
      hostname="${aux%%,*}"
      if [ -n "$hostname" ] && [[ "$hostname" != *=* ]] && ip="$(resolve_ipv4 "$hostname")"; then
        old_ip="${endpoint%:*}"
        if [ "$old_ip" != "$ip" ]; then
          log "nodes.conf: $hostname ($id) moved $old_ip -> $ip"
          line="$id $ip:${endpoint##*:},$aux $rest"
        fi
      fi
    fi
    printf '%s\n' "$line" >>"$tmp"
  done <"$nodes"
  mv "$tmp" "$nodes"
fi

exec redis-server "$REDIS_CONF" --include "$include"
