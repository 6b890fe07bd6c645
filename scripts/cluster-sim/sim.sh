#!/usr/bin/env bash
# A Kubernetes control plane on loopback for the e2e: etcd, kube-apiserver (RBAC, default
# admission plugins, PodSecurity among them), kube-controller-manager, kube-scheduler and kwok,
# which fakes the Nodes and the pod lifecycle (Pods turn Ready, Job pods Succeed) and provisions
# PersistentVolumes for StorageClasses whose provisioner is kwok.x-k8s.io/volume. No container
# ever runs: probes, images and commands are not exercised here.
#
#   sim.sh start DIR   start everything into DIR (random ports, fresh PKI), add the fake Nodes;
#                      writes DIR/env.sh (to source) and DIR/cluster.json (kubeconfig, context, server)
#   sim.sh stop DIR    stop what DIR/pids lists, newest first (TERM, then KILL after 10 s)
#
# Env: SIM_BIN (default .tools/cluster-sim/bin, built by build.sh), SIM_NODES (6), SIM_ZONES (3),
#      SIM_NODE_CPU (16), SIM_NODE_MEMORY (64Gi). StorageClasses, namespaces and other
#      prerequisites are not created here: the e2e adds exactly what the stack's preflight names.
set -euo pipefail
# shellcheck source=scripts/lib/help.sh
. "$(dirname "$0")/../lib/help.sh"
help_if_asked "$@"
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
BIN=${SIM_BIN:-$root/.tools/cluster-sim/bin}
CONTEXT=sim
PROVISIONER=kwok.x-k8s.io/volume

say() { echo "cluster-sim [$(date +%T)] $*" >&2; }
die() {
  say "error: $*"
  exit 1
}

stop_all() { # TERM to every recorded daemon (newest first), KILL what still runs after 10 s
  local dir=$1 name pid
  [ -f "$dir/pids" ] || return 0
  local -a names=() pids=()
  while read -r name pid; do
    kill -0 "$pid" 2>/dev/null || continue
    kill -TERM "$pid" 2>/dev/null || true
    names+=("$name") pids+=("$pid")
  done < <(tac "$dir/pids")
  local i deadline=$((SECONDS + 10))
  for i in "${!pids[@]}"; do
    while kill -0 "${pids[$i]}" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    if kill -0 "${pids[$i]}" 2>/dev/null; then
      kill -KILL "${pids[$i]}" 2>/dev/null || true
      say "killed ${names[$i]} (${pids[$i]}) after 10 s"
    fi
  done
  say "stopped ${names[*]:-nothing}"
  rm -f "$dir/pids"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# spawn NAME CMD...: runs a daemon with its log under DIR/logs and records its PID.
spawn() {
  local name=$1
  shift
  "$@" >"$DIR/logs/$name.log" 2>&1 &
  echo "$name $!" >>"$DIR/pids"
}

# wait_for WHAT SECONDS CMD...: polls CMD; fails at the deadline, or at once when a daemon died.
wait_for() {
  local what=$1 seconds=$2
  shift 2
  local deadline=$((SECONDS + seconds)) name pid
  until "$@" >/dev/null 2>&1; do
    while read -r name pid; do
      kill -0 "$pid" 2>/dev/null ||
        die "$name exited while waiting for $what: $(tail -n 3 "$DIR/logs/$name.log" 2>/dev/null)"
    done <"$DIR/pids"
    [ "$SECONDS" -lt "$deadline" ] || die "$what not ready after ${seconds}s (logs in $DIR/logs)"
    sleep 0.2
  done
}

make_pki() {
  local pki=$DIR/pki
  mkdir -p "$pki"
  # EC keys: generated in milliseconds, where RSA costs seconds per start.
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1)
  openssl req -x509 "${ec[@]}" -nodes -days 3 -subj "/CN=cluster-sim" \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
  # cert NAME SUBJECT [SAN]: a leaf signed by the CA; with a SAN it also serves TLS.
  cert() {
    local usage="extendedKeyUsage=clientAuth"
    [ -n "${3:-}" ] && usage="extendedKeyUsage=serverAuth,clientAuth
subjectAltName=$3"
    printf 'keyUsage=critical,digitalSignature,keyEncipherment\n%s\n' "$usage" >"$pki/$1.ext"
    openssl req "${ec[@]}" -nodes -subj "$2" -keyout "$pki/$1.key" -out "$pki/$1.csr" 2>/dev/null
    openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
      -days 3 -extfile "$pki/$1.ext" -out "$pki/$1.crt" 2>/dev/null
  }
  cert apiserver "/CN=kube-apiserver" \
    "IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert admin "/O=system:masters/CN=sim-admin"
  cert controller-manager "/CN=system:kube-controller-manager"
  cert scheduler "/CN=system:kube-scheduler"
  cert kwok "/O=system:masters/CN=kwok"
  openssl ecparam -name prime256v1 -genkey -noout -out "$pki/service-accounts.key" 2>/dev/null
  openssl ec -in "$pki/service-accounts.key" -pubout -out "$pki/service-accounts.pub" 2>/dev/null
}

