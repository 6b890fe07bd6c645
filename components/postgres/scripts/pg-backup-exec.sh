#!/usr/bin/env bash
# Backup CronJob (postgresql-backup-full / -diff): pgBackRest must run where PGDATA is, so this
# pod only picks the member and runs pg-backrest.sh inside its postgresql container with
# `kubectl exec` (its ServiceAccount may exec into exactly the members, nothing else).
#   pg-backup-exec.sh full|diff|incr
# The member is the current primary (Patroni's role label, BACKUP_ROLE_LABEL=role, value master or
# primary), found at run time, so backups follow a failover.
# Environment: NAMESPACE, BACKUP_SELECTOR (app=postgresql), BACKUP_CONTAINER (postgresql),
#   BACKUP_RETENTION_DAYS, BACKUP_MIN_FULL, KUBECTL (kubectl)
set -euo pipefail
# help.sh is scripts/lib/help.sh, shipped beside this script in the scripts ConfigMap.
# shellcheck source=scripts/lib/help.sh
source "$(dirname "${BASH_SOURCE[0]}")/help.sh"
help_if_asked "$@"
log() { echo "pg-backup-exec [$(date -u +%FT%TZ)] $*" >&2; }
type="${1:-}"
case "$type" in full | diff | incr) ;; *)
  log "usage: pg-backup-exec.sh full|diff|incr"
  exit 2
  ;;
esac
: "${NAMESPACE:?NAMESPACE is required}"
: "${BACKUP_RETENTION_DAYS:?BACKUP_RETENTION_DAYS is required}"
: "${BACKUP_MIN_FULL:?BACKUP_MIN_FULL is required}"
KUBECTL="${KUBECTL:-kubectl}"
selector="${BACKUP_SELECTOR:-app=postgresql}"
label="${BACKUP_ROLE_LABEL:-role}"
k() { "$KUBECTL" -n "$NAMESPACE" "$@"; }

pods="$(k get pods -l "$selector" -o jsonpath="{range .items[*]}{.metadata.name} {.metadata.labels.$label} {.status.phase}{'\n'}{end}")"
target="$(awk '($2 == "master" || $2 == "primary") && $3 == "Running" { print $1; exit }' <<<"$pods")"
if [ -z "$target" ]; then
  log "no running primary among the members (${pods//$'\n'/; }): no backup"
  exit 1
fi
log "$type backup on $target"
exec "$KUBECTL" -n "$NAMESPACE" exec "$target" -c "${BACKUP_CONTAINER:-postgresql}" -- \
  env "BACKUP_RETENTION_DAYS=$BACKUP_RETENTION_DAYS" "BACKUP_MIN_FULL=$BACKUP_MIN_FULL" \
  bash /scripts/pg-backrest.sh backup "$type"
