#!/usr/bin/env bash
# Shared by the backup, prune, verify and restore scripts (sourced, not run).
# Environment (same in the CronJob pods and in tests):
#   PGHOST, PGPORT, PGUSER (default postgres)   server to back up / restore into
#   PG_PASSWORD_FILE                            file with PGUSER's password (Secret mount); optional
#   BACKUP_DIR                                  backup volume; each backup is BACKUP_DIR/backup-<UTC time>/
#   BACKUP_DATABASE                             database (default stock_analysis)
# A backup directory only ever appears under its final name by an atomic rename of a completed,
# fsynced temp dir, so anything named backup-* is complete; MANIFEST.sha256 proves it intact.
set -euo pipefail

: "${BACKUP_DIR:?BACKUP_DIR is required}"
export PGUSER="${PGUSER:-postgres}"
BACKUP_DATABASE="${BACKUP_DATABASE:-stock_analysis}"
CLEANUP_PATHS=()

log() { echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) [$(basename "$0" .sh)] $*" >&2; }
die() {
  log "FAILED: $*"
  exit 1
}

cleanup() {
  local p
  for p in "${CLEANUP_PATHS[@]}"; do rm -rf -- "$p"; done
}
trap cleanup EXIT

# A private .pgpass built from the Secret file, so the password never sits in argv or the environment.
if [ -n "${PG_PASSWORD_FILE:-}" ]; then
  PGPASSFILE="$(mktemp)"
  CLEANUP_PATHS+=("$PGPASSFILE")
  printf '*:*:*:%s:%s\n' "$PGUSER" "$(sed -e 's/\\/\\\\/g' -e 's/:/\\:/g' "$PG_PASSWORD_FILE")" >"$PGPASSFILE"
  chmod 600 "$PGPASSFILE"
  export PGPASSFILE
fi

psql_() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

# "<mtime epoch> <name>" of every complete backup, newest first.
list_backups() {
  find "$BACKUP_DIR" -mindepth 1 -maxdepth 1 -type d -name 'backup-*' -printf '%T@ %f\n' |
    sed 's/\.[0-9]* / /' | sort -rn
}

# Intact: manifest present and every file matches its checksum (a truncated file fails).
backup_is_good() {
  local dir="$BACKUP_DIR/$1"
  [ -s "$dir/MANIFEST.sha256" ] && [ -s "$dir/backup.meta" ] || return 1
  (cd "$dir" && sha256sum --quiet --strict --check MANIFEST.sha256 >/dev/null 2>&1)
}

newest_good_backup() {
  local _mtime name
  while read -r _mtime name; do
    if backup_is_good "$name"; then
      echo "$name"
      return 0
    fi
    log "skipping $name: checksum verification failed"
  done < <(list_backups)
  return 1
}

meta() { sed -n "s/^$2=//p" "$BACKUP_DIR/$1/backup.meta"; }
