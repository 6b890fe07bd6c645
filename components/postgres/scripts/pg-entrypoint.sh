#!/usr/bin/env bash
# Role entrypoint of every PostgreSQL member (container command of statefulset/postgresql).
# Decides primary vs replica from this member's ordinal and the configured primary ordinal
# (PG_PRIMARY_FILE, a ConfigMap key, so changing postgres.primary needs no pod restart), then keeps
# reconciling every PG_LOOP_INTERVAL seconds:
#   configured primary, running as standby  -> catch up from the most advanced peer, pg_promote
#   not configured primary, running primary -> clean shutdown, pg_rewind onto the new primary, rejoin
#   replica                                 -> stream from the primary via its own physical slot;
#                                              rewind (or re-clone) when it cannot stream for a while
# First start: the configured primary runs initdb and creates roles, database and pg_stat_statements;
# replicas clone with pg_basebackup. See pg-common.sh for the environment.
# shellcheck source-path=SCRIPTDIR source=pg-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/pg-common.sh"

PG_LOOP_INTERVAL="${PG_LOOP_INTERVAL:-2}"
PG_REJOIN_AFTER="${PG_REJOIN_AFTER:-120}"
REJOINS=0
PG_CATCHUP_TIMEOUT="${PG_CATCHUP_TIMEOUT:-30}"
PG_PID=""
UPSTREAM=""
LAST_SLOT_CHECK=0

pause() {
  sleep "${1:-$PG_LOOP_INTERVAL}" &
  wait $! || true
}

has_data() { [ -s "$PGDATA/PG_VERSION" ]; }
is_standby_data() { [ -f "$PGDATA/standby.signal" ]; }

pg_start() {
  mkdir -p "$PG_SOCKET_DIR"
  postgres -D "$PGDATA" -c config_file="$PG_CONFIG_FILE" &
  PG_PID=$!
  # Crash recovery or catching up after a rewind can take a while; give up only if postgres exits.
  until pg_isready -q -h "$PG_SOCKET_DIR" -p "$MY_PORT"; do
    if ! kill -0 "$PG_PID" 2>/dev/null; then
      wait "$PG_PID" 2>/dev/null || true
      PG_PID=""
      log "postgres exited during startup"
      return 1
    fi
    sleep 0.5
  done
  log "postgres running (pid $PG_PID, $(is_standby_data && echo standby || echo primary))"
}

# A replica that cannot start (e.g. a rewind left it on a history the primary does not have) holds
# nothing the primary lacks: clone it afresh. A primary that cannot start is left for a human.
start_member() {
  pg_start && return 0
  local p
  p="$(other_primary)"
  if is_standby_data && [ -n "$p" ]; then
    log "replica failed to start; re-cloning from primary member $p"
    clone_from "$p"
    pg_start && return 0
  fi
  exit 1
}

pg_stop() {
  [ -n "$PG_PID" ] || return 0
  pg_ctl stop -D "$PGDATA" -m fast -w -t 120 >/dev/null || kill -KILL "$PG_PID" 2>/dev/null || true
  wait "$PG_PID" 2>/dev/null || true
  PG_PID=""
}

on_term() {
  log "termination requested: fast shutdown"
  pg_stop
  exit 0
}
trap on_term TERM INT

# Replica recovery settings while postgres is stopped.
set_upstream_offline() {
  local auto="$PGDATA/postgresql.auto.conf"
  touch "$auto"
  sed -i -e '/^primary_conninfo/d' -e '/^primary_slot_name/d' "$auto"
  {
    echo "primary_conninfo = '$(conninfo_for "$1")'"
    echo "primary_slot_name = '$(member_name "$ME")'"
  } >>"$auto"
  touch "$PGDATA/standby.signal"
  UPSTREAM="$1"
}

