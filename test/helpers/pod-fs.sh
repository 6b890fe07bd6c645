#!/usr/bin/env bash
# Runs a command with the file system a container sees: in a private mount namespace of its own
# (the host's mounts are untouched), bind-mounts each volume on its mount path, then drops to the
# container's user and execs the command with the caller's environment.
#   pod-fs.sh USER SOURCE:TARGET[:ro] ... -- COMMAND [ARG...]
# USER     user (and its group) the container runs as, e.g. postgres
# SOURCE   host directory standing in for the volume (ConfigMap, Secret, emptyDir, data volume)
# TARGET   the volumeMount's mountPath; when missing, an empty directory is made for it (on the
#          host file system: a mount point only, e.g. /scripts)
# :ro      read-only, like `readOnly: true`
# Needs root (unshare, mount). Used by test/helpers/patroni.ts to run the members' Patroni with
# the rendered pod's command, volumes and paths.
set -euo pipefail
# shellcheck source=scripts/lib/help.sh
. "$(dirname "$0")/../../scripts/lib/help.sh"
help_if_asked "$@"

if [ "${POD_FS_NAMESPACED:-}" != "1" ]; then
  POD_FS_NAMESPACED=1 exec unshare --mount --propagation private -- bash "$0" "$@"
fi
unset POD_FS_NAMESPACED
# Never mount into the host's namespace.
if [ "$(readlink /proc/self/ns/mnt)" = "$(readlink /proc/1/ns/mnt)" ]; then
  echo "pod-fs: not in a private mount namespace" >&2
  exit 2
fi

[ "$#" -ge 3 ] || {
  echo "usage: pod-fs.sh USER SOURCE:TARGET[:ro] ... -- COMMAND [ARG...]" >&2
  exit 2
}
user=$1
shift
# Every source is opened before anything is mounted: a later source may lie under an earlier
# target (the sources under the host's /tmp, and /tmp a target); mounting /proc/self/fd/N binds
# the directory opened, whatever now covers its path.
fds=() targets=() modes=()
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do
  IFS=: read -r src dst mode <<<"$1"
  [ -d "$src" ] || {
    echo "pod-fs: $src is not a directory" >&2
    exit 2
  }
  exec {fd}<"$src"
  fds+=("$fd") targets+=("$dst") modes+=("${mode:-rw}")
  shift
done
for k in "${!fds[@]}"; do
  mkdir -p "${targets[$k]}"
  mount --bind "/proc/self/fd/${fds[$k]}" "${targets[$k]}"
  if [ "${modes[$k]}" = "ro" ]; then mount -o remount,bind,ro "${targets[$k]}"; fi
done
for fd in "${fds[@]}"; do exec {fd}<&-; done
# The caller's directory may be covered now; / is a container's working directory when neither
# its image (postgres:15 sets none) nor its spec names one.
cd /
if [ "${1:-}" != "--" ] || [ "$#" -lt 2 ]; then
  echo "pod-fs: no command after --" >&2
  exit 2
fi
shift
exec setpriv --reuid="$user" --regid="$user" --init-groups -- "$@"
