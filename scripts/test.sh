#!/usr/bin/env bash
# Runs the test suite with Node's built-in runner (each file in its own process,
# so Pulumi mocks and daemons never leak between files).
#   scripts/test.sh            every suite under test/ except test/engine (test/cluster starts the
#                              simulated cluster that scripts/setup.sh --tools builds)
#   scripts/test.sh unit       only test/unit (fast, no daemons)
#   scripts/test.sh <dir>...   only the given folders under test/
#   scripts/test.sh engine     the real-engine tests (npm run test:engine): they need the Pulumi
#                              toolchain of scripts/install-pulumi and run only when asked for
set -euo pipefail
# shellcheck source=scripts/lib/help.sh
. "$(dirname "$0")/lib/help.sh"
help_if_asked "$@"
cd "$(dirname "$0")/.."

dirs=()
if [ "$#" -eq 0 ]; then
  dirs=(test)
else
  for d in "$@"; do dirs+=("test/$d"); done
fi

prune=()
[ "$#" -eq 0 ] && prune=(-path test/engine -prune -o)
mapfile -t files < <(find "${dirs[@]}" "${prune[@]}" -name '*.test.ts' -type f -print | sort)
if [ "${#files[@]}" -eq 0 ]; then
  echo "no test files under ${dirs[*]}" >&2
  exit 1
fi

exec node --import tsx --test --test-concurrency="${TEST_CONCURRENCY:-2}" --test-reporter=spec "${files[@]}"
