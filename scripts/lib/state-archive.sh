# shellcheck shell=bash
# Sourced by scripts/state-backup and scripts/state-restore: the backup key, the backend, the CLI,
# and the archive's encryption.
#
# Encryption: `openssl enc -aes-256-cbc -pbkdf2 -iter 600000 -md sha256` with a random salt, the
# key read by openssl itself from the environment or a file (`-pass env:`/`file:`), so it never
# appears on a command line. Why openssl: it is on every operator machine, CI image and the
# restore machine without setup, and it has no keyring or agent state (gpg's symmetric mode needs
# a GNUPGHOME and an agent and behaves differently across 2.2/2.4; age is not installed on these
# machines). `enc` does not authenticate: the archive carries SHA256SUMS inside the encryption and
# gzip's CRC, both checked on restore, so a wrong key or a damaged file is reported, never restored.

STATE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

state_die() {
  echo "$(basename "$0"): $*" >&2
  exit 2
}

# The key must be given and long enough to resist guessing (openssl only stretches it).
state_key_check() {
  local key
  if [ -n "${STATE_BACKUP_KEY_FILE:-}" ]; then
    [ -r "$STATE_BACKUP_KEY_FILE" ] || state_die "STATE_BACKUP_KEY_FILE $STATE_BACKUP_KEY_FILE is not readable"
    key=$(head -n 1 "$STATE_BACKUP_KEY_FILE")
    STATE_PASS=(-pass "file:$STATE_BACKUP_KEY_FILE")
  elif [ -n "${STATE_BACKUP_KEY:-}" ]; then
    key=$STATE_BACKUP_KEY
    STATE_PASS=(-pass env:STATE_BACKUP_KEY)
  else
    state_die "no backup key: set STATE_BACKUP_KEY_FILE (or STATE_BACKUP_KEY)"
  fi
  [ "${#key}" -ge 20 ] || state_die "the backup key is shorter than 20 characters"
}

state_encrypt() { openssl enc -e -aes-256-cbc -pbkdf2 -iter 600000 -md sha256 -salt "${STATE_PASS[@]}"; }
state_decrypt() { openssl enc -d -aes-256-cbc -pbkdf2 -iter 600000 -md sha256 "${STATE_PASS[@]}"; }

# The backend as scripts/pulumi chooses it; STATE_BACKEND_DIR is set for file:// backends.
state_backend() {
  export PULUMI_BACKEND_URL=${PULUMI_BACKEND_URL:-file://$STATE_ROOT/.pulumi-state}
  # STATE_BACKEND_DIR and STATE_BACKEND_SHOWN are for the sourcing scripts.
  # shellcheck disable=SC2034
  STATE_BACKEND_DIR=""
  # shellcheck disable=SC2034
  case $PULUMI_BACKEND_URL in file://*) STATE_BACKEND_DIR=${PULUMI_BACKEND_URL#file://} ;; esac
  # Never record credentials that a URL might carry (scheme://user:secret@host).
  # shellcheck disable=SC2034
  STATE_BACKEND_SHOWN=$(sed -E 's#^([a-z0-9]+://)[^/@]*@#\1#' <<<"$PULUMI_BACKEND_URL")
  local tools=${PULUMI_TOOLS_DIR:-$STATE_ROOT/.tools}
  if [ -z "${PULUMI:-}" ]; then
    if [ -x "$tools/pulumi/bin/pulumi" ]; then PULUMI=$STATE_ROOT/scripts/pulumi; else PULUMI=pulumi; fi
  fi
  command -v "$PULUMI" >/dev/null || state_die "no Pulumi CLI ($PULUMI): run scripts/install-pulumi or set PULUMI"
}

state_pulumi() { "$PULUMI" --non-interactive "$@"; }
