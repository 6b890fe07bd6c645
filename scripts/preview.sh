#!/usr/bin/env bash
# `npm run preview -- <stack> [pulumi preview flags...]`: the real engine's preview of a stack.
# Local file backend (.pulumi-state/), passphrase secrets (scripts/pulumi), no plugin downloads,
# the policy pack with the stack's policy config when policies/PulumiPolicy.yaml exists.
# Needs the toolchain from scripts/install-pulumi (exit 3 with its status when incomplete).
# No cluster needed: dev (mode=kind) gives the provider a kubeconfig that is unknown until the kind
# cluster exists, and with an unreachable cluster (prod without credentials) the provider
# previews from the program's inputs alone.
set -euo pipefail
# shellcheck source=scripts/lib/help.sh
. "$(dirname "$0")/lib/help.sh"
help_if_asked "$@"
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

stack=${1:-}
if [ -z "$stack" ] || [ "${stack#-}" != "$stack" ]; then
  echo "usage: npm run preview -- <stack> [pulumi preview flags...]" >&2
  exit 2
fi
shift

if ! status=$(scripts/install-pulumi --check 2>&1); then
  echo "$status" >&2
  echo "preview: the Pulumi toolchain is incomplete: run scripts/install-pulumi" >&2
  exit 3
fi

config=$(scripts/pulumi-stack-config "$stack")
policy=()
if [ -f policies/PulumiPolicy.yaml ]; then
  if [ ! -d policies/node_modules ]; then
    echo "preview: policies/node_modules missing: run scripts/setup.sh (npm ci in policies/)" >&2
    exit 2
  fi
  policy=(--policy-pack policies)
  [ -f "policies/$stack.json" ] && policy+=(--policy-pack-config "policies/$stack.json")
fi

exec scripts/pulumi preview --stack "$stack" --config-file "$config" --non-interactive \
  ${policy[@]+"${policy[@]}"} "$@"
