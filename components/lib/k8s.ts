import { createHash } from "node:crypto";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { Resources } from "../config/app";

/** What every component needs to place objects: the explicit provider and the namespace. */
export interface ClusterPlacement {
  provider: k8s.Provider;
  namespace: pulumi.Input<string>;
  /** The stack's `timeZone`: every CronJob's `spec.timeZone` (Etc/UTC when unset). */
  timeZone?: string;
}

export const PART_OF = "stock-analysis";

/**
 * Labels for every object of a workload. `app=<name>` keeps the manual's `-l app=…` commands
 * working; the app.kubernetes.io set is what dashboards and policies select on.
 */
export function workloadLabels(
  name: string,
  component: string,
  instance: string,
): Record<string, string> {
  return {
    app: name,
    "app.kubernetes.io/name": name,
    "app.kubernetes.io/instance": instance,
    "app.kubernetes.io/component": component,
    "app.kubernetes.io/part-of": PART_OF,
    "app.kubernetes.io/managed-by": "pulumi",
  };
}

/** Selectors stay minimal because they are immutable on Deployments and StatefulSets. */
export function selectorLabels(name: string): Record<string, string> {
  return { app: name };
}

/** Pod-level hardening that satisfies the "restricted" Pod Security Standard. */
export function restrictedPodSecurity(
  uid = 10001,
  gid = uid,
): k8s.types.input.core.v1.PodSecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: uid,
    runAsGroup: gid,
    fsGroup: gid,
    seccompProfile: { type: "RuntimeDefault" },
  };
}

/** Container-level hardening: nothing to escalate to, no capabilities, immutable image. */
export function restrictedContainerSecurity(
  readOnlyRootFilesystem = true,
): k8s.types.input.core.v1.SecurityContext {
  return {
    allowPrivilegeEscalation: false,
    privileged: false,
    readOnlyRootFilesystem,
    runAsNonRoot: true,
    capabilities: { drop: ["ALL"] },
    seccompProfile: { type: "RuntimeDefault" },
  };
}

/** Requests for CPU and memory, a memory limit, never a CPU limit (the resource rule). */
export function toResourceRequirements(r: Resources): k8s.types.input.core.v1.ResourceRequirements {
  return {
    requests: { cpu: r.requests.cpu, memory: r.requests.memory },
    limits: { memory: r.limits.memory },
  };
}

/** emptyDir volumes (and their mounts) for the paths a read-only container must write to. */
export function writableVolumes(paths: readonly string[]): {
  volumes: k8s.types.input.core.v1.Volume[];
  mounts: k8s.types.input.core.v1.VolumeMount[];
} {
  const named = paths.map((p, i) => ({ path: p, name: `writable-${i}` }));
  return {
    volumes: named.map((n) => ({ name: n.name, emptyDir: { sizeLimit: "256Mi" } })),
    mounts: named.map((n) => ({ name: n.name, mountPath: n.path })),
  };
}

/** A reference to one key of a Kubernetes Secret: the only way secrets reach pods. */
export interface SecretKeyRef {
  secretName: pulumi.Input<string>;
  key: string;
}

export function secretEnv(env: Record<string, SecretKeyRef>): k8s.types.input.core.v1.EnvVar[] {
  return Object.entries(env)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, ref]) => ({
      name,
      valueFrom: { secretKeyRef: { name: ref.secretName, key: ref.key } },
    }));
}

export function plainEnv(env: Record<string, string>): k8s.types.input.core.v1.EnvVar[] {
  return Object.entries(env)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, value]) => ({ name, value }));
}

/** A peer a NetworkPolicy rule lets through: pods by label, optionally in another namespace. */
export interface NetworkPeer {
  podLabels?: Record<string, string>;
  /** Namespace name of the peer; the policy's own namespace when unset. */
  namespace?: string;
  ports: number[];
}

export function peerToRule(p: NetworkPeer): {
  peers: k8s.types.input.networking.v1.NetworkPolicyPeer[];
  ports: k8s.types.input.networking.v1.NetworkPolicyPort[];
} {
  const peer: k8s.types.input.networking.v1.NetworkPolicyPeer = {};
  if (p.podLabels) peer.podSelector = { matchLabels: p.podLabels };
  if (p.namespace)
    peer.namespaceSelector = { matchLabels: { "kubernetes.io/metadata.name": p.namespace } };
  if (!p.podLabels && !p.namespace) peer.podSelector = {};
  return { peers: [peer], ports: p.ports.map((port) => ({ protocol: "TCP", port })) };
}

/** Component options for children: parented to the component, placed by its provider. */
export function childOptions(
  parent: pulumi.Resource,
  provider: k8s.Provider,
  extra?: pulumi.CustomResourceOptions,
): pulumi.CustomResourceOptions {
  return { parent, provider, ...extra };
}

/** A PVC template for a StatefulSet's data volume. */
export function dataClaim(
  labels: Record<string, string>,
  storage: { size: string; storageClass?: string },
): k8s.types.input.core.v1.PersistentVolumeClaim {
  return {
    metadata: { name: "data", labels },
    spec: {
      accessModes: ["ReadWriteOnce"],
      storageClassName: storage.storageClass,
      resources: { requests: { storage: storage.size } },
    },
  };
}

/**
 * Short content hash for a pod template's `checksum/config` annotation: a change of mounted
 * config or scripts (updated in place) rolls the pods, one at a time for a StatefulSet.
 */
export function checksum(...parts: string[]): string {
  return createHash("sha256").update(parts.join("\0")).digest("hex").slice(0, 16);
}

/**
 * On every Ingress. The provider would otherwise wait for `.status.loadBalancer`, which only a
 * controller run with `--publish-service` (and a working load balancer) fills: elsewhere the
 * whole `up` fails after 10 minutes. Backends are awaited through their workloads; the public
 * address is the DNS record's business, and the stack outputs the configured hosts.
 */
export const INGRESS_NO_ADDRESS_AWAIT: Readonly<Record<string, string>> = {
  "pulumi.com/skipAwait": "true",
};