# Repoint a running replica; PostgreSQL 13+ applies primary_conninfo on reload.
set_upstream_online() {
  local slot="${2-$(member_name "$ME")}"
  local_sql "alter system set primary_conninfo = '$(conninfo_for "$1")'" >/dev/null
  local_sql "alter system set primary_slot_name = '$slot'" >/dev/null
  local_sql "select pg_reload_conf()" >/dev/null
  UPSTREAM="$1"
  LAST_STREAM="$SECONDS"
}

# One physical slot per other member so a replica never loses WAL it still needs (bounded by
# max_slot_wal_keep_size); a slot invalidated by that cap is recreated and its replica re-clones.
ensure_slots() {
  local i name
  for i in "${!PEERS[@]}"; do
    name="$(member_name "$i")"
    if [ "$i" = "$ME" ]; then
      local_sql "select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = '$name' and not active" >/dev/null
      continue
    fi
    local_sql "select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = '$name' and wal_status = 'lost' and not active" >/dev/null
    local_sql "select pg_create_physical_replication_slot('$name', true) where not exists (select 1 from pg_replication_slots where slot_name = '$name')" >/dev/null
  done
}

drop_stale_slots() {
  local_sql "select pg_drop_replication_slot(slot_name) from pg_replication_slots where not active" >/dev/null || true
}

# Roles, database and extension; passwords re-applied from the Secret files on every primary start
# so rotating a Secret takes effect. synchronous_commit=local: must not hang when no standby is up.
ensure_roles() {
  psql -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKET_DIR" -p "$MY_PORT" -U postgres -d postgres \
    -v su_file="$PG_SUPERUSER_PASSWORD_FILE" -v repl_file="$PG_REPLICATION_PASSWORD_FILE" \
    -v app_file="$PG_APP_PASSWORD_FILE" -v mon_file="${PG_MONITORING_PASSWORD_FILE:-}" \
    -v repl_user="$PG_REPLICATION_USER" -v app_user="$PG_APP_USER" -v app_db="$PG_APP_DB" \
    -v mon_user="$PG_MONITORING_USER" >/dev/null <<'SQL'
SET synchronous_commit = local;
SET log_statement = 'none';
SET log_min_duration_statement = -1;
\set su_cmd 'cat ' :su_file
\set repl_cmd 'cat ' :repl_file
\set app_cmd 'cat ' :app_file
\setenv SU_CMD :su_cmd
\set su_pw `$SU_CMD`
\setenv REPL_CMD :repl_cmd
\set repl_pw `$REPL_CMD`
\setenv APP_CMD :app_cmd
\set app_pw `$APP_CMD`
ALTER ROLE postgres PASSWORD :'su_pw';
SELECT format('CREATE ROLE %I LOGIN REPLICATION', :'repl_user')
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'repl_user') \gexec
ALTER ROLE :"repl_user" PASSWORD :'repl_pw';
SELECT format('CREATE ROLE %I LOGIN', :'app_user')
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'app_user') \gexec
ALTER ROLE :"app_user" PASSWORD :'app_pw';
SELECT format('CREATE DATABASE %I OWNER %I', :'app_db', :'app_user')
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'app_db') \gexec
SELECT :'mon_file' <> '' AS have_mon \gset
\if :have_mon
\set mon_cmd 'cat ' :mon_file
\setenv MON_CMD :mon_cmd
\set mon_pw `$MON_CMD`
SELECT format('CREATE ROLE %I LOGIN', :'mon_user')
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'mon_user') \gexec
ALTER ROLE :"mon_user" PASSWORD :'mon_pw';
GRANT pg_monitor TO :"mon_user";
\endif
\c :"app_db"
SET synchronous_commit = local;
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
SQL
}

init_primary() {
  log "initialising a new cluster"
  initdb -D "$PGDATA" -U postgres --pwfile="$PG_SUPERUSER_PASSWORD_FILE" --auth-local=peer \
    --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 --data-checksums >/dev/null
}

