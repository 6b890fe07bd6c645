#!/usr/bin/env bash
# Liveness check of a PostgreSQL member (livenessProbe of statefulset/postgresql).
# Fails only when a postmaster is running but does not answer at all. No postmaster (the role
# entrypoint is cloning, rewinding or restarting it) and "rejecting connections" (startup, crash
# recovery) are states the entrypoint manages itself: restarting the pod there would only
# interrupt a clone or a recovery.
# Env: PGDATA, PG_SOCKET_DIR, PGPORT (default 5432), PG_LIVENESS_TIMEOUT seconds (default 5).
set -uo pipefail

: "${PGDATA:?}" "${PG_SOCKET_DIR:?}"
pidfile="$PGDATA/postmaster.pid"
[ -s "$pidfile" ] || exit 0
pid=$(head -n 1 "$pidfile")
# A stale pid file, or a postmaster that died and awaits reaping (zombie), is not a hang.
state=$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
case "$state" in "" | Z | X) exit 0 ;; esac
# A stale pid file after a crash may name a PID reused by another process: the postmaster is
# the one whose working directory is this data directory.
[ "$(readlink -f "/proc/$pid/cwd" 2>/dev/null)" = "$(readlink -f "$PGDATA")" ] || exit 0

pg_isready -q -h "$PG_SOCKET_DIR" -p "${PGPORT:-5432}" -t "${PG_LIVENESS_TIMEOUT:-5}"
rc=$?
if [ "$rc" -eq 2 ]; then
  echo "postmaster $pid does not respond" >&2
  exit 1
fi
exit 0
