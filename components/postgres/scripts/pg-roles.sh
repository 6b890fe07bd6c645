#!/usr/bin/env bash
# Roles, application database and pg_stat_statements of the stock-analysis cluster. Patroni runs it
#   as post_bootstrap:  pg-roles.sh <connection-url>       once, after initdb on the first leader
#   as callback:        pg-roles.sh <action> <role> <scope> on start, restart and role change; it
#                       acts only when the member is the leader (role master/primary), so a
#                       rotated password in the Secret takes effect on the next leader start.
# Passwords are read from files (the Secret's volume), never from arguments or the environment.
# Env: PG_SOCKET_DIR (/var/run/postgresql), PGPORT (5432),
#      PG_SUPERUSER_PASSWORD_FILE, PG_REPLICATION_PASSWORD_FILE, PG_APP_PASSWORD_FILE,
#      PG_MONITORING_PASSWORD_FILE (optional), PG_APP_DB, PG_APP_USER, PG_REPLICATION_USER,
#      PG_MONITORING_USER, PG_EXTRA_SQL_FILE (optional: more idempotent SQL run in PG_APP_DB)
set -euo pipefail

case "$#" in
  1) ;; # post_bootstrap: the leader was just initialised
  3)
    case "$2" in
      master | primary) ;;
      *) exit 0 ;;
    esac
    ;;
  *)
    echo "usage: $0 <connection-url> | <action> <role> <scope>" >&2
    exit 2
    ;;
esac

: "${PG_SUPERUSER_PASSWORD_FILE:?}" "${PG_REPLICATION_PASSWORD_FILE:?}" "${PG_APP_PASSWORD_FILE:?}"
PG_SOCKET_DIR="${PG_SOCKET_DIR:-/var/run/postgresql}"
PGPORT="${PGPORT:-5432}"

# A callback fires while PostgreSQL may still be starting: wait for it, bounded.
for _ in $(seq 1 60); do
  pg_isready -q -h "$PG_SOCKET_DIR" -p "$PGPORT" && break
  sleep 1
done

# Patroni fires the new leader's on_role_change while the promotion may still be under way: wait
# until PostgreSQL accepts writes (bounded), or the ALTER ROLEs fail in a read-only transaction.
if [ "$#" -eq 3 ]; then
  for _ in $(seq 1 60); do
    in_recovery=$(psql -X -Atq -h "$PG_SOCKET_DIR" -p "$PGPORT" -U postgres -d postgres \
      -c 'SELECT pg_is_in_recovery()' 2>/dev/null || true)
    [ "$in_recovery" = f ] && break
    sleep 1
  done
fi

# synchronous_commit=local: must not hang while no synchronous standby is connected yet.
psql -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKET_DIR" -p "$PGPORT" -U postgres -d postgres \
  -v su_file="$PG_SUPERUSER_PASSWORD_FILE" -v repl_file="$PG_REPLICATION_PASSWORD_FILE" \
  -v app_file="$PG_APP_PASSWORD_FILE" -v mon_file="${PG_MONITORING_PASSWORD_FILE:-}" \
  -v repl_user="${PG_REPLICATION_USER:-replicator}" -v app_user="${PG_APP_USER:-stock_analysis}" \
  -v app_db="${PG_APP_DB:-stock_analysis}" -v mon_user="${PG_MONITORING_USER:-monitoring}" \
  -v extra_file="${PG_EXTRA_SQL_FILE:-}" >/dev/null <<'SQL'
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
SELECT :'extra_file' <> '' AS have_extra \gset
\if :have_extra
\i :extra_file
\endif
SQL
echo "pg-roles: roles and database ${PG_APP_DB:-stock_analysis} in place" >&2