clone_from() {
  local slot
  slot="$(member_name "$ME")"
  log "cloning from member $1 with pg_basebackup (slot $slot)"
  until {
    rm -rf "$PGDATA"
    pg_basebackup -h "$(peer_host "$1")" -p "$(peer_port "$1")" -U "$PG_REPLICATION_USER" \
      -D "$PGDATA" -X stream -S "$slot" -c fast
  }; do
    log "pg_basebackup failed (slot not created yet?); retrying"
    pause 3
  done
  set_upstream_offline "$1"
}

system_id_local() { pg_controldata "$PGDATA" | sed -n 's/^Database system identifier: *//p'; }

rewind_from() {
  local src
  src="host=$(peer_host "$1") port=$(peer_port "$1") user=postgres dbname=postgres"
  log "rewinding onto member $1"
  remote_sql "$1" "checkpoint" >/dev/null || true
  if ! pg_rewind -D "$PGDATA" --source-server="$src" --config-file="$PG_CONFIG_FILE"; then
    local theirs
    theirs="$(remote_sql "$1" "select system_identifier from pg_control_system()")"
    if [ "$theirs" != "$(system_id_local)" ]; then
      log "member $1 belongs to a different cluster (system id $theirs); refusing to overwrite local data"
      exit 1
    fi
    log "pg_rewind failed; re-cloning from member $1"
    clone_from "$1"
    return
  fi
  set_upstream_offline "$1"
}

lsn_of_local() { local_sql "select coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())"; }

# Before promoting, fetch WAL that another replica received but this one did not: with
# ANY 1 synchronous replication an acknowledged commit may be on only one of the replicas.
catch_up_from_peers() {
  local i lsn best="" best_lsn mine
  best_lsn="$(lsn_of_local)"
  mine="$best_lsn"
  for i in "${!PEERS[@]}"; do
    [ "$i" = "$ME" ] && continue
    lsn="$(remote_sql "$i" "select coalesce(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()) from (select pg_is_in_recovery() r) s where r" 2>/dev/null)" || continue
    [ -n "$lsn" ] || continue
    if [ "$(local_sql "select '$lsn'::pg_lsn > '$best_lsn'::pg_lsn")" = t ]; then
      best="$i"
      best_lsn="$lsn"
    fi
  done
  [ -n "$best" ] || return 0
  log "member $best has WAL up to $best_lsn, mine ends at $mine: catching up from it first"
  set_upstream_online "$best" ""
  local deadline=$((SECONDS + PG_CATCHUP_TIMEOUT))
  while [ "$(local_sql "select coalesce(pg_last_wal_receive_lsn(), '0/0') >= '$best_lsn'::pg_lsn")" != t ]; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "catch-up from member $best timed out; promoting with WAL up to $(lsn_of_local)"
      return 0
    fi
    sleep 0.2
  done
}

promote() {
  catch_up_from_peers
  log "promoting to primary"
  local_sql "select pg_promote(true, 120)" >/dev/null
  # Promotion does not wait for a checkpoint, and until one completes pg_control still names the
  # old timeline: pg_rewind against this server would then wrongly find nothing to rewind.
  local_sql "checkpoint" >/dev/null
  local_sql "alter system reset primary_conninfo" >/dev/null
  local_sql "alter system reset primary_slot_name" >/dev/null
  local_sql "select pg_reload_conf()" >/dev/null
  UPSTREAM=""
  ensure_slots
  ensure_roles
  log "promoted"
}

# Old primary: stop cleanly (walsenders hand the remaining WAL to the standbys), wait for the new
# primary to be writable, then rewind onto it and come back as its replica.
step_down() {
  log "member $1 is the configured primary now: stepping down"
  pg_stop
  local d p
  while true; do
    d="$(desired_primary)"
    p="$(other_primary)"
    if [ -n "$p" ]; then
      rewind_from "$p"
      start_member
      drop_stale_slots
      LAST_STREAM="$SECONDS"
      return
    fi
    if [ "$d" = "$ME" ]; then
      log "configured primary is me again and nobody else took over: restarting as primary"
      start_member
      return
    fi
    pause
  done
}

