import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { EgressRule } from "../config/egress";
import {
  ClusterPlacement,
  SecretKeyRef,
  restrictedPodSecurity,
  selectorLabels,
  workloadLabels,
} from "./k8s";
import { NetworkAccess, allowPolicySpec, withConfiguredEgress } from "./network";

/** What the app tier's Deployments (API, Celery) are given besides their own config. */
export interface AppWorkloadArgs extends ClusterPlacement {
  /** Deployment, container and `app` label name, e.g. `stock-analysis-api`. */
  name: string;
  /** app.kubernetes.io/instance: the stack name. */
  instance: string;
  /** Image to run; defaults to `config.image` (a built image passes its pushed reference). */
  image?: pulumi.Input<string>;
  /** Environment variables read from Secrets (DATABASE_URL, the broker URL). Default: none. */
  secretEnv?: Record<string, SecretKeyRef>;
  /** Explicit network allows on top of the namespace's default-deny. Default: none. */
  network?: NetworkAccess;
  /** Names of docker-registry Secrets for private images. Default: none. */
  imagePullSecrets?: pulumi.Input<string>[];
  /**
   * Resources that must be ready before the Deployment changes: the migration Job. Pulumi awaits
   * them, so a failed migration fails the update with the old pods still serving.
   */
  rolloutAfter?: pulumi.Input<pulumi.Resource>[];
}

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

/**
 * Labels, selector and companions (workloadCompanions) of an app-tier Deployment, its network
 * being the given allows plus the configured egress allow-list.
 */
export function appWorkloadCompanions(
  parent: pulumi.Resource,
  args: AppWorkloadArgs,
  component: string,
  egress: readonly EgressRule[],
): {
  labels: Record<string, string>;
  selector: Record<string, string>;
  serviceAccount: k8s.core.v1.ServiceAccount;
} {
  const labels = workloadLabels(args.name, component, args.instance);
  const selector = selectorLabels(args.name);
  const { serviceAccount } = workloadCompanions(parent, args.provider, {
    name: args.name,
    namespace: args.namespace,
    labels,
    selector,
    network: withConfiguredEgress(args.network, egress),
  });
  return { labels, selector, serviceAccount };
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

/**
 * The pod-level fields every Job pod of the platform shares: the Job (not the kubelet) decides
 * about retries, no Kubernetes API token unless the Job calls the API, and the restricted
 * security context running as `uid`. Spread it first into the pod spec.
 */
export function restrictedJobPod(
  o: { uid?: number; serviceAccountName?: pulumi.Input<string>; apiToken?: boolean } = {},
): Pick<
  k8s.types.input.core.v1.PodSpec,
  "restartPolicy" | "serviceAccountName" | "automountServiceAccountToken" | "securityContext"
> {
  return {
    restartPolicy: "Never",
    ...(o.serviceAccountName !== undefined ? { serviceAccountName: o.serviceAccountName } : {}),
    automountServiceAccountToken: o.apiToken ?? false,
    securityContext: restrictedPodSecurity(o.uid),
  };
}

/**
 * Probes of a metrics-exporter sidecar: ready when `path` answers on the `metrics` port, and
 * restarted after three failed checks in a row.
 */
export function metricsSidecarProbes(
  path: string,
): Pick<k8s.types.input.core.v1.Container, "readinessProbe" | "livenessProbe"> {
  return {
    readinessProbe: { httpGet: { path, port: "metrics" }, periodSeconds: 20, timeoutSeconds: 5 },
    livenessProbe: {
      httpGet: { path, port: "metrics" },
      periodSeconds: 30,
      timeoutSeconds: 5,
      failureThreshold: 3,
    },
  };
}
