import * as k8s from "@pulumi/kubernetes";
import type { EgressRule } from "../config/egress";
import { NetworkPeer, peerToRule } from "./k8s";

/** Who may reach a workload and whom it may reach; everything else stays denied. */
export interface NetworkAccess {
  /** Peers allowed to open connections to the workload's pods. */
  ingressFrom?: NetworkPeer[];
  /** Peers the workload's pods may open connections to (DNS is allowed namespace-wide). */
  egressTo?: NetworkPeer[];
  /**
   * Destinations outside the cluster by IP block and port (validated config). NetworkPolicy
   * cannot name hosts: these are the provider's published ranges, or an egress proxy's address.
   */
  egressCidrs?: EgressRule[];
}

/** One egress rule per configured block: `to` the ipBlock (with its holes), on its ports only. */
export function cidrEgressRules(
  rules: readonly EgressRule[],
): k8s.types.input.networking.v1.NetworkPolicyEgressRule[] {
  return rules.map((r) => ({
    to: [{ ipBlock: { cidr: r.cidr, ...nonEmpty("except", [...r.except]) } }],
    ports: r.ports.map((p) => ({
      protocol: p.protocol,
      port: p.port,
      ...(p.endPort !== undefined && p.endPort !== p.port ? { endPort: p.endPort } : {}),
    })),
  }));
}

/** Spec of the per-workload NetworkPolicy that adds explicit allows on top of default-deny. */
export function allowPolicySpec(
  podLabels: Record<string, string>,
  access: NetworkAccess,
): k8s.types.input.networking.v1.NetworkPolicySpec {
  const ingress = (access.ingressFrom ?? [])
    .map(peerToRule)
    .map((r) => ({ from: r.peers, ...nonEmpty("ports", r.ports) }));
  const egress: k8s.types.input.networking.v1.NetworkPolicyEgressRule[] = [
    ...(access.egressTo ?? [])
      .map(peerToRule)
      .map((r) => ({ to: r.peers, ...nonEmpty("ports", r.ports) })),
    ...cidrEgressRules(access.egressCidrs ?? []),
  ];
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

/** The component's explicit allows plus the blocks its config opens to the outside. */
export function withConfiguredEgress(
  access: NetworkAccess | undefined,
  configured: readonly EgressRule[],
): NetworkAccess {
  return { ...access, egressCidrs: [...(access?.egressCidrs ?? []), ...configured] };
}
