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

/** The identity and reach of one monitoring workload (see `monitoringIdentity`). */
export interface MonitoringIdentityArgs {
  /** The workload's name: ServiceAccount, Role, RoleBinding and `<name>-allow` policy. */
  name: string;
  namespace: pulumi.Input<string>;
  labels: Record<string, string>;
  /** The workload's pods, as its NetworkPolicy selects them. */
  selector: Record<string, string>;
  /** Pods that never call the API server get no token (the ServiceAccount refuses to mount). */
  noToken?: boolean;
  /** Reads in its own namespace: one Role with these rules, bound to the ServiceAccount. */
  rules?: k8s.types.input.rbac.v1.PolicyRule[];
  /** NetworkPolicy peers and host ports (`monitoringNetworkPolicy`). */
  access: NetworkAccess;
  hostPorts?: number[];
}

/**
 * What every monitoring workload repeats: its ServiceAccount, optionally a namespaced Role and
 * RoleBinding for it, and its NetworkPolicy. Returns the ServiceAccount for the pod spec.
 */
export function monitoringIdentity(
  parent: pulumi.Resource,
  provider: k8s.Provider,
  args: MonitoringIdentityArgs,
): k8s.core.v1.ServiceAccount {
  const child = { parent, provider };
  const metadata = { name: args.name, namespace: args.namespace, labels: args.labels };
  const sa = new k8s.core.v1.ServiceAccount(
    `${args.name}-sa`,
    args.noToken ? { metadata, automountServiceAccountToken: false } : { metadata },
    child,
  );
  if (args.rules) {
    const role = new k8s.rbac.v1.Role(`${args.name}-role`, { metadata, rules: args.rules }, child);
    new k8s.rbac.v1.RoleBinding(
      `${args.name}-binding`,
      {
        metadata,
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: role.metadata.name },
        subjects: [{ kind: "ServiceAccount", name: sa.metadata.name, namespace: args.namespace }],
      },
      child,
    );
  }
  monitoringNetworkPolicy(parent, provider, {
    name: args.name,
    namespace: args.namespace,
    labels: args.labels,
    selector: args.selector,
    access: args.access,
    hostPorts: args.hostPorts,
  });
  return sa;
}

/**
 * A StatefulSet's claims stay when it is deleted or scaled down. This is the Kubernetes default,
 * stated so that it cannot silently change: replacing the StatefulSet (delete, then create with
 * the same name) must find the old `data-<pod>` claim and mount it again.
 */
export const PVC_RETAINED: k8s.types.input.apps.v1.StatefulSetPersistentVolumeClaimRetentionPolicy =
  { whenDeleted: "Retain", whenScaled: "Retain" };

/**
 * A StatefulSet's two Services: the ClusterIP one clients use (`name`), and the headless
 * governing one (`<name>-headless`: stable pod DNS, no virtual IP) its `serviceName` names.
 */
export function statefulSetServices(
  parent: pulumi.Resource,
  provider: k8s.Provider,
  args: {
    name: string;
    namespace: pulumi.Input<string>;
    labels: Record<string, string>;
    selector: Record<string, string>;
    port: number;
  },
): { service: k8s.core.v1.Service; headless: k8s.core.v1.Service } {
  const child = { parent, provider };
  const meta = (name: string) => ({ name, namespace: args.namespace, labels: args.labels });
  const ports = [{ name: "http", port: args.port, targetPort: "http" }];
  const service = new k8s.core.v1.Service(
    `${args.name}-svc`,
    { metadata: meta(args.name), spec: { selector: args.selector, ports } },
    child,
  );
  const headless = new k8s.core.v1.Service(
    `${args.name}-headless`,
    {
      metadata: meta(`${args.name}-headless`),
      spec: { clusterIP: "None", selector: args.selector, ports },
    },
    child,
  );
  return { service, headless };
}
