#!/usr/bin/env bash
# GitHub Actions helper: the pull-request report of one stack, in Markdown, from what the
# workflow's steps left in DIR (diff.md, diff.err, policy.txt) and their results in the environment:
#   DIFF_RC      exit code of `npm run diff` (0 no change, 1 changes, other: error; empty: not run)
#   POLICY_RC    exit code of `npm run policy` (0 pass, 1 mandatory violation; empty: not run)
#   PREVIEW_MODE cloud|self-managed|none, PREVIEW_REASON (why none),
#   PREVIEW_OUTCOME success|failure|skipped|'' (the pulumi/actions step's outcome)
#   BASE_REF     the base branch, RUN_URL the workflow run (for links)
#   scripts/ci-pr-report.sh STACK DIR   prints the report; with GITHUB_OUTPUT set, also writes
#                                       failed=true|false there (diff error, policy or preview failed)
set -euo pipefail
# shellcheck source=scripts/lib/help.sh
. "$(dirname "$0")/lib/help.sh"
help_if_asked "$@"
stack=${1:?usage: scripts/ci-pr-report.sh STACK DIR}
dir=${2:?usage: scripts/ci-pr-report.sh STACK DIR}
run_url=${RUN_URL:-}
# A PR comment holds at most 65536 characters and carries both stacks: cap each part.
max_diff=${MAX_DIFF_CHARS:-24000}
max_policy=${MAX_POLICY_CHARS:-6000}

failed=false
# Prints FILE's whole lines up to about MAX characters, then a note that the rest is in the run.
capped() {
  local file=$1 max=$2
  [ -s "$file" ] || return 0
  awk -v max="$max" -v url="$run_url" '
    { n += length($0) + 1 }
    n > max { cut = 1; exit }
    { print }
    END {
      if (!cut) exit
      where = url == "" ? "the workflow run" : "the [workflow run](" url ")"
      printf "\n… cut here (%d characters max): the whole output is in %s.\n", max, where
    }
  ' "$file"
}

case "${DIFF_RC:-}" in
  0) diff_result="no change" ;;
  1) diff_result="changes" ;;
  "") diff_result="**not run** (an earlier step failed)" failed=true ;;
  *) diff_result="**error** (exit $DIFF_RC)" failed=true ;;
esac
case "${POLICY_RC:-}" in
  0) policy_result="pass (no mandatory violation)" ;;
  1) policy_result="**mandatory violation**" failed=true ;;
  "") policy_result="**not run** (an earlier step failed)" failed=true ;;
  *) policy_result="**error** (exit $POLICY_RC)" failed=true ;;
esac
case "${PREVIEW_MODE:-none}:${PREVIEW_OUTCOME:-}" in
  none:*) preview_result="skipped: ${PREVIEW_REASON:-no Pulumi backend configured}" ;;
  *:success) preview_result="succeeded (${PREVIEW_MODE} backend; output in the job summary)" ;;
  *:failure) preview_result="**failed** (${PREVIEW_MODE} backend; see the job log)" failed=true ;;
  *) preview_result="not run (an earlier step failed)" ;;
esac

echo "### \`$stack\`"
echo
echo "| check | result |"
echo "|---|---|"
echo "| \`npm run diff\` against \`origin/${BASE_REF:-main}\` | $diff_result |"
echo "| \`npm run policy\` | $policy_result |"
echo "| \`pulumi preview\` with the policy pack | $preview_result |"
echo
if [ -s "$dir/diff.md" ]; then
  capped "$dir/diff.md" "$max_diff"
  echo
fi
if [ -s "$dir/diff.err" ] && [ "${DIFF_RC:-}" != 0 ] && [ "${DIFF_RC:-}" != 1 ]; then
  echo '```text'
  capped "$dir/diff.err" "$max_policy"
  echo '```'
  echo
fi
if [ -s "$dir/policy.txt" ]; then
  open=""
  [ "${POLICY_RC:-}" = 0 ] || open=" open"
  echo "<details$open><summary>Policy report (<code>npm run policy -- --stack $stack</code>)</summary>"
  echo
  echo '```text'
  capped "$dir/policy.txt" "$max_policy"
  echo '```'
  echo
  echo "</details>"
  echo
fi

if [ -n "${GITHUB_OUTPUT:-}" ]; then echo "failed=$failed" >>"$GITHUB_OUTPUT"; fi
