#!/usr/bin/env bash
# Keeps backup.sh's backups in an S3-compatible object store, with rclone (S3 remote configured
# from the environment only: no rclone.conf, credentials from a Secret through env).
#   object-store.sh upload DIR            upload one complete backup dir (redis-<UTC stamp>)
#   object-store.sh prune                 delete backups older than RETENTION_DAYS, never the newest KEEP_MIN
#   object-store.sh list                  complete backups in the store, oldest first
#   object-store.sh fetch NAME|latest DIR download a complete backup into DIR; prints its local path
# A backup is complete once its SHA256SUMS object exists: it is uploaded last, after every other
# object was uploaded and compared (size and MD5) with the local file. list, fetch `latest` and the
# KEEP_MIN count only see complete backups; an incomplete one is deleted once past retention.
# Age is the UTC stamp in the backup's name (object modification times are not kept by every store).
# Env: S3_ENDPOINT (host), S3_PORT (443), S3_BUCKET, S3_REGION (us-east-1), S3_URI_STYLE (path|host),
#      S3_PREFIX (path in the bucket, e.g. /stock-analysis/redis), S3_CA_FILE (optional CA bundle),
#      RCLONE_CONFIG_STORE_ACCESS_KEY_ID, RCLONE_CONFIG_STORE_SECRET_ACCESS_KEY (from the Secret),
#      RETENTION_DAYS (30), KEEP_MIN (7), RCLONE (rclone binary; default: on PATH).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "${BASH_SOURCE[0]%/*}/lib.sh"

: "${S3_ENDPOINT:?}" "${S3_BUCKET:?}"
: "${RCLONE_CONFIG_STORE_ACCESS_KEY_ID:?from the object store Secret}"
: "${RCLONE_CONFIG_STORE_SECRET_ACCESS_KEY:?from the object store Secret}"
RCLONE="${RCLONE:-rclone}"
RETENTION_DAYS="${RETENTION_DAYS:-30}"
KEEP_MIN="${KEEP_MIN:-7}"
[ "$KEEP_MIN" -ge 1 ] || die "KEEP_MIN must be at least 1"
[[ "$RETENTION_DAYS" =~ ^[0-9]+$ ]] || die "RETENTION_DAYS must be a whole number of days"

# The remote "store": an S3 remote defined only by environment variables.
export RCLONE_CONFIG_STORE_TYPE=s3
export RCLONE_CONFIG_STORE_PROVIDER=Other
export RCLONE_CONFIG_STORE_ENDPOINT="https://$S3_ENDPOINT:${S3_PORT:-443}"
export RCLONE_CONFIG_STORE_REGION="${S3_REGION:-us-east-1}"
case "${S3_URI_STYLE:-path}" in
  path) export RCLONE_CONFIG_STORE_FORCE_PATH_STYLE=true ;;
  host) export RCLONE_CONFIG_STORE_FORCE_PATH_STYLE=false ;;
  *) die "S3_URI_STYLE must be path or host" ;;
esac
# The bucket exists already; the backup credentials need not be allowed to create buckets.
export RCLONE_CONFIG_STORE_NO_CHECK_BUCKET=true
# No config file is read or written (a read-only root file system is fine).
export RCLONE_CONFIG=/dev/null
# rclone's S3 backend fails ("LoadCustomCABundleError") when the AWS SDK's AWS_CA_BUNDLE is set:
# a CA bundle is given to rclone itself instead.
S3_CA_FILE="${S3_CA_FILE:-${AWS_CA_BUNDLE:-}}"
unset AWS_CA_BUNDLE
flags=(--retries 3 --low-level-retries 10 --stats 0)
[ -z "${S3_CA_FILE:-}" ] || flags+=(--ca-cert "$S3_CA_FILE")
prefix="${S3_PREFIX:-}"
prefix="${prefix#/}"
prefix="${prefix%/}"
remote="store:$S3_BUCKET${prefix:+/$prefix}"

rc() { "$RCLONE" "${flags[@]}" "$@"; }

name_ok() { [[ "$1" =~ ^redis-[0-9]{8}T[0-9]{6}Z$ ]]; }

