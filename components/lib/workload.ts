import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { NetworkAccess, allowPolicySpec } from "./network";

/**
 * The per-workload objects every Deployment of the app tier carries: its own ServiceAccount
 * (no API token mounted: the apps never call the Kubernetes API), a PodDisruptionBudget that
 * still lets a node drain, and the NetworkPolicy with the workload's explicit allows.
 */
export function workloadCompanions(
  parent: pulumi.Resource,
  provider: k8s.Provider,
  args: {
    name: string;
    namespace: pulumi.Input<string>;
    labels: Record<string, string>;
    selector: Record<string, string>;
    network: NetworkAccess;
  },
): { serviceAccount: k8s.core.v1.ServiceAccount } {
  const opts = { parent, provider };
  const metadata = (suffix: string) => ({
    name: suffix ? `${args.name}-${suffix}` : args.name,
    namespace: args.namespace,
    labels: args.labels,
  });
  const serviceAccount = new k8s.core.v1.ServiceAccount(
    `${args.name}-sa`,
    { metadata: metadata(""), automountServiceAccountToken: false },
    opts,
  );
  new k8s.policy.v1.PodDisruptionBudget(
    `${args.name}-pdb`,
    {
      metadata: metadata(""),
      spec: { maxUnavailable: 1, selector: { matchLabels: args.selector } },
    },
    opts,
  );
  new k8s.networking.v1.NetworkPolicy(
    `${args.name}-netpol`,
    { metadata: metadata("allow"), spec: allowPolicySpec(args.selector, args.network) },
    opts,
  );
  return { serviceAccount };
}

/** Spread replicas over nodes when the cluster has several, without blocking scheduling on one. */
export function spreadOverNodes(
  selector: Record<string, string>,
): k8s.types.input.core.v1.TopologySpreadConstraint[] {
  return [
    {
      maxSkew: 1,
      topologyKey: "kubernetes.io/hostname",
      whenUnsatisfiable: "ScheduleAnyway",
      labelSelector: { matchLabels: selector },
    },
  ];
}
