#!/usr/bin/env bash
# Runs the test suite with Node's built-in runner (each file in its own process,
# so Pulumi mocks and daemons never leak between files).
#   scripts/test.sh            every suite under test/ except test/engine and test/drills
#                              (test/cluster starts the simulated cluster that scripts/setup.sh
#                              --tools builds)
#   scripts/test.sh drills     the slow failure drills (npm run test:drills; CI runs them apart)
#   scripts/test.sh unit       only test/unit (fast, no daemons)
#   scripts/test.sh <dir>...   only the given folders under test/ (`unit` or `test/unit`)
#   scripts/test.sh test/unit/config.test.ts ...   only those files
#   scripts/test.sh unit --test-name-pattern=replicas   options starting with -- go to node --test
#                              (`--test-name-pattern replicas` too: a value after a node --test
#                              option that takes one is that option's, not a folder)
#   Paths: test/x, ./test/x, x (= test/x) or absolute inside the repo (npm test -- <path> as well).
#   scripts/test.sh engine     the real-engine tests (npm run test:engine): they need the Pulumi
#                              toolchain of scripts/install-pulumi and run only when asked for
set -euo pipefail
# shellcheck source=scripts/lib/help.sh
. "$(dirname "$0")/lib/help.sh"
help_if_asked "$@"
cd "$(dirname "$0")/.."
root=$PWD
# Prod's stack file holds no operator secrets and a stack whose alerts reach no one does not
# render: tests that run render/policy/diff for prod get placeholder endpoints (README "Deploying
# prod"; scripts/lib/offline-secrets.ts). A test that needs them absent sets its own environment.
placeholder_secrets='{"alertSlackWebhookUrl":"https://slack.alerts.invalid/services/placeholder","alertPagerWebhookUrl":"https://pager.alerts.invalid/events/placeholder"}'
export STOCK_ANALYSIS_SECRETS=${STOCK_ANALYSIS_SECRETS-$placeholder_secrets}

dirs=()
node_opts=()
while [ $# -gt 0 ]; do
  a=$1
  shift
  case $a in
    # node --test options whose value may follow as the next argument.
    --test-name-pattern | --test-skip-pattern | --test-concurrency | --test-reporter | \
      --test-reporter-destination | --test-shard | --test-timeout | --experimental-test-coverage-include)
      [ $# -gt 0 ] || {
        echo "test.sh: $a needs a value" >&2
        exit 2
      }
      node_opts+=("$a=$1")
      shift
      ;;
    --*) node_opts+=("$a") ;;
    *)
      a=${a#"$root"/}
      a=${a#./}
      case $a in
        test | test/*) dirs+=("$a") ;;
        *) dirs+=("test/$a") ;;
      esac
      ;;
  esac
done
whole=false
[ "${#dirs[@]}" -eq 0 ] && whole=true && dirs=(test)
for d in "${dirs[@]}"; do
  [ -e "$d" ] || {
    echo "test.sh: no test file or folder $d" >&2
    exit 2
  }
done

prune=()
[ "$whole" = true ] && prune=(\( -path test/engine -o -path test/drills \) -prune -o)
mapfile -t files < <(find "${dirs[@]}" "${prune[@]}" -name '*.test.ts' -type f -print | sort)
if [ "${#files[@]}" -eq 0 ]; then
  echo "no test files under ${dirs[*]}" >&2
  exit 1
fi

# One offline render per distinct input for the whole run (test/helpers/render.ts), dropped after.
own_cache=false
if [ -z "${TEST_RENDER_CACHE:-}" ]; then
  TEST_RENDER_CACHE=$(mktemp -d "${TMPDIR:-/tmp}/test-renders.XXXXXX")
  export TEST_RENDER_CACHE
  own_cache=true
fi
status=0
node --import tsx --test --test-concurrency="${TEST_CONCURRENCY:-2}" --test-reporter=spec \
  "${node_opts[@]}" "${files[@]}" || status=$?
[ "$own_cache" = false ] || rm -rf "$TEST_RENDER_CACHE"
exit "$status"
