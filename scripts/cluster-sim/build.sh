#!/usr/bin/env bash
# Builds the simulated cluster's binaries from the Go module proxy, once:
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl (one Kubernetes release)
#   and kwok. Binaries land in .tools/cluster-sim/bin; a versioned copy is kept in the user cache
#   (SIM_CACHE) so that a fresh clone on the same machine only copies them.
# Versions: scripts/cluster-sim/versions.env. Go's module and build caches live under SIM_CACHE.
set -euo pipefail
# shellcheck source=scripts/lib/help.sh
. "$(dirname "$0")/../lib/help.sh"
help_if_asked "$@"
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=scripts/cluster-sim/versions.env
. "$here/versions.env"

SIM_CACHE=${SIM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stock-analysis/cluster-sim}
BIN=${SIM_BIN:-$root/.tools/cluster-sim/bin}
stash="$SIM_CACHE/bin-k8s$K8S_VERSION-etcd$ETCD_VERSION-kwok$KWOK_VERSION"
export GOMODCACHE=${GOMODCACHE:-$SIM_CACHE/gomod} GOCACHE=${GOCACHE:-$SIM_CACHE/gocache}
export GOFLAGS="-mod=mod -buildvcs=false" GOTOOLCHAIN=local
mkdir -p "$BIN" "$stash"

binaries=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok)
log() { echo "cluster-sim build [$(date +%T)] $*" >&2; }
have_all() {
  local b
  for b in "${binaries[@]}"; do [ -x "$1/$b" ] || return 1; done
  [ -f "$1/kwok-stages/pv-delete.yaml" ]
}

if have_all "$BIN" && [ "$(cat "$BIN/.versions" 2>/dev/null)" = "$K8S_VERSION $ETCD_VERSION $KWOK_VERSION" ]; then
  log "binaries present in $BIN"
  exit 0
fi

module_served() { go list -m -json "$1@$2" >/dev/null 2>&1; }

# k8s.io/kubernetes replaces its staging modules with ./staging/src/...; a consumer module must
# pin each to a published v0.<minor>.<patch>. A few are served only at the previous patch, and
# modules none of our binaries import may be missing entirely (they get an empty local module).
kubernetes_consumer() {
  local dir=$SIM_CACHE/src/kubernetes-$K8S_VERSION
  mkdir -p "$dir"
  cd "$dir"
  if [ -f go.sum ] && [ -f .ready ]; then return 0; fi
  rm -f go.mod go.sum .ready
  go mod init simcluster/kubernetes >/dev/null 2>&1
  go mod edit -require "k8s.io/kubernetes@v$K8S_VERSION"
  local upstream staging_version fallback patch m
  upstream=$(go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p')
  staging_version="v0.${K8S_VERSION#1.}"
  patch=${K8S_VERSION##*.}
  fallback="${staging_version%.*}.$((patch - 1))"
  while read -r m; do
    if module_served "$m" "$staging_version"; then
      go mod edit -replace "$m=$m@$staging_version"
    elif module_served "$m" "$fallback"; then
      log "$m: $staging_version not served, pinned to $fallback"
      go mod edit -replace "$m=$m@$fallback"
    else
      log "$m: not served, replaced by an empty module (no binary here imports it)"
      mkdir -p "empty/$m"
      printf 'module %s\n\ngo 1.22\n' "$m" >"empty/$m/go.mod"
      go mod edit -replace "$m=./empty/$m"
    fi
  done < <(awk '$2 == "=>" && $3 ~ /^\.\/staging\// { print $1 }' "$upstream" | sort -u)
  cat >imports.go <<'EOF'
//go:build tools

// Package binaries pins the commands this module builds.
package binaries

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
EOF
  log "resolving k8s.io/kubernetes v$K8S_VERSION dependencies"
  go mod tidy
  touch .ready
}

build_kubernetes() {
  kubernetes_consumer
  local minor=${K8S_VERSION#1.}
  minor=${minor%%.*}
  local version_flags="-X k8s.io/component-base/version.gitVersion=v$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean -X k8s.io/client-go/pkg/version.gitVersion=v$K8S_VERSION -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=$minor"
  log "building kube-apiserver, kube-controller-manager, kube-scheduler, kubectl (the longest step)"
  go build -trimpath -ldflags "-s -w $version_flags" -o "$stash/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl
}

build_etcd() {
  local dir=$SIM_CACHE/src/etcd-$ETCD_VERSION
  mkdir -p "$dir"
  cd "$dir"
  if [ ! -f .ready ]; then
    rm -f go.mod go.sum
    go mod init simcluster/etcd >/dev/null 2>&1
    go mod edit -require "go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
    # etcd's own modules must all come from the same release.
    local m
    for m in api/v3 client/pkg/v3 client/v3 pkg/v3 raft/v3; do
      go mod edit -replace "go.etcd.io/etcd/$m=go.etcd.io/etcd/$m@v$ETCD_VERSION"
    done
    go mod edit -replace "go.etcd.io/etcd/client/v2=go.etcd.io/etcd/client/v2@v2.305.${ETCD_VERSION##*.}"
    printf '//go:build tools\n\npackage binaries\n\nimport _ "go.etcd.io/etcd/server/v3"\n' >imports.go
    go mod tidy
    touch .ready
  fi
  log "building etcd $ETCD_VERSION"
  go build -trimpath -ldflags "-s -w" -o "$stash/etcd" go.etcd.io/etcd/server/v3
}

build_kwok() {
  log "building kwok $KWOK_VERSION"
  GOBIN=$stash go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
}

# kwok's own default stages (node, pod and volume lifecycles), as its module ships them.
kwok_stages() {
  local src=$GOMODCACHE/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/stage f
  [ -d "$src" ] || go mod download "sigs.k8s.io/kwok@$KWOK_VERSION"
  mkdir -p "$stash/kwok-stages"
  for f in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
    pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete volume/fast/pvc-provision \
    volume/fast/pvc-delete volume/fast/pv-bind volume/fast/pv-delete; do
    cp -f "$src/$f.yaml" "$stash/kwok-stages/"
  done
}

t0=$(date +%s)
if ! have_all "$stash"; then
  command -v go >/dev/null || {
    echo "cluster-sim build: Go is needed to build the simulated cluster" >&2
    exit 1
  }
  [ -x "$stash/kwok" ] || build_kwok
  [ -f "$stash/kwok-stages/pv-delete.yaml" ] || kwok_stages
  [ -x "$stash/etcd" ] || build_etcd
  if [ ! -x "$stash/kube-apiserver" ] || [ ! -x "$stash/kubectl" ]; then build_kubernetes; fi
fi
for b in "${binaries[@]}"; do cp -f "$stash/$b" "$BIN/$b"; done
rm -rf "$BIN/kwok-stages"
cp -r "$stash/kwok-stages" "$BIN/kwok-stages"
echo "$K8S_VERSION $ETCD_VERSION $KWOK_VERSION" >"$BIN/.versions"
log "done in $(($(date +%s) - t0)) s: ${binaries[*]} in $BIN"
