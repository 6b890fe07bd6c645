#!/usr/bin/env bash
# Makes the running cluster's dynamic configuration (kept by Patroni in the DCS) equal to the
# rendered one, then restarts the members whose parameters need it. Run by Job
# postgresql-config-<hash> whenever that configuration changes: Patroni applies bootstrap.dcs only
# when a cluster is created. Talks to the members' REST API only (no Kubernetes API token).
#   pg-dcs-config.sh <dcs.json>
# Env: PATRONI_MEMBERS, PATRONI_RESTAPI_USERNAME, PATRONI_RESTAPI_PASSWORD (see patroni-rest.sh)
#      DCS_CONFIG_TIMEOUT  seconds to wait for a leader, and for each restart (default 600)
set -euo pipefail
# help.sh is scripts/lib/help.sh, shipped beside this script in the scripts ConfigMap.
# shellcheck source=scripts/lib/help.sh
source "$(dirname "${BASH_SOURCE[0]}")/help.sh"
help_if_asked "$@"
die() {
  echo "pg-dcs-config: $*" >&2
  exit 1
}
file="${1:-}"
[ -f "$file" ] || {
  echo "usage: pg-dcs-config.sh <dcs.json> (see --help)" >&2
  exit 2
}
timeout="${DCS_CONFIG_TIMEOUT:-600}"
# shellcheck source-path=SCRIPTDIR source=patroni-rest.sh
source "$(dirname "${BASH_SOURCE[0]}")/patroni-rest.sh"

end=$((SECONDS + timeout))
until find_leader; do
  [ "$SECONDS" -lt "$end" ] || die "no leader after ${timeout}s; nothing applied"
  sleep 2
done

# PUT replaces the whole dynamic configuration: a key removed from the stack config goes too.
r=$(send PUT "${url[$leader]}/config" "$(cat "$file")")
[ "${r%% *}" = 200 ] || die "Patroni refused the configuration: $r"
echo "pg-dcs-config: dynamic configuration applied through $leader"

# Parameters such as max_connections take effect only after a restart; Patroni flags a pending
# restart within one HA loop of the change. Replicas go first, then the leader: on a replica
# Patroni never goes below the primary's values recorded in pg_controldata, so an increase is
# safe in that order, and a decrease reaches the replicas only once the restarted leader has
# written its new values to the WAL, hence a second pass.
restart_if_pending() {
  local n=$1 r
  body "${url[$n]}/patroni" | grep -q '"pending_restart": *true' || return 1
  r=$(send POST "${url[$n]}/restart" '{"restart_pending": true}')
  [ "${r%% *}" = 200 ] || die "restart of $n refused: $r"
  echo "pg-dcs-config: restarted $n for pending parameters"
}
for _pass in 1 2 3; do
  sleep "${DCS_PENDING_WAIT:-12}"
  find_leader || die "no leader while restarting members for pending parameters"
  restarted=0
  for n in "${names[@]}"; do
    if [ "$n" != "$leader" ] && restart_if_pending "$n"; then restarted=1; fi
  done
  if restart_if_pending "$leader"; then restarted=1; fi
  [ "$restarted" = 1 ] || break
done