# complete_backups: names of complete backups, oldest first.
complete_backups() {
  local listing
  listing="$(rc lsf --files-only -R --include '/redis-*/SHA256SUMS' "$remote" 2>&1)" ||
    die "listing $remote failed: $listing"
  printf '%s\n' "$listing" | sed -n 's|^\(redis-[0-9]\{8\}T[0-9]\{6\}Z\)/SHA256SUMS$|\1|p' | sort
}

# all_backups: every backup prefix in the store, complete or not, oldest first.
all_backups() {
  local listing
  listing="$(rc lsf --dirs-only "$remote" 2>&1)" || die "listing $remote failed: $listing"
  printf '%s\n' "$listing" | sed -n 's|^\(redis-[0-9]\{8\}T[0-9]\{6\}Z\)/$|\1|p' | sort
}

cmd="${1:-}"
case "$cmd" in
  upload)
    dir="${2:?usage: object-store.sh upload DIR}"
    dir="${dir%/}"
    name="$(basename "$dir")"
    name_ok "$name" || die "$dir is not a backup directory (redis-<UTC stamp>)"
    [ -s "$dir/SHA256SUMS" ] || die "$dir has no SHA256SUMS: not a complete backup"
    log "uploading $name to $remote"
    out="$(rc copy --exclude /SHA256SUMS "$dir" "$remote/$name" 2>&1)" || die "upload of $name failed: $out"
    # Every object as stored (size and MD5) equals the local file before the backup counts.
    out="$(rc check --one-way --exclude /SHA256SUMS "$dir" "$remote/$name" 2>&1)" ||
      die "uploaded $name differs from the local backup: $out"
    out="$(rc copyto "$dir/SHA256SUMS" "$remote/$name/SHA256SUMS" 2>&1)" || die "upload of $name/SHA256SUMS failed: $out"
    listing="$(complete_backups)"
    printf '%s\n' "$listing" | grep -qx "$name" || die "$name is not listed as complete after upload"
    log "uploaded $name ($(du -sk "$dir" | cut -f1) KiB)"
    ;;
  prune)
    cutoff="$(date -u -d "@$(($(date -u +%s) - RETENTION_DAYS * 86400))" +%Y%m%dT%H%M%SZ)"
    listing="$(complete_backups)"
    mapfile -t complete < <(printf '%s\n' "$listing" | sed '/^$/d' | sort -r)
    everything="$(all_backups)"
    keep=("${complete[@]:0:KEEP_MIN}")
    pruned=0
    while read -r name; do
      [ -n "$name" ] || continue
      printf '%s\n' "${keep[@]}" | grep -qx "$name" && continue
      # Stamps sort chronologically: older than the cutoff means past retention.
      [[ "${name#redis-}" < "$cutoff" ]] || continue
      out="$(rc purge "$remote/$name" 2>&1)" || die "deleting $name failed: $out"
      log "pruned $remote/$name"
      pruned=$((pruned + 1))
    done <<<"$everything"
    log "prune: ${#complete[@]} complete backups before, $pruned deleted (older than $cutoff, newest $KEEP_MIN kept)"
    ;;
  list)
    listing="$(complete_backups)"
    [ -z "$listing" ] || printf '%s\n' "$listing"
    ;;
  fetch)
    name="${2:?usage: object-store.sh fetch NAME|latest DIR}"
    dest="${3:?usage: object-store.sh fetch NAME|latest DIR}"
    listing="$(complete_backups)"
    if [ "$name" = latest ]; then
      name="$(printf '%s\n' "$listing" | tail -1)"
      [ -n "$name" ] || die "no complete backup in $remote"
    fi
    name_ok "$name" || die "$name is not a backup name (redis-<UTC stamp>)"
    printf '%s\n' "$listing" | grep -qx "$name" || die "$name is not a complete backup in $remote"
    mkdir -p "$dest"
    rm -rf "${dest:?}/$name"
    log "downloading $remote/$name"
    out="$(rc copy "$remote/$name" "$dest/$name" 2>&1)" || die "download of $name failed: $out"
    printf '%s\n' "$dest/$name"
    ;;
  *) die "usage: object-store.sh upload DIR | prune | list | fetch NAME|latest DIR" ;;
esac
