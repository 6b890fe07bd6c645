#!/usr/bin/env bash
# Makes the running cluster's dynamic configuration (held by Patroni in the DCS) equal to the
# rendered one, then restarts members that need it. Run by Job postgresql-config-<hash> on every
# change of that configuration: Patroni applies bootstrap.dcs only when a cluster is created.
#   pg-dcs-config.sh
# Env: PATRONICTL_CONFIG_FILE  patroni.yml of the members (scope, namespace, labels)
#      PG_DCS_CONFIG_FILE      the dynamic configuration (YAML) to apply with --replace
#      PG_WAIT_SECONDS         how long to wait for the cluster to have a leader (600)
set -euo pipefail
: "${PATRONICTL_CONFIG_FILE:?}" "${PG_DCS_CONFIG_FILE:?}"
wait_s="${PG_WAIT_SECONDS:-600}"

leader() {
  patronictl -c "$PATRONICTL_CONFIG_FILE" list -f json 2>/dev/null |
    python3 -c 'import json,sys; print(next((m["Member"] for m in json.load(sys.stdin) if m["Role"] == "Leader" and m["State"] == "running"), ""))'
}

deadline=$((SECONDS + wait_s))
until [ -n "$(leader)" ]; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "pg-dcs-config: no running leader after ${wait_s}s; nothing applied" >&2
    exit 1
  fi
  sleep 2
done

patronictl -c "$PATRONICTL_CONFIG_FILE" edit-config --replace "$PG_DCS_CONFIG_FILE" --force --quiet
# Parameters such as max_connections take effect only after a restart. The order is safe: on a
# replica Patroni never goes below the primary's values recorded in pg_controldata.
patronictl -c "$PATRONICTL_CONFIG_FILE" restart --pending --force "$(
  python3 -c 'import sys,yaml; print(yaml.safe_load(open(sys.argv[1]))["scope"])' "$PATRONICTL_CONFIG_FILE"
)"
echo "pg-dcs-config: dynamic configuration applied (leader $(leader))" >&2
