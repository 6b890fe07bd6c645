#!/usr/bin/env bash
# Backup check (CronJob postgresql-backup-verify): the newest backup must be recent
# (VERIFY_MAX_AGE_HOURS, default 26), intact (every checksum), and restore into a scratch database
# with the row counts it recorded. Exits non-zero otherwise, so the Job shows Failed.
# shellcheck source-path=SCRIPTDIR source=pg-backup-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/pg-backup-lib.sh"

VERIFY_MAX_AGE_HOURS="${VERIFY_MAX_AGE_HOURS:-26}"
read -r mtime name < <(list_backups) || die "no backups in $BACKUP_DIR"
age=$(($(date +%s) - mtime))
[ "$age" -le $((VERIFY_MAX_AGE_HOURS * 3600)) ] ||
  die "newest backup $name is $((age / 3600))h old (limit ${VERIFY_MAX_AGE_HOURS}h): backups are not running"
backup_is_good "$name" || die "newest backup $name failed checksum verification"
log "newest backup $name is intact; test-restoring it"
RESTORE_MODE=scratch BACKUP_NAME="$name" "$(dirname "${BASH_SOURCE[0]}")/pg-restore.sh"
