#!/usr/bin/env bash
# Installs what the repo needs, skipping whatever is already in place (fast when warm).
#   scripts/setup.sh          npm packages (root project and policy pack)
#   scripts/setup.sh --tools  also the Debian packages the real-daemon tests run:
#                             PostgreSQL 15, Patroni 3.0, PgBouncer, pgBackRest, Redis 7, the exporters, shellcheck; and
#                             kombu/redis-py from PyPI for the Celery broker test; and the
#                             simulated Kubernetes cluster (scripts/cluster-sim/build.sh: built
#                             from Go modules once, ~16 min cold, then copied from the cache); and
#                             promtool, prometheus, amtool, alertmanager at the shipped images'
#                             versions (scripts/prometheus-tools.sh: built once, then copied);
#                             jq, and the backup tests' S3 server versitygw
#                             (scripts/s3-sim/build.sh: a Go module, ~6 min cold, then copied)
set -euo pipefail
# shellcheck source=scripts/lib/help.sh
. "$(dirname "$0")/lib/help.sh"
help_if_asked "$@"
cd "$(dirname "$0")/.."

npm_install() {
  local dir=$1
  [ -f "$dir/package-lock.json" ] || return 0
  # npm ci records the lockfile it installed; reinstall only when the lockfile changed.
  if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    echo "setup: npm ci in $dir" >&2
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

npm_install .
npm_install policies

if [ "${1:-}" = "--tools" ]; then
  missing=()
  [ -x /usr/lib/postgresql/15/bin/pg_ctl ] || missing+=(postgresql-15 postgresql-contrib-15)
  # Patroni's Kubernetes DCS talks to the API server with its own urllib3 client (no
  # python3-kubernetes needed); apt satisfies its DCS-client dependency with python3-etcd.
  command -v patroni >/dev/null || missing+=(patroni)
  # The member image's backup tool (its pin is checked against the installed version).
  command -v pgbackrest >/dev/null || missing+=(pgbackrest)
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v redis-sentinel >/dev/null || missing+=(redis-sentinel)
  command -v redis-cli >/dev/null || missing+=(redis-tools)
  # Real exporters the monitoring tests scrape to check the metric catalogue.
  command -v prometheus-node-exporter >/dev/null || missing+=(prometheus-node-exporter)
  command -v prometheus-postgres-exporter >/dev/null || missing+=(prometheus-postgres-exporter)
  command -v prometheus-redis-exporter >/dev/null || missing+=(prometheus-redis-exporter)
  # PgBouncer (test/postgres/pgbouncer.test.ts runs it on the rendered ini).
  [ -x /usr/sbin/pgbouncer ] || missing+=(pgbouncer)
  command -v shellcheck >/dev/null || missing+=(shellcheck)
  command -v zstd >/dev/null || missing+=(zstd)
  command -v pigz >/dev/null || missing+=(pigz)
  # PostgreSQL backups to S3 (test/backup, scripts/bench/pg-backup) and JSON in their scripts.
  command -v jq >/dev/null || missing+=(jq)
  # S3 client of the Redis backups (the backup pods run the same release from rclone's image).
  command -v rclone >/dev/null || missing+=(rclone)
  command -v runuser >/dev/null || missing+=(util-linux)
  # The simulated cluster's PKI and readiness probes.
  command -v openssl >/dev/null || missing+=(openssl)
  command -v curl >/dev/null || missing+=(curl)
  if [ "${#missing[@]}" -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "setup: installing ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  # Celery's transport for test/redis/celery-broker.test.ts (kombu + redis-py, pinned).
  if ! python3 -c 'import kombu, redis' >/dev/null 2>&1; then
    echo "setup: pip install -r test/redis/requirements.txt" >&2
    python3 -m pip install --quiet --disable-pip-version-check -r test/redis/requirements.txt
  fi
  bash scripts/cluster-sim/build.sh
  # The monitoring tests run these, not Debian's older promtool/amtool (which lack Kubernetes SD).
  bash scripts/prometheus-tools.sh
  bash scripts/s3-sim/build.sh
  # Debian starts the packaged services on install; tests run their own on random ports.
  for svc in postgresql patroni redis-server prometheus prometheus-alertmanager prometheus-node-exporter \
    prometheus-postgres-exporter prometheus-redis-exporter pgbouncer; do
    if command -v service >/dev/null; then service "$svc" stop >/dev/null 2>&1 || true; fi
  done
fi
