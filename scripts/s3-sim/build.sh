#!/usr/bin/env bash
# Builds the local S3 server the backup tests run against: versitygw (an S3 gateway over a
# directory, posix backend), from the Go module proxy at the pinned VERSITYGW_VERSION.
#   scripts/s3-sim/build.sh     build once into the user cache (S3SIM_CACHE), copy to .tools/bin
# A fresh clone on the same machine only copies the cached binary. Cold build on a 2-core machine:
# a few minutes (module download included). test/helpers/s3.ts starts it on 127.0.0.1 with TLS.
set -euo pipefail
# shellcheck source=scripts/lib/help.sh
. "$(dirname "$0")/../lib/help.sh"
help_if_asked "$@"
root=$(cd "$(dirname "$0")/../.." && pwd)

# Newest release the Go module proxy serves (`go list -m -versions github.com/versity/versitygw`).
VERSITYGW_VERSION=1.8.0
VERSITYGW_MODULE=github.com/versity/versitygw

cache=${S3SIM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stock-analysis/versitygw-$VERSITYGW_VERSION}
stash=$cache/bin/versitygw
bin=${S3SIM_BIN:-$root/.tools/bin}/versitygw
log() { echo "s3-sim build [$(date +%T)] $*" >&2; }

# The binary's version is recorded beside it (versitygw prints its build-time version, which a
# plain `go install` leaves empty).
installed() { [ -x "$1" ] && [ "$(cat "$1.version" 2>/dev/null)" = "$VERSITYGW_VERSION" ]; }

if installed "$bin"; then
  log "versitygw $VERSITYGW_VERSION present in $(dirname "$bin")"
  exit 0
fi
if ! installed "$stash"; then
  command -v go >/dev/null || {
    echo "s3-sim build: Go is needed to build versitygw $VERSITYGW_VERSION" >&2
    exit 2
  }
  log "building $VERSITYGW_MODULE v$VERSITYGW_VERSION into $cache (once)"
  start=$SECONDS
  mkdir -p "$cache/bin"
  # Own module and build caches, local toolchain, two build jobs at low priority (shared cores).
  GOMODCACHE=${GOMODCACHE:-$cache/gomod} GOCACHE=${GOCACHE:-$cache/gocache} \
    GOFLAGS="-mod=mod -buildvcs=false -p=2" GOTOOLCHAIN=local GOBIN="$cache/bin" CGO_ENABLED=0 \
    nice -n 10 go install -trimpath -ldflags "-s -w" \
    "$VERSITYGW_MODULE/cmd/versitygw@v$VERSITYGW_VERSION"
  echo "$VERSITYGW_VERSION" >"$stash.version"
  log "built in $((SECONDS - start)) s"
fi
mkdir -p "$(dirname "$bin")"
cp "$stash" "$bin.tmp"
mv "$bin.tmp" "$bin"
cp "$stash.version" "$bin.version"
log "versitygw $VERSITYGW_VERSION in $(dirname "$bin")"
