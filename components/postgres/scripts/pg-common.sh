#!/usr/bin/env bash
# Shared by pg-entrypoint.sh and pg-failover.sh (sourced, not run).
# Environment (same names in the pod and in tests):
#   PGDATA                         data directory (created 0700 by initdb / pg_basebackup)
#   PG_CONFIG_FILE                 postgresql.conf rendered by content.ts
#   PG_PEERS                       "host:port host:port ..." indexed by ordinal, all members incl. self
#   PG_ORDINAL                     this member's ordinal (default: suffix of $HOSTNAME, postgresql-2 -> 2)
#   PG_PRIMARY_FILE                file holding the configured primary ordinal (ConfigMap mount)
#   PG_STATE_DIR                   writable dir for .pgpass and the emergency override (default: dirname PGDATA)
#   PG_SOCKET_DIR                  unix socket directory (default /var/run/postgresql)
#   PG_SUPERUSER_PASSWORD_FILE, PG_REPLICATION_PASSWORD_FILE, PG_APP_PASSWORD_FILE, PG_MONITORING_PASSWORD_FILE
#   PG_APP_DB, PG_APP_USER, PG_REPLICATION_USER, PG_MONITORING_USER, PG_MEMBER_PREFIX
set -euo pipefail

: "${PGDATA:?PGDATA is required}"
: "${PG_CONFIG_FILE:?PG_CONFIG_FILE is required}"
: "${PG_PEERS:?PG_PEERS is required}"
: "${PG_PRIMARY_FILE:?PG_PRIMARY_FILE is required}"
PG_STATE_DIR="${PG_STATE_DIR:-$(dirname "$PGDATA")}"
PG_SOCKET_DIR="${PG_SOCKET_DIR:-/var/run/postgresql}"
PG_APP_DB="${PG_APP_DB:-stock_analysis}"
PG_APP_USER="${PG_APP_USER:-stock_analysis}"
PG_REPLICATION_USER="${PG_REPLICATION_USER:-replicator}"
PG_MONITORING_USER="${PG_MONITORING_USER:-monitoring}"
PG_MEMBER_PREFIX="${PG_MEMBER_PREFIX:-postgresql}"
if [ -z "${PG_ORDINAL:-}" ]; then
  PG_ORDINAL="${HOSTNAME##*-}"
fi
read -r -a PEERS <<<"$PG_PEERS"
ME="$PG_ORDINAL"
if ! [[ "$ME" =~ ^[0-9]+$ ]] || [ "$ME" -ge "${#PEERS[@]}" ]; then
  echo "ordinal '$ME' is not one of the ${#PEERS[@]} members in PG_PEERS" >&2
  exit 2
fi
OVERRIDE_FILE="$PG_STATE_DIR/primary.override"
export PGPASSFILE="$PG_STATE_DIR/.pgpass"
export PGCONNECT_TIMEOUT=3

log() { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) [pg member ${ME}] $*" >&2; }

peer_host() { local p="${PEERS[$1]}"; echo "${p%:*}"; }
peer_port() { local p="${PEERS[$1]}"; echo "${p##*:}"; }
member_name() { echo "${PG_MEMBER_PREFIX//[^a-z0-9_]/_}_$1"; }
MY_PORT="$(peer_port "$ME")"

# .pgpass for the superuser (pg_rewind, peer probes) and the replication role (walreceiver).
write_pgpass() {
  esc() { sed -e 's/\\/\\\\/g' -e 's/:/\\:/g' "$1"; }
  umask 077
  {
    printf '*:*:*:postgres:%s\n' "$(esc "$PG_SUPERUSER_PASSWORD_FILE")"
    printf '*:*:*:%s:%s\n' "$PG_REPLICATION_USER" "$(esc "$PG_REPLICATION_PASSWORD_FILE")"
  } >"$PGPASSFILE.tmp"
  mv "$PGPASSFILE.tmp" "$PGPASSFILE"
  umask 022
}

# The configured primary, unless an emergency failover (pg-failover.sh) pinned another one that
# the configuration has not caught up with yet.
desired_primary() {
  local configured override
  configured="$(tr -dc '0-9' <"$PG_PRIMARY_FILE")"
  if [ -f "$OVERRIDE_FILE" ]; then
    override="$(tr -dc '0-9' <"$OVERRIDE_FILE")"
    if [ "$override" = "$configured" ]; then
      rm -f "$OVERRIDE_FILE"
    elif [ -n "$override" ]; then
      echo "$override"
      return
    fi
  fi
  echo "$configured"
}

local_sql() {
  psql -X -q -At -v ON_ERROR_STOP=1 -h "$PG_SOCKET_DIR" -p "$MY_PORT" -U postgres -d "${2:-postgres}" -c "$1"
}

remote_sql() {
  psql -X -q -At -v ON_ERROR_STOP=1 -h "$(peer_host "$1")" -p "$(peer_port "$1")" -U postgres -d postgres -c "$2"
}

# primary | standby | down
peer_state() {
  local r
  r="$(remote_sql "$1" "select pg_is_in_recovery()" 2>/dev/null)" || { echo down; return; }
  case "$r" in
    f) echo primary ;;
    t) echo standby ;;
    *) echo down ;;
  esac
}

# Ordinal of a running primary other than me, or nothing.
other_primary() {
  local i
  for i in "${!PEERS[@]}"; do
    [ "$i" = "$ME" ] && continue
    if [ "$(peer_state "$i")" = primary ]; then
      echo "$i"
      return
    fi
  done
}

conninfo_for() {
  echo "host=$(peer_host "$1") port=$(peer_port "$1") user=$PG_REPLICATION_USER passfile=$PGPASSFILE application_name=$(member_name "$ME") connect_timeout=3 keepalives_idle=10 keepalives_interval=5 keepalives_count=3"
}
