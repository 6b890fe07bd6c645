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
    .map((r) => ({ from: r.peers, ...nonEmpty("ports", r.ports) }));
  const egress = (access.egressTo ?? [])
    .map(peerToRule)
    .map((r) => ({ to: r.peers, ...nonEmpty("ports", r.ports) }));
  return {
    podSelector: { matchLabels: podLabels },
    policyTypes: ["Ingress", "Egress"],
    ...nonEmpty("ingress", ingress),
    ...nonEmpty("egress", egress),
  };
}

/**
 * `{ [key]: list }` only when the list has items. The API server stores an empty list as
 * absent, but compares it as a change first: sending `[]` bumps the object's generation on
 * every apply, a perpetual diff.
 */
function nonEmpty<K extends string, T>(key: K, list: T[]): Partial<Record<K, T[]>> {
  return list.length > 0 ? ({ [key]: list } as Record<K, T[]>) : {};
}
