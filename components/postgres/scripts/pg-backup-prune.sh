#!/usr/bin/env bash
# Retention: delete backups older than BACKUP_RETENTION_DAYS (30), but never one of the newest
# BACKUP_KEEP_MIN (7) intact backups, whatever their age: if backups stopped working, the last
# good ones survive. Leftover temp dirs of crashed runs older than 6 hours go too.
# shellcheck source-path=SCRIPTDIR source=pg-backup-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/pg-backup-lib.sh"

BACKUP_RETENTION_DAYS="${BACKUP_RETENTION_DAYS:-30}"
BACKUP_KEEP_MIN="${BACKUP_KEEP_MIN:-7}"
[[ "$BACKUP_RETENTION_DAYS" =~ ^[0-9]+$ ]] || die "BACKUP_RETENTION_DAYS must be a number"
if ! [[ "$BACKUP_KEEP_MIN" =~ ^[0-9]+$ ]] || [ "$BACKUP_KEEP_MIN" -lt 1 ]; then
  die "BACKUP_KEEP_MIN must be >= 1"
fi

now="$(date +%s)"
max_age=$((BACKUP_RETENTION_DAYS * 86400))
good=0
kept=0
deleted=0
while read -r mtime name; do
  age=$((now - mtime))
  if [ "$good" -lt "$BACKUP_KEEP_MIN" ] && backup_is_good "$name"; then
    good=$((good + 1))
    kept=$((kept + 1))
    log "keeping $name ($((age / 86400)) days old, intact, one of the newest $BACKUP_KEEP_MIN)"
    continue
  fi
  if [ "$age" -gt "$max_age" ]; then
    log "deleting $name ($((age / 86400)) days old)"
    rm -rf -- "${BACKUP_DIR:?}/$name"
    deleted=$((deleted + 1))
  else
    kept=$((kept + 1))
    log "keeping $name ($((age / 86400)) days old)"
  fi
done < <(list_backups)
find "$BACKUP_DIR" -mindepth 1 -maxdepth 1 -type d \( -name '.partial-*' -o -name '.restore-*' \) -mmin +360 \
  -exec rm -rf -- {} +
log "kept $kept backups ($good newest intact protected), deleted $deleted"
