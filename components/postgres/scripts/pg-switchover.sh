#!/usr/bin/env bash
# Makes member <name> the leader by a planned Patroni switchover; does nothing when it already
# leads. Run by Job postgresql-switchover-to-<ordinal> when `postgres.primary` changes.
#   pg-switchover.sh <member>
# Env: PATRONICTL_CONFIG_FILE  patroni.yml of the members (scope, namespace, labels)
#      PG_WAIT_SECONDS         how long to wait for a leader, and then for the new leader (600)
set -euo pipefail
: "${PATRONICTL_CONFIG_FILE:?}"
target="${1:?usage: pg-switchover.sh <member>}"
wait_s="${PG_WAIT_SECONDS:-600}"

members() { patronictl -c "$PATRONICTL_CONFIG_FILE" list -f json 2>/dev/null || echo '[]'; }
# "<leader> <target's role> <target's state>" from one listing.
snapshot() {
  members | python3 -c '
import json, sys
ms = json.load(sys.stdin)
lead = next((m["Member"] for m in ms if m["Role"] == "Leader" and m["State"] == "running"), "-")
t = next((m for m in ms if m["Member"] == sys.argv[1]), {})
print(lead, t.get("Role", "-").replace(" ", "_"), t.get("State", "-"))' "$target"
}

deadline=$((SECONDS + wait_s))
until read -r lead role state < <(snapshot) && [ "$lead" != - ]; do
  [ "$SECONDS" -lt "$deadline" ] || { echo "pg-switchover: no running leader after ${wait_s}s" >&2; exit 1; }
  sleep 2
done
if [ "$lead" = "$target" ]; then
  echo "pg-switchover: $target already leads; nothing to do" >&2
  exit 0
fi
# A candidate that is not a streaming replica would be refused by Patroni; say why up front.
until [ "$state" = streaming ] || [ "$state" = running ]; do
  [ "$SECONDS" -lt "$deadline" ] || {
    echo "pg-switchover: $target is not a healthy replica (role $role, state $state); leader stays $lead" >&2
    exit 1
  }
  sleep 2
  read -r lead role state < <(snapshot)
done
echo "pg-switchover: switching over from $lead to $target" >&2
patronictl -c "$PATRONICTL_CONFIG_FILE" switchover --leader "$lead" --candidate "$target" --force
until read -r lead role state < <(snapshot) && [ "$lead" = "$target" ]; do
  [ "$SECONDS" -lt "$deadline" ] || { echo "pg-switchover: $target did not become leader (leader: $lead)" >&2; exit 1; }
  sleep 1
done
echo "pg-switchover: $target leads" >&2
