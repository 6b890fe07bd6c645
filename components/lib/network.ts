import * as k8s from "@pulumi/kubernetes";
import { NetworkPeer, peerToRule } from "./k8s";

/** Who may reach a workload and whom it may reach; everything else stays denied. */
export interface NetworkAccess {
  /** Peers allowed to open connections to the workload's pods. */
  ingressFrom?: NetworkPeer[];
  /** Peers the workload's pods may open connections to (DNS is allowed namespace-wide). */
  egressTo?: NetworkPeer[];
}

/** Spec of the per-workload NetworkPolicy that adds explicit allows on top of default-deny. */
export function allowPolicySpec(
  podLabels: Record<string, string>,
  access: NetworkAccess,
): k8s.types.input.networking.v1.NetworkPolicySpec {
  const ingress = (access.ingressFrom ?? [])
    .map(peerToRule)
    .map((r) => ({ from: r.peers, ports: r.ports }));
  const egress = (access.egressTo ?? [])
    .map(peerToRule)
    .map((r) => ({ to: r.peers, ports: r.ports }));
  return {
    podSelector: { matchLabels: podLabels },
    policyTypes: ["Ingress", "Egress"],
    ingress,
    egress,
  };
}