bootstrap() {
  local d p
  while true; do
    d="$(desired_primary)"
    p="$(other_primary)"
    if ! has_data; then
      if [ -n "$p" ]; then
        clone_from "$p"
        break
      fi
      if [ "$d" = "$ME" ]; then
        local i reachable=""
        for i in "${!PEERS[@]}"; do
          [ "$i" != "$ME" ] && [ "$(peer_state "$i")" != down ] && reachable="$i"
        done
        if [ -n "$reachable" ]; then
          log "my data directory is empty but member $reachable has data: refusing to initdb;" \
            "set postgres.primary to a member with data"
          pause 10
          continue
        fi
        init_primary
        break
      fi
      log "no data yet; waiting for primary member $d"
      pause
      continue
    fi
    if is_standby_data; then
      local target="${p:-$d}"
      [ "$target" != "$ME" ] && set_upstream_offline "$target"
      break
    fi
    if [ -n "$p" ]; then
      # Someone was promoted while this former primary was down (emergency failover).
      [ "$d" = "$ME" ] && echo "$p" >"$OVERRIDE_FILE"
      rewind_from "$p"
      break
    fi
    if [ "$d" = "$ME" ]; then
      break
    fi
    log "was primary, configured primary is member $d: waiting for it to be promoted"
    pause
  done
  start_member
  if is_standby_data; then
    drop_stale_slots
  else
    ensure_slots
    ensure_roles
  fi
}

reconcile() {
  local d p in_recovery status
  d="$(desired_primary)"
  in_recovery="$(local_sql "select pg_is_in_recovery()" 2>/dev/null)" || return 0
  if [ "$in_recovery" = f ]; then
    if [ "$d" != "$ME" ]; then
      # Hand over only to a live replica: stepping down towards a member that is down is an outage.
      if [ "$(peer_state "$d")" = standby ]; then
        step_down "$d"
      else
        log "configured primary is member $d but it is not a running replica; staying primary"
      fi
    elif [ $((SECONDS - LAST_SLOT_CHECK)) -ge 30 ]; then
      ensure_slots
      LAST_SLOT_CHECK="$SECONDS"
    fi
    return 0
  fi
  p="$(other_primary)"
  if [ "$d" = "$ME" ]; then
    if [ -n "$p" ]; then
      log "configured primary, but member $p is still primary: waiting for it to step down"
      return 0
    fi
    promote
    return 0
  fi
  local target="${p:-$d}"
  if [ "$UPSTREAM" != "$target" ]; then
    log "following member $target"
    set_upstream_online "$target"
  fi
  status="$(local_sql "select status from pg_stat_wal_receiver")"
  if [ "$status" = streaming ]; then
    LAST_STREAM="$SECONDS"
    REJOINS=0
  elif [ -n "$p" ] && [ $((SECONDS - LAST_STREAM)) -ge "$PG_REJOIN_AFTER" ]; then
    pg_stop
    if [ "$REJOINS" -eq 0 ]; then
      log "not streaming from primary $p for ${PG_REJOIN_AFTER}s: rejoining with pg_rewind"
      rewind_from "$p"
    else
      # Rewinding did not help (e.g. the WAL it needs is gone: slot invalidated by
      # max_slot_wal_keep_size): start over from a fresh copy.
      log "still not streaming from primary $p after a rewind: re-cloning"
      clone_from "$p"
    fi
    REJOINS=$((REJOINS + 1))
    start_member
    LAST_STREAM="$SECONDS"
  fi
}

write_pgpass
bootstrap
LAST_STREAM="$SECONDS"
while true; do
  pause
  if ! kill -0 "$PG_PID" 2>/dev/null; then
    log "postgres exited unexpectedly"
    exit 1
  fi
  reconcile
done
