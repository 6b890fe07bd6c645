#!/usr/bin/env bash
# Helpers sourced by the Redis scripts. Passwords are read from mounted Secret files and passed
# to redis-cli through REDISCLI_AUTH (environment), never on a command line.

log() { printf '%s %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}

# read_password FILE: prints the password; refuses characters that would need quoting in
# redis.conf or URLs (the generated passwords are alphanumeric).
read_password() {
  local file="$1" pw
  [ -r "$file" ] || die "password file $file is not readable"
  pw="$(tr -d '\r\n' <"$file")"
  [[ "$pw" =~ ^[A-Za-z0-9]+$ ]] || die "password in $file must be non-empty and alphanumeric"
  printf '%s' "$pw"
}

# resolve_ipv4 HOST: prints HOST's current IPv4 address (HOST itself if it is one); fails if unknown.
resolve_ipv4() {
  local host="$1" ip
  if [[ "$host" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    printf '%s' "$host"
    return 0
  fi
  ip="$(getent ahostsv4 "$host" 2>/dev/null | awk 'NR == 1 { print $1 }')"
  [ -n "$ip" ] || return 1
  printf '%s' "$ip"
}

# rcli HOST PORT ARGS...: redis-cli against one server (auth from REDISCLI_AUTH).
rcli() {
  local host="$1" port="$2"
  shift 2
  redis-cli --no-auth-warning -h "$host" -p "$port" "$@"
}

# info_field TEXT FIELD: value of "field:value" in INFO / CLUSTER INFO output.
info_field() {
  printf '%s\n' "$1" | tr -d '\r' | awk -F: -v f="$2" '$1 == f { print $2; exit }'
}

# sentinel_master SENTINELS MASTER_NAME: prints "host port" of the primary as reported by the
# first sentinel that knows it; fails if none does. SENTINELS is "host:port host:port ...";
# the sentinels' password is taken from SENTINEL_AUTH.
sentinel_master() {
  local sentinels="$1" name="$2" s reply
  for s in $sentinels; do
    reply="$(REDISCLI_AUTH="${SENTINEL_AUTH:-}" timeout 5 redis-cli --no-auth-warning \
      -h "${s%:*}" -p "${s##*:}" SENTINEL get-master-addr-by-name "$name" 2>/dev/null | tr -d '\r')" || continue
    if [ "$(printf '%s\n' "$reply" | wc -l)" -eq 2 ] && [[ "$(printf '%s\n' "$reply" | sed -n 2p)" =~ ^[0-9]+$ ]]; then
      printf '%s\n' "$reply" | paste -sd' '
      return 0
    fi
  done
  return 1
}
