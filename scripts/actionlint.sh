#!/usr/bin/env bash
# Lints the GitHub Actions workflows (.github/workflows/*.yml) with actionlint, which also runs
# ShellCheck over every `run:` script when shellcheck is on PATH.
#   scripts/actionlint.sh            build if needed, then lint
#   scripts/actionlint.sh --install  only build/copy the binary into .tools/bin
# actionlint is built once from the Go module proxy at the pinned ACTIONLINT_VERSION into the user
# cache (ACTIONLINT_CACHE) and copied into .tools/bin, so a fresh clone on the same machine only
# copies it. Cold build on a 2-core machine: about 50 s (module download included).
set -euo pipefail
# shellcheck source=scripts/lib/help.sh
. "$(dirname "$0")/lib/help.sh"
help_if_asked "$@"
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# Newest release the Go module proxy serves (`go list -m -versions github.com/rhysd/actionlint`).
ACTIONLINT_VERSION=1.7.12
ACTIONLINT_MODULE=github.com/rhysd/actionlint

cache=${ACTIONLINT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stock-analysis/actionlint-$ACTIONLINT_VERSION}
stash=$cache/bin/actionlint
bin=$root/.tools/bin/actionlint
log() { echo "actionlint [$(date +%T)] $*" >&2; }

installed_version() { "$1" -version 2>/dev/null | head -n 1; }

if [ ! -x "$bin" ] || [ "$(installed_version "$bin")" != "v$ACTIONLINT_VERSION" ]; then
  if [ ! -x "$stash" ] || [ "$(installed_version "$stash")" != "v$ACTIONLINT_VERSION" ]; then
    command -v go >/dev/null || {
      echo "actionlint: Go is needed to build actionlint v$ACTIONLINT_VERSION" >&2
      exit 2
    }
    log "building $ACTIONLINT_MODULE v$ACTIONLINT_VERSION into $cache (once)"
    start=$SECONDS
    mkdir -p "$cache/bin"
    # Own module and build caches, local toolchain, two build jobs at low priority (shared cores).
    # `go install module@version` records the version in the binary (-version prints it).
    GOMODCACHE=${GOMODCACHE:-$cache/gomod} GOCACHE=${GOCACHE:-$cache/gocache} \
      GOFLAGS="-mod=mod -buildvcs=false -p=2" GOTOOLCHAIN=local GOBIN="$cache/bin" CGO_ENABLED=0 \
      nice -n 10 go install \
      -ldflags "-s -w" \
      "$ACTIONLINT_MODULE/cmd/actionlint@v$ACTIONLINT_VERSION"
    log "built in $((SECONDS - start)) s"
  fi
  mkdir -p "$(dirname "$bin")"
  cp "$stash" "$bin.tmp"
  mv "$bin.tmp" "$bin"
fi

[ "${1:-}" = "--install" ] && exit 0

shopt -s nullglob
workflows=(.github/workflows/*.yml .github/workflows/*.yaml)
if [ "${#workflows[@]}" -eq 0 ]; then
  echo "actionlint: no workflow under .github/workflows" >&2
  exit 1
fi
if ! command -v shellcheck >/dev/null; then
  echo "actionlint: shellcheck not on PATH, run: scripts are not checked" >&2
fi
"$bin" -no-color "${workflows[@]}"
echo "actionlint v$ACTIONLINT_VERSION: ${#workflows[@]} workflows clean"
