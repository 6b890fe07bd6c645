#!/usr/bin/env bash
# In-pod half of scripts/pg-failover (run through kubectl exec in the postgresql container):
#   pg-failover.sh promote     pin this member as primary until the config says so too, and wait
#                              until the entrypoint has promoted it (catch-up + pg_promote)
#   pg-failover.sh follow N    pin member N as primary on this member (steps down / repoints)
#   pg-failover.sh status      role, configured and pinned primary of this member
# The pin (PG_STATE_DIR/primary.override) is dropped by the entrypoint once the configured primary
# (postgres.primary) equals it, so committing the config line ends the emergency state.
# shellcheck source-path=SCRIPTDIR source=pg-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/pg-common.sh"

PROMOTE_TIMEOUT="${PROMOTE_TIMEOUT:-120}"

role() {
  case "$(local_sql "select pg_is_in_recovery()" 2>/dev/null)" in
    f) echo primary ;;
    t) echo standby ;;
    *) echo down ;;
  esac
}

case "${1:-}" in
  promote)
    echo "$ME" >"$OVERRIDE_FILE"
    deadline=$((SECONDS + PROMOTE_TIMEOUT))
    until [ "$(role)" = primary ]; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        log "not primary after ${PROMOTE_TIMEOUT}s; see the container log (another primary still running?)"
        exit 1
      fi
      sleep 1
    done
    log "member $ME is primary"
    ;;
  follow)
    if ! [[ "${2:-}" =~ ^[0-9]+$ ]] || [ "$2" -ge "${#PEERS[@]}" ]; then
      echo "usage: $0 follow <ordinal>" >&2
      exit 2
    fi
    echo "$2" >"$OVERRIDE_FILE"
    log "member $2 pinned as primary"
    ;;
  status)
    override="$(cat "$OVERRIDE_FILE" 2>/dev/null || true)"
    echo "member=$ME role=$(role) configured=$(tr -dc '0-9' <"$PG_PRIMARY_FILE") override=${override:-none}"
    ;;
  *)
    echo "usage: $0 promote | follow <ordinal> | status" >&2
    exit 2
    ;;
esac
