#!/usr/bin/env bash
# Installs what a kind cluster lacks for the platform: ingress-nginx (the kind flavour, bound to
# the control plane's host ports 80/443) and metrics-server (HPA needs resource metrics).
# Env: KUBE_CONTEXT, INGRESS_NGINX_VERSION (e.g. 1.11.3), METRICS_SERVER_VERSION (e.g. 0.7.2).
set -euo pipefail

: "${KUBE_CONTEXT:?}" "${INGRESS_NGINX_VERSION:?}" "${METRICS_SERVER_VERSION:?}"
kubectl=(kubectl --context "$KUBE_CONTEXT")

"${kubectl[@]}" apply -f "https://raw.githubusercontent.com/kubernetes/ingress-nginx/controller-v${INGRESS_NGINX_VERSION}/deploy/static/provider/kind/deploy.yaml"
"${kubectl[@]}" apply -f "https://github.com/kubernetes-sigs/metrics-server/releases/download/v${METRICS_SERVER_VERSION}/components.yaml"
# kind's kubelets serve self-signed certificates.
"${kubectl[@]}" -n kube-system patch deployment metrics-server --type=json \
  -p '[{"op":"add","path":"/spec/template/spec/containers/0/args/-","value":"--kubelet-insecure-tls"}]'

# The Ingress admission webhook must answer before the platform's Ingress can be created.
"${kubectl[@]}" -n ingress-nginx wait --for=condition=Available deployment/ingress-nginx-controller --timeout=300s
"${kubectl[@]}" -n kube-system wait --for=condition=Available deployment/metrics-server --timeout=300s
echo "kind add-ons ready on $KUBE_CONTEXT"
