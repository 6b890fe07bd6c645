#!/usr/bin/env bash
# Forms the Redis Cluster, idempotently (run by the formation Job on every deploy).
#  - waits until every node answers PING;
#  - no cluster yet (all nodes empty): `redis-cli --cluster create ... --cluster-replicas R`;
#  - cluster already formed: nodes not in it are added, as masters while the cluster has fewer
#    than REDIS_MASTERS masters with slots (then `--cluster rebalance --cluster-use-empty-masters`),
#    the rest as replicas of the masters with the fewest replicas; nothing to add: no change.
#  - a partially formed cluster is reported, never "repaired" blindly (see docs/RUNBOOK.md#redis).
# Env: REDIS_NODES ("host:port ..." for every node, masters*(1+replicas) of them), REDIS_MASTERS,
#      REDIS_REPLICAS_PER_MASTER, REDIS_PASSWORD_FILE, REDIS_FORM_TIMEOUT_S (default 600).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "${BASH_SOURCE[0]%/*}/lib.sh"

: "${REDIS_NODES:?}" "${REDIS_MASTERS:?}" "${REDIS_REPLICAS_PER_MASTER:?}"
REDIS_PASSWORD_FILE="${REDIS_PASSWORD_FILE:-/etc/redis-auth/password}"
REDIS_FORM_TIMEOUT_S="${REDIS_FORM_TIMEOUT_S:-600}"
REDISCLI_AUTH="$(read_password "$REDIS_PASSWORD_FILE")"
export REDISCLI_AUTH

read -r -a nodes <<<"$REDIS_NODES"
expected=$((REDIS_MASTERS * (1 + REDIS_REPLICAS_PER_MASTER)))
[ "$REDIS_MASTERS" -ge 3 ] || die "Redis Cluster needs at least 3 masters, got $REDIS_MASTERS"
[ "${#nodes[@]}" -eq "$expected" ] ||
  die "REDIS_NODES lists ${#nodes[@]} nodes, expected $expected (masters x (1 + replicas))"
deadline=$((SECONDS + REDIS_FORM_TIMEOUT_S))

# Wait for every node; CLUSTER MEET needs IPs, so each name is resolved to its current address.
addrs=()
for node in "${nodes[@]}"; do
  host="${node%:*}" port="${node##*:}"
  until ip="$(resolve_ipv4 "$host")" && [ "$(rcli "$ip" "$port" PING 2>/dev/null)" = "PONG" ]; do
    [ "$SECONDS" -lt "$deadline" ] || die "timed out waiting for $node to answer PING"
    sleep 2
  done
  addrs+=("$ip:$port")
done
log "all ${#addrs[@]} nodes answer"

# all_ok: every listed node that is in a cluster reports cluster_state:ok, and every replica has
# completed its sync (a replica that never synced cannot be promoted).
all_ok() {
  local a info
  for a in "${addrs[@]}"; do
    info="$(rcli "${a%:*}" "${a##*:}" CLUSTER INFO 2>/dev/null)" || return 1
    [ "$(info_field "$info" cluster_known_nodes)" = 1 ] && continue
    [ "$(info_field "$info" cluster_state)" = ok ] || return 1
    info="$(rcli "${a%:*}" "${a##*:}" INFO replication 2>/dev/null)" || return 1
    if [ "$(info_field "$info" role)" = slave ]; then
      [ "$(info_field "$info" master_link_status)" = up ] || return 1
    fi
  done
}

# wait_consistent ENTRY: until every node agrees on the slot map, all slots are covered and
# every member serves with its replicas in sync (all_ok).
wait_consistent() {
  local out
  until out="$(redis-cli --no-auth-warning --cluster check "$1" 2>&1)" &&
    grep -q 'All nodes agree about slots configuration' <<<"$out" &&
    grep -q 'All 16384 slots covered' <<<"$out" && ! grep -q 'ERR' <<<"$out" && all_ok; do
    [ "$SECONDS" -lt "$deadline" ] || die "cluster not consistent before timeout: $out"
    sleep 1
  done
}

entry=""
fresh=0
declare -A id_of
for addr in "${addrs[@]}"; do
  info="$(rcli "${addr%:*}" "${addr##*:}" CLUSTER INFO)"
  assigned="$(info_field "$info" cluster_slots_assigned)"
  known="$(info_field "$info" cluster_known_nodes)"
  id_of[$addr]="$(rcli "${addr%:*}" "${addr##*:}" CLUSTER MYID | tr -d '\r')"
  if [ -z "$entry" ] && [ "$assigned" = 16384 ]; then entry="$addr"; fi
  if [ "$assigned" = 0 ] && [ "$known" = 1 ]; then fresh=$((fresh + 1)); fi
done

if [ -z "$entry" ]; then
  [ "$fresh" -eq "${#addrs[@]}" ] ||
    die "no node sees all 16384 slots assigned but only $fresh/${#addrs[@]} nodes are empty: partially formed cluster, see docs/RUNBOOK.md#redis"
  log "creating cluster: $REDIS_MASTERS masters, $REDIS_REPLICAS_PER_MASTER replica(s) each"
  redis-cli --no-auth-warning --cluster create "${addrs[@]}" \
    --cluster-replicas "$REDIS_REPLICAS_PER_MASTER" --cluster-yes
  wait_consistent "${addrs[0]}"
  log "cluster formed"
  exit 0
fi

members="$(rcli "${entry%:*}" "${entry##*:}" CLUSTER NODES | tr -d '\r')"
# Masters that own slots: field 3 has "master" and not "fail", fields 9+ are slot ranges.
masters_with_slots="$(awk '$3 ~ /master/ && $3 !~ /fail/ && NF >= 9' <<<"$members" | wc -l)"
strangers=()
for addr in "${addrs[@]}"; do
  grep -q "^${id_of[$addr]} " <<<"$members" || strangers+=("$addr")
done
if [ "${#strangers[@]}" -eq 0 ]; then
  [ "$masters_with_slots" -ge "$REDIS_MASTERS" ] ||
    log "WARNING: $masters_with_slots masters own slots, $REDIS_MASTERS wanted, and no spare node to add"
  log "cluster already formed with every node; nothing to do"
  exit 0
fi

new_masters=$((REDIS_MASTERS - masters_with_slots))
[ "$new_masters" -ge 0 ] || new_masters=0
added_masters=0
for addr in "${strangers[@]}"; do
  if [ "$added_masters" -lt "$new_masters" ]; then
    log "adding $addr as a master"
    redis-cli --no-auth-warning --cluster add-node "$addr" "$entry"
    added_masters=$((added_masters + 1))
    wait_consistent "$entry"
  fi
done
if [ "$added_masters" -gt 0 ]; then
  log "rebalancing slots onto the $added_masters new master(s)"
  redis-cli --no-auth-warning --cluster rebalance "$entry" --cluster-use-empty-masters
  wait_consistent "$entry"
fi
for addr in "${strangers[@]:$added_masters}"; do
  log "adding $addr as a replica"
  redis-cli --no-auth-warning --cluster add-node "$addr" "$entry" --cluster-slave
  wait_consistent "$entry"
done
log "cluster extended: ${#strangers[@]} node(s) added"
