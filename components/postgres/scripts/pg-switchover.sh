#!/usr/bin/env bash
# Planned switchover of the Patroni cluster to one member, through the members' REST API. Run by
# the Job the postgres component creates when postgres.primary changes; idempotent: it does
# nothing when that member already leads.
#   pg-switchover.sh <member>          e.g. pg-switchover.sh postgresql-1
# Env:
#   PATRONI_MEMBERS           every member as name=url, space-separated, e.g.
#                             "postgresql-0=http://postgresql-0.postgresql-headless:8008 ..."
#   PATRONI_RESTAPI_USERNAME  REST API basic auth (from the Secret; Patroni asks for it on
#   PATRONI_RESTAPI_PASSWORD  POST/PATCH only)
#   SWITCHOVER_MAX_LAG        bytes the candidate may be behind the leader (default 1048576)
#   SWITCHOVER_TIMEOUT        seconds to wait for each step (default 120)
# With synchronous_mode Patroni switches over only to a synchronous standby: when the member is
# not one, synchronous_node_count is raised for the switchover (all replicas synchronous) and
# restored afterwards. Exit 0 when <member> leads and runs; else one line on stderr and exit 1
# (2 for a usage error).
set -euo pipefail
# help.sh is scripts/lib/help.sh, shipped beside this script in the scripts ConfigMap.
# shellcheck source=scripts/lib/help.sh
source "$(dirname "${BASH_SOURCE[0]}")/help.sh"
help_if_asked "$@"

die() {
  echo "pg-switchover: $*" >&2
  exit 1
}
target="${1:-}"
[ -n "$target" ] || {
  echo "usage: pg-switchover.sh <member> (see --help)" >&2
  exit 2
}
max_lag="${SWITCHOVER_MAX_LAG:-1048576}"
timeout="${SWITCHOVER_TIMEOUT:-120}"

# shellcheck source-path=SCRIPTDIR source=patroni-rest.sh
source "$(dirname "${BASH_SOURCE[0]}")/patroni-rest.sh"
[ -n "${url[$target]:-}" ] || {
  echo "pg-switchover: no member '$target' (members: ${names[*]})" >&2
  exit 2
}

leads_and_runs() {
  [ "$(code "${url[$1]}/primary")" = 200 ] &&
    body "${url[$1]}/patroni" | grep -q '"state": *"running"'
}
is_sync() { [ "$(code "${url[$1]}/sync")" = 200 ]; }

if leads_and_runs "$target"; then
  echo "pg-switchover: $target already leads; nothing to do"
  exit 0
fi
wait_for "a leader (a failover may be in progress)" find_leader
[ "$(code "${url[$target]}/replica?lag=$max_lag")" = 200 ] ||
  die "candidate $target is not a healthy replica within $max_lag bytes of leader $leader; not switching over"

restore=""
restore_sync() {
  [ -n "$restore" ] || return 0
  local r
  r=$(send PATCH "${url[$target]}/config" "{\"synchronous_node_count\": $restore}")
  [ "${r%% *}" = 200 ] || echo "pg-switchover: could not restore synchronous_node_count=$restore: $r" >&2
  restore=""
}
trap restore_sync EXIT
config=$(body "${url[$leader]}/config")
if grep -q '"synchronous_mode": *true' <<<"$config" &&
  ! is_sync "$target"; then
  # Only a synchronous standby may take over: make every replica one for the switchover.
  restore=$(sed -n 's/.*"synchronous_node_count": *\([0-9][0-9]*\).*/\1/p' <<<"$config")
  restore="${restore:-null}"
  r=$(send PATCH "${url[$leader]}/config" "{\"synchronous_node_count\": $((${#names[@]} - 1))}")
  [ "${r%% *}" = 200 ] || die "could not raise synchronous_node_count: $r"
  wait_for "$target to become a synchronous standby" is_sync "$target"
fi

echo "pg-switchover: switching over from $leader to $target"
r=$(send POST "${url[$leader]}/switchover" "{\"leader\": \"$leader\", \"candidate\": \"$target\"}")
case "${r%% *}" in
  200) ;;
  # Patroni gave up polling the result; the switchover may still complete: wait below.
  503) grep -q 'status unknown' <<<"$r" || die "switchover refused: $r" ;;
  *) die "switchover refused: $r" ;;
esac
wait_for "$target to lead and run" leads_and_runs "$target"
restore_sync
echo "pg-switchover: $target leads"