kubeconfig_for() { # kubeconfig_for USER -> DIR/USER.kubeconfig
  cat >"$DIR/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: $CONTEXT
    cluster:
      server: https://127.0.0.1:$API_PORT
      certificate-authority: $DIR/pki/ca.crt
users:
  - name: $1
    user:
      client-certificate: $DIR/pki/$1.crt
      client-key: $DIR/pki/$1.key
contexts:
  - name: $CONTEXT
    context: { cluster: $CONTEXT, user: $1 }
current-context: $CONTEXT
EOF
}

# kwok's own stages from its module (copied next to the binaries by build.sh): node init and
# heartbeat, pod ready/complete/delete. The volume stages act only on claims the PV controller
# handed to our provisioner, which it does only when the claim's StorageClass exists: a claim
# naming a missing class stays Pending, as on a real cluster.
kwok_config() {
  local stages=$BIN/kwok-stages f
  [ -d "$stages" ] || die "no kwok stages in $stages (run scripts/cluster-sim/build.sh)"
  ours() { # CEL: the object's annotation $1 names our provisioner (sed replacement, & escaped)
    echo "has(self.metadata.annotations) \\&\\& '$1' in self.metadata.annotations \\&\\& self.metadata.annotations['$1'] == '$PROVISIONER'"
  }
  local claim_ours volume_ours
  claim_ours=$(ours volume.kubernetes.io/storage-provisioner)
  volume_ours=$(ours pv.kubernetes.io/provisioned-by)
  for f in node-initialize node-heartbeat-with-lease pod-ready pod-complete pod-delete; do
    echo "---"
    cat "$stages/$f.yaml"
  done
  for f in pvc-provision pvc-delete; do
    echo "---"
    sed "s|self.spec.storageClassName == 'kwok-volume'|$claim_ours|" "$stages/$f.yaml"
  done
  for f in pv-bind pv-delete; do
    echo "---"
    sed "s|self.spec.storageClassName == 'kwok-volume'|$volume_ours|" "$stages/$f.yaml"
  done
}

fake_nodes() {
  local n=${SIM_NODES:-6} zones=${SIM_ZONES:-3} cpu=${SIM_NODE_CPU:-16} mem=${SIM_NODE_MEMORY:-64Gi} i
  for i in $(seq 1 "$n"); do
    cat <<EOF
---
apiVersion: v1
kind: Node
metadata:
  name: sim-$i
  annotations: { kwok.x-k8s.io/node: fake }
  labels:
    kubernetes.io/hostname: sim-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    topology.kubernetes.io/zone: zone-$(((i - 1) % zones + 1))
spec: {}
status:
  capacity: { cpu: "$cpu", memory: $mem, pods: "110", ephemeral-storage: 100Gi }
  allocatable: { cpu: "$cpu", memory: $mem, pods: "110", ephemeral-storage: 100Gi }
  addresses: [{ type: InternalIP, address: "10.10.0.$i" }]
  nodeInfo: { architecture: amd64, operatingSystem: linux, kubeletVersion: fake, kubeProxyVersion: fake }
EOF
  done
}

on_start_exit() {
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    say "start failed; stopping what started"
    stop_all "$DIR"
  fi
  exit "$rc"
}

