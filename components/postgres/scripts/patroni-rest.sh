# shellcheck shell=bash
# Patroni REST API helpers, sourced by pg-switchover.sh and pg-dcs-config.sh (not run).
# Env: PATRONI_MEMBERS  every member as name=url, space-separated
#      PATRONI_RESTAPI_USERNAME, PATRONI_RESTAPI_PASSWORD  basic auth (POST/PATCH/PUT only)
# Callers set `timeout` (seconds) and define die().
: "${PATRONI_MEMBERS:?PATRONI_MEMBERS must list the members as name=url}"
declare -A url=()
names=()
for m in $PATRONI_MEMBERS; do
  [[ "$m" == *=http*://* ]] || die "PATRONI_MEMBERS entry '$m' is not name=url"
  names+=("${m%%=*}")
  # shellcheck disable=SC2034 # read by the sourcing scripts
  url[${m%%=*}]="${m#*=}"
done

# curl reads the credentials from stdin (-K -) so they never show in the process list.
curl_auth() {
  local u="${PATRONI_RESTAPI_USERNAME:-}" p="${PATRONI_RESTAPI_PASSWORD:-}"
  if [ -n "$u" ]; then
    p="${p//\\/\\\\}"
    printf 'user = "%s:%s"\n' "$u" "${p//\"/\\\"}"
  fi
}
# code <url>: the HTTP status of a GET (000 when the member does not answer).
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1" || true; }
# body <url>: the body of a GET (empty when the member does not answer).
body() { curl -s --max-time 5 "$1" || true; }
# send <method> <url> <json>: prints "<status> <body>".
send() {
  local out
  out=$(curl_auth | curl -s -K - -X "$1" -H 'Content-Type: application/json' --data "$3" \
    --max-time "$((${timeout:-120} + 30))" -w '\n%{http_code}' "$2") || true
  printf '%s %s\n' "${out##*$'\n'}" "${out%$'\n'*}" | tr '\n' ' '
}
# wait_for <what> <command...>: retries the command every second for $timeout seconds.
wait_for() {
  local what="$1" end=$((SECONDS + timeout))
  shift
  until "$@"; do
    [ "$SECONDS" -lt "$end" ] || die "timed out after ${timeout}s waiting for $what"
    sleep 1
  done
}

# find_leader: sets `leader` to the member whose REST API says it is the primary (1 if none).
# shellcheck disable=SC2034 # read by the sourcing scripts
leader=""
find_leader() {
  local n
  for n in "${names[@]}"; do
    if [ "$(code "${url[$n]}/primary")" = 200 ]; then
      # shellcheck disable=SC2034 # read by the sourcing scripts
      leader="$n"
      return 0
    fi
  done
  return 1
}
