import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { NetworkAccess, allowPolicySpec } from "../lib/network";

/** The Kubernetes API server (443/6443) and kubelets (10250) live outside the pod network. */
export const CLUSTER_API_PORTS = [443, 6443, 10250];

export { checksum } from "../lib/k8s";

/**
 * The NetworkPolicy of a monitoring workload: the explicit peers from `access`, plus egress by
 * port to `hostPorts` (API server, kubelets, host-network exporters), which have no pod labels.
 */
export function monitoringNetworkPolicy(
  parent: pulumi.Resource,
  provider: k8s.Provider,
  args: {
    name: string;
    namespace: pulumi.Input<string>;
    labels: Record<string, string>;
    selector: Record<string, string>;
    access: NetworkAccess;
    hostPorts?: number[];
  },
): k8s.networking.v1.NetworkPolicy {
  const spec = allowPolicySpec(args.selector, args.access);
  const egress = [
    ...((spec.egress as k8s.types.input.networking.v1.NetworkPolicyEgressRule[]) ?? []),
    ...(args.hostPorts?.length
      ? [
          {
            to: [{ ipBlock: { cidr: "0.0.0.0/0" } }],
            ports: args.hostPorts.map((port) => ({ protocol: "TCP", port })),
          },
        ]
      : []),
  ];
  return new k8s.networking.v1.NetworkPolicy(
    `${args.name}-netpol`,
    {
      metadata: { name: `${args.name}-allow`, namespace: args.namespace, labels: args.labels },
      // No empty list: the API server drops it, and sending it would be a perpetual diff.
      spec: egress.length > 0 ? { ...spec, egress } : spec,
    },
    { parent, provider },
  );
}
