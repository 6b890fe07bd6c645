# shellcheck shell=bash
# Sourced by the operator scripts that act on a live cluster (scripts/pg-failover, pg-restore,
# redis-restore): they act on the cluster the stack's config names, never on whatever kubectl
# context happens to be current.
#   kube_target_args "$@"   takes out --stack S, --context C, --yes/-y (anywhere on the line);
#                           the other arguments are left in KT_ARGS
#   kube_target             resolves the stack's context and namespace (scripts/lib/kube-target.ts),
#                           prints the target (context, API server URL, namespace) on stderr, and
#                           on prod asks for confirmation unless --yes; no terminal and no --yes:
#                           refuses with one line (exit 2). KT_READ_ONLY=true skips the question.
#   kt [args...]            kubectl with the target's --context/--kubeconfig and -n namespace
# Env: KUBECTL (kubectl), NAMESPACE (overrides the stack's namespace).

KT_ARGS=()
KT_STACK=""
KT_CONTEXT=""
KT_YES=false

kube_target_args() {
  while [ $# -gt 0 ]; do
    case $1 in
      --stack | --context)
        if [ $# -lt 2 ] || [ -z "$2" ]; then
          echo "$(basename "$0"): $1 needs a value" >&2
          exit 2
        fi
        if [ "$1" = --stack ]; then KT_STACK=$2; else KT_CONTEXT=$2; fi
        shift 2
        ;;
      --stack=* | --context=*)
        if [[ $1 == --stack=* ]]; then KT_STACK=${1#*=}; else KT_CONTEXT=${1#*=}; fi
        shift
        ;;
      --yes | -y)
        KT_YES=true
        shift
        ;;
      *)
        KT_ARGS+=("$1")
        shift
        ;;
    esac
  done
}

kube_target() {
  local root line resolved kubectl server
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  local args=()
  [ -n "$KT_STACK" ] && args+=(--stack "$KT_STACK")
  [ -n "$KT_CONTEXT" ] && args+=(--context "$KT_CONTEXT")
  # On a problem the resolver has printed its one line.
  resolved=$(cd "$root" && node --import tsx scripts/lib/kube-target.ts "${args[@]}") || exit 2
  KT_PROD=false KT_KUBECONFIG="" KT_NAMESPACE=""
  while IFS= read -r line; do
    case $line in
      context=*) KT_CONTEXT=${line#*=} ;;
      kubeconfig=*) KT_KUBECONFIG=${line#*=} ;;
      namespace=*) KT_NAMESPACE=${line#*=} ;;
      prod=*) KT_PROD=${line#*=} ;;
    esac
  done <<<"$resolved"
  KT_NAMESPACE=${NAMESPACE:-$KT_NAMESPACE}
  kubectl=${KUBECTL:-kubectl}
  KT_KUBECTL=("$kubectl" --context "$KT_CONTEXT")
  [ -n "$KT_KUBECONFIG" ] && KT_KUBECTL+=(--kubeconfig "$KT_KUBECONFIG")
  # The API server URL comes from the kubeconfig; an unknown context fails here, before any action.
  server=$("${KT_KUBECTL[@]}" config view --minify -o 'jsonpath={.clusters[0].cluster.server}' 2>/dev/null) ||
    server=""
  if [ -z "$server" ]; then
    echo "$(basename "$0"): kubeconfig has no context \"$KT_CONTEXT\"${KT_KUBECONFIG:+ (in $KT_KUBECONFIG)}" >&2
    exit 2
  fi
  local what="context $KT_CONTEXT ($server), namespace $KT_NAMESPACE"
  local ask=true
  if [ "$KT_PROD" != true ] || [ "$KT_YES" = true ] || [ "${KT_READ_ONLY:-false}" = true ]; then
    ask=false
  elif ! [ -t 0 ]; then
    # The refusal is the one line: it names the target itself.
    echo "$(basename "$0"): refusing to act on prod ($what) without confirmation: no terminal; pass --yes" >&2
    exit 2
  fi
  echo "target: $what${KT_STACK:+, stack $KT_STACK}$([ "$KT_PROD" = true ] && echo ' [PROD]')" >&2
  [ "$ask" = true ] || return 0
  local answer
  read -r -p "Act on PROD ($what)? Type the context name to go on: " answer
  [ "$answer" = "$KT_CONTEXT" ] || {
    echo "$(basename "$0"): not confirmed; nothing done" >&2
    exit 2
  }
}

kt() { "${KT_KUBECTL[@]}" -n "$KT_NAMESPACE" "$@"; }
