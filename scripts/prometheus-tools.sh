#!/usr/bin/env bash
# Builds promtool, prometheus, amtool and alertmanager at the versions the stacks deploy, once:
#   scripts/prometheus-tools.sh           build if needed, copy into .tools/prometheus/bin
#   scripts/prometheus-tools.sh --print   print the versions it builds (image tag and Go module)
# The versions are read from the image defaults in components/config/monitoring.ts (one place):
# Prometheus vX.Y.Z is Go module github.com/prometheus/prometheus v0.Y.Z; Alertmanager vA.B.C is
# github.com/prometheus/alertmanager vA.B.C. When the Go module proxy does not serve a patch
# release, the nearest lower served patch of the same minor is built and the script says so.
# Binaries are kept in the user cache (PROM_TOOLS_CACHE) so a fresh clone on the same machine only
# copies them. Cold build on a 2-core machine: see README "Tools built from source".
set -euo pipefail
# shellcheck source=scripts/lib/help.sh
. "$(dirname "$0")/lib/help.sh"
help_if_asked "$@"
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

image_tag() {
  sed -n "s|.*\"quay.io/prometheus/$1:v\([0-9][0-9.]*\)\".*|\1|p" components/config/monitoring.ts | head -n 1
}
PROMETHEUS_VERSION=$(image_tag prometheus)
ALERTMANAGER_VERSION=$(image_tag alertmanager)
if [ -z "$PROMETHEUS_VERSION" ] || [ -z "$ALERTMANAGER_VERSION" ]; then
  echo "prometheus-tools: image versions not found in components/config/monitoring.ts" >&2
  exit 2
fi

CACHE=${PROM_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stock-analysis/prometheus-tools}
BIN=${PROM_TOOLS_BIN:-$root/.tools/prometheus/bin}
export GOMODCACHE=${GOMODCACHE:-$CACHE/gomod} GOCACHE=${GOCACHE:-$CACHE/gocache}
export GOFLAGS="-mod=mod -buildvcs=false" GOTOOLCHAIN=local CGO_ENABLED=0
log() { echo "prometheus-tools [$(date +%T)] $*" >&2; }

module_served() { go list -m -json "$1@$2" >/dev/null 2>&1; }
# Newest served vMAJOR.MINOR.P with P <= the wanted patch.
served_version() {
  local module=$1 wanted=$2 patch=${2##*.} base=${2%.*}
  while [ "$patch" -ge 0 ]; do
    if module_served "$module" "$base.$patch"; then
      [ "$base.$patch" = "$wanted" ] || log "$module $wanted is not served; using $base.$patch"
      echo "$base.$patch"
      return 0
    fi
    patch=$((patch - 1))
  done
  echo "prometheus-tools: no $module ${base}.x is served" >&2
  return 1
}

wanted_prom_module="v0.${PROMETHEUS_VERSION#*.}"
wanted_am_module="v$ALERTMANAGER_VERSION"
if [ "${1:-}" = "--print" ]; then
  echo "prometheus image v$PROMETHEUS_VERSION -> github.com/prometheus/prometheus $wanted_prom_module"
  echo "alertmanager image v$ALERTMANAGER_VERSION -> github.com/prometheus/alertmanager $wanted_am_module"
  exit 0
fi

stamp="prometheus-$PROMETHEUS_VERSION alertmanager-$ALERTMANAGER_VERSION"
binaries=(promtool prometheus amtool alertmanager)
have_all() {
  local b
  for b in "${binaries[@]}"; do [ -x "$1/$b" ] || return 1; done
  [ "$(cat "$1/.versions" 2>/dev/null)" = "$stash_versions" ]
}

command -v go >/dev/null || {
  echo "prometheus-tools: Go is needed to build promtool/amtool" >&2
  exit 2
}
stash=$CACHE/bin-${stamp// /-}
# What the stash holds: the image versions asked for and the module versions built.
if [ -f "$stash/.versions" ]; then
  stash_versions=$(cat "$stash/.versions")
  if have_all "$BIN"; then
    log "binaries present in $BIN ($stash_versions)"
    exit 0
  fi
fi

if [ ! -f "$stash/.versions" ]; then
  start=$SECONDS
  prom_module=$(served_version github.com/prometheus/prometheus "$wanted_prom_module")
  am_module=$(served_version github.com/prometheus/alertmanager "$wanted_am_module")
  mkdir -p "$stash"
  # The tools print these with --version (github.com/prometheus/common/version).
  ldflags() {
    local v=github.com/prometheus/common/version
    echo "-s -w -X $v.Version=$1 -X $v.Revision=module-$2 -X $v.Branch=HEAD -X $v.BuildUser=prometheus-tools.sh"
  }

  # Prometheus' go.mod has replace/exclude directives, so `go install module@version` refuses it:
  # build from a consumer module that copies them.
  src=$CACHE/src/prometheus-$prom_module
  mkdir -p "$src"
  (
    cd "$src"
    if [ ! -f .ready ]; then
      rm -f go.mod go.sum
      go mod init prometheustools/prometheus >/dev/null 2>&1
      go mod edit -require "github.com/prometheus/prometheus@$prom_module"
      upstream=$(go mod download -json "github.com/prometheus/prometheus@$prom_module" |
        sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
      # `replace a => b vX` lines (single or in a block) and `exclude a vX` lines.
      awk '/^replace \(/ { r = 1; next } /^exclude \(/ { x = 1; next } /^\)/ { r = 0; x = 0; next }
        r && $2 == "=>" { print "replace", $1 "=" $3 "@" $4; next }
        /^replace / && $3 == "=>" { print "replace", $2 "=" $4 "@" $5; next }
        x && NF >= 2 && $1 !~ /^\/\// { print "exclude", $1 "@" $2; next }
        /^exclude / && NF >= 3 && $2 != "(" { print "exclude", $2 "@" $3 }' "$upstream" |
        while read -r kind arg; do go mod edit "-$kind" "$arg"; done
      cat >tools.go <<'EOF'
//go:build tools

// Package tools pins the commands this module builds.
package tools

import (
	_ "github.com/prometheus/prometheus/cmd/prometheus"
	_ "github.com/prometheus/prometheus/cmd/promtool"
)
EOF
      log "resolving github.com/prometheus/prometheus $prom_module dependencies"
      go mod tidy -e >/dev/null
      touch .ready
    fi
    log "building promtool and prometheus $prom_module"
    nice -n 10 go build -p 2 -trimpath -ldflags "$(ldflags "2.${prom_module#v0.}" "$prom_module")" \
      -o "$stash/" github.com/prometheus/prometheus/cmd/promtool github.com/prometheus/prometheus/cmd/prometheus
  )

  log "building amtool and alertmanager $am_module"
  GOBIN=$stash nice -n 10 go install -p 2 -trimpath -ldflags "$(ldflags "${am_module#v}" "$am_module")" \
    "github.com/prometheus/alertmanager/cmd/amtool@$am_module" \
    "github.com/prometheus/alertmanager/cmd/alertmanager@$am_module"
  echo "$stamp modules prometheus-$prom_module alertmanager-$am_module" >"$stash/.versions"
  log "built in $((SECONDS - start)) s"
fi

stash_versions=$(cat "$stash/.versions")
mkdir -p "$BIN"
for b in "${binaries[@]}"; do
  cp "$stash/$b" "$BIN/$b.tmp"
  mv "$BIN/$b.tmp" "$BIN/$b"
done
cp "$stash/.versions" "$BIN/.versions"
log "binaries copied to $BIN ($stash_versions)"
