#!/usr/bin/env bash
# GitHub Actions helper: which Pulumi backend the workflow's secrets configure, for one stack.
# Reads only whether each secret is set (the workflow passes `secrets.X != ''`, never the value):
#   HAS_PULUMI_ACCESS_TOKEN, HAS_PULUMI_BACKEND_URL, HAS_PULUMI_CONFIG_PASSPHRASE  true|false
#   STACK (dev|prod), PULUMI_ORG (optional repository variable: Pulumi Cloud organization),
#   FORK (true when the pull request comes from a fork: GitHub passes it no secrets)
# Writes to $GITHUB_OUTPUT (stdout when unset):
#   mode=cloud|self-managed|none  stack-name=<name for pulumi>  reason=<why none>
#   scripts/ci-pulumi-backend.sh           decide and report
#   scripts/ci-pulumi-backend.sh --require exit 1 with an ::error:: when no backend is configured
set -euo pipefail
# shellcheck source=scripts/lib/help.sh
. "$(dirname "$0")/lib/help.sh"
help_if_asked "$@"
stack=${STACK:?STACK is required}

mode=none
reason=""
stack_name=$stack
if [ "${HAS_PULUMI_BACKEND_URL:-false}" = true ] && [ "${HAS_PULUMI_CONFIG_PASSPHRASE:-false}" = true ]; then
  mode=self-managed
elif [ "${HAS_PULUMI_ACCESS_TOKEN:-false}" = true ]; then
  mode=cloud
  [ -n "${PULUMI_ORG:-}" ] && stack_name="$PULUMI_ORG/$stack"
elif [ "${FORK:-false}" = true ]; then
  reason="GitHub passes no secrets to a pull request from a fork"
elif [ "${HAS_PULUMI_BACKEND_URL:-false}" = true ]; then
  reason="PULUMI_BACKEND_URL is set but PULUMI_CONFIG_PASSPHRASE is not"
else
  reason="no PULUMI_ACCESS_TOKEN, nor PULUMI_BACKEND_URL with PULUMI_CONFIG_PASSPHRASE, among the secrets"
fi

outputs=$(printf 'mode=%s\nstack-name=%s\nreason=%s\n' "$mode" "$stack_name" "$reason")
if [ -n "${GITHUB_OUTPUT:-}" ]; then echo "$outputs" >>"$GITHUB_OUTPUT"; else echo "$outputs"; fi

if [ "$mode" = none ]; then
  if [ "${1:-}" = "--require" ]; then
    echo "::error title=no Pulumi backend ($stack)::$reason (see README, Continuous integration)"
    exit 1
  fi
  echo "::notice title=pulumi preview skipped ($stack)::$reason (see README, Continuous integration)"
else
  echo "Pulumi backend: $mode, stack $stack_name"
fi