start() {
  local b
  for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok; do
    [ -x "$BIN/$b" ] || die "missing $BIN/$b: run scripts/cluster-sim/build.sh"
  done
  mkdir -p "$DIR/logs" "$DIR/etcd"
  chmod 700 "$DIR/etcd"
  : >"$DIR/pids"
  # Whatever fails below leaves no daemon behind.
  trap 'on_start_exit' EXIT
  local t0=$SECONDS
  ETCD_PORT=$(free_port)
  API_PORT=$(free_port)
  local peer_port
  peer_port=$(free_port)
  say "PKI and kubeconfigs in $DIR"
  make_pki
  for b in admin controller-manager scheduler kwok; do kubeconfig_for "$b"; done

  say "etcd on 127.0.0.1:$ETCD_PORT"
  spawn etcd "$BIN/etcd" --name sim --data-dir "$DIR/etcd" --log-level warn \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "sim=http://127.0.0.1:$peer_port" --listen-metrics-urls ""
  wait_for etcd 30 curl -sf "http://127.0.0.1:$ETCD_PORT/health"

  say "kube-apiserver on https://127.0.0.1:$API_PORT"
  spawn kube-apiserver "$BIN/kube-apiserver" --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
    --secure-port="$API_PORT" --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
    --tls-cert-file="$DIR/pki/apiserver.crt" --tls-private-key-file="$DIR/pki/apiserver.key" \
    --client-ca-file="$DIR/pki/ca.crt" --authorization-mode=Node,RBAC --allow-privileged=true \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$DIR/pki/service-accounts.pub" \
    --service-account-signing-key-file="$DIR/pki/service-accounts.key" \
    --service-cluster-ip-range=10.96.0.0/16 --endpoint-reconciler-type=none --profiling=false
  local admin=(--cacert "$DIR/pki/ca.crt" --cert "$DIR/pki/admin.crt" --key "$DIR/pki/admin.key")
  wait_for kube-apiserver 120 curl -sf "${admin[@]}" "https://127.0.0.1:$API_PORT/readyz"
  say "kube-apiserver ready after $((SECONDS - t0)) s"

  local component
  for component in controller-manager scheduler; do
    local extra=()
    if [ "$component" = controller-manager ]; then
      extra=(--service-account-private-key-file="$DIR/pki/service-accounts.key"
        --root-ca-file="$DIR/pki/ca.crt" --use-service-account-credentials=true
        --cluster-signing-cert-file="$DIR/pki/ca.crt" --cluster-signing-key-file="$DIR/pki/ca.key"
        --service-cluster-ip-range=10.96.0.0/16 --cert-dir="$DIR/pki/$component-serving")
    fi
    spawn "kube-$component" "$BIN/kube-$component" --kubeconfig="$DIR/$component.kubeconfig" \
      --authentication-kubeconfig="$DIR/$component.kubeconfig" \
      --authorization-kubeconfig="$DIR/$component.kubeconfig" \
      --bind-address=127.0.0.1 --secure-port="$(free_port)" --leader-elect=false "${extra[@]}"
  done

  kwok_config >"$DIR/kwok.yaml"
  spawn kwok "$BIN/kwok" --config="$DIR/kwok.yaml" --kubeconfig="$DIR/kwok.kubeconfig" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --cidr=10.244.0.0/16 --node-lease-duration-seconds=40 --server-address="127.0.0.1:$(free_port)"

  export KUBECONFIG=$DIR/admin.kubeconfig
  local kubectl="$BIN/kubectl"
  # The default ServiceAccount appears once the controller manager runs: pods need it.
  wait_for "default ServiceAccount" 60 "$kubectl" get serviceaccount default -n default
  fake_nodes >"$DIR/nodes.yaml"
  "$kubectl" apply --server-side -f "$DIR/nodes.yaml" >"$DIR/logs/nodes.log" 2>&1 ||
    die "adding nodes failed: $(cat "$DIR/logs/nodes.log")"
  wait_for "nodes Ready" 60 "$kubectl" wait --for=condition=Ready node --all --timeout=1s
  say "$("$kubectl" get nodes --no-headers | wc -l) fake nodes Ready, $((SECONDS - t0)) s after start"

  cat >"$DIR/env.sh" <<EOF
export KUBECONFIG=$DIR/admin.kubeconfig
export PATH=$BIN:\$PATH
EOF
  cat >"$DIR/cluster.json" <<EOF
{ "kubeconfig": "$DIR/admin.kubeconfig", "context": "$CONTEXT", "server": "https://127.0.0.1:$API_PORT",
  "etcd": "http://127.0.0.1:$ETCD_PORT", "bin": "$BIN", "provisioner": "$PROVISIONER" }
EOF
  trap - EXIT
  say "ready: source $DIR/env.sh; stop with: $0 stop $DIR"
}

cmd=${1:-}
DIR=${2:-}
if [ -z "$cmd" ] || [ -z "$DIR" ]; then
  echo "usage: sim.sh start|stop DIR" >&2
  exit 2
fi
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
case $cmd in
  start) start ;;
  stop) stop_all "$DIR" ;;
  *)
    echo "usage: sim.sh start|stop DIR" >&2
    exit 2
    ;;
esac
