import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { Resources } from "../config/app";
import {
  dataClaim,
  restrictedContainerSecurity,
  restrictedPodSecurity,
  toResourceRequirements,
} from "../lib/k8s";
import { RedisScriptName, redisScript } from "./content";

/** uid/gid of the `redis` user in the official image; PVCs are made writable for it via fsGroup. */
export const REDIS_UID = 999;
export const REDIS_PORT = 6379;
export const SENTINEL_PORT = 26379;
export const EXPORTER_PORT = 9121;
export const SCRIPTS_PATH = "/scripts";
export const CONFIG_PATH = "/etc/redis";
export const AUTH_PATH = "/etc/redis-auth";
/** Password key in the generated auth Secrets. */
export const PASSWORD_KEY = "password";

/** ConfigMap data with the given scripts, exactly as tested. */
export function scriptsData(names: readonly RedisScriptName[]): Record<string, string> {
  return Object.fromEntries(names.map((n) => [n, redisScript(n)]));
}

/** Volumes for scripts (ConfigMap), config (ConfigMap) and password (Secret, group-readable). */
export function redisVolumes(args: {
  scriptsConfigMap: pulumi.Input<string>;
  configConfigMap?: pulumi.Input<string>;
  authSecrets: { volume: string; secretName: pulumi.Input<string> }[];
}): k8s.types.input.core.v1.Volume[] {
  return [
    { name: "scripts", configMap: { name: args.scriptsConfigMap, defaultMode: 0o555 } },
    ...(args.configConfigMap
      ? [{ name: "config", configMap: { name: args.configConfigMap, defaultMode: 0o444 } }]
      : []),
    ...args.authSecrets.map((s) => ({
      name: s.volume,
      secret: { secretName: s.secretName, defaultMode: 0o440 },
    })),
  ];
}

/** Probe running redis-cli PING with the mounted password (never on a command line or in env). */
export function pingProbe(
  port: number,
  periodSeconds: number,
  failureThreshold: number,
): k8s.types.input.core.v1.Probe {
  return {
    exec: {
      command: [
        "sh",
        "-c",
        `REDISCLI_AUTH="$(cat ${AUTH_PATH}/${PASSWORD_KEY})" redis-cli -p ${port} ping | grep -q PONG`,
      ],
    },
    periodSeconds,
    timeoutSeconds: 5,
    failureThreshold,
  };
}

/** redis_exporter sidecar scraping the Redis server of its own pod. */
export function exporterContainer(args: {
  image: string;
  resources: Resources;
  authSecretName: pulumi.Input<string>;
  /** `REDIS_EXPORTER_CHECK_SINGLE_KEYS` (see `celeryQueueKeys`); omit to export no key sizes. */
  checkSingleKeys?: string;
}): k8s.types.input.core.v1.Container {
  return {
    name: "redis-exporter",
    image: args.image,
    imagePullPolicy: "IfNotPresent",
    env: [
      { name: "REDIS_ADDR", value: `redis://localhost:${REDIS_PORT}` },
      {
        name: "REDIS_PASSWORD",
        valueFrom: { secretKeyRef: { name: args.authSecretName, key: PASSWORD_KEY } },
      },
      ...(args.checkSingleKeys
        ? [{ name: "REDIS_EXPORTER_CHECK_SINGLE_KEYS", value: args.checkSingleKeys }]
        : []),
    ],
    ports: [{ name: "metrics", containerPort: EXPORTER_PORT }],
    resources: toResourceRequirements(args.resources),
    securityContext: restrictedContainerSecurity(true),
    readinessProbe: { httpGet: { path: "/health", port: EXPORTER_PORT }, periodSeconds: 15 },
    livenessProbe: {
      httpGet: { path: "/health", port: EXPORTER_PORT },
      periodSeconds: 30,
      timeoutSeconds: 5,
      failureThreshold: 3,
    },
  };
}

/** Pod annotations the platform's Prometheus scrapes on. */
export const exporterAnnotations = {
  "prometheus.io/scrape": "true",
  "prometheus.io/port": String(EXPORTER_PORT),
  "prometheus.io/path": "/metrics",
};

/** Prefer one pod of the set per node (cluster replicas must not share a node with their master). */
export function preferSpreadAffinity(
  selector: Record<string, string>,
): k8s.types.input.core.v1.Affinity {
  return {
    podAntiAffinity: {
      preferredDuringSchedulingIgnoredDuringExecution: [
        {
          weight: 100,
          podAffinityTerm: {
            topologyKey: "kubernetes.io/hostname",
            labelSelector: { matchLabels: selector },
          },
        },
      ],
    },
  };
}

/** Env giving a container its stable per-pod DNS name via the downward API. */
export function podDnsEnv(
  varName: string,
  headlessService: string,
  clusterDomain: string,
): k8s.types.input.core.v1.EnvVar[] {
  return [
    { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
    { name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
    {
      name: varName,
      value: `$(POD_NAME).${headlessService}.$(POD_NAMESPACE).svc.${clusterDomain}`,
    },
  ];
}

/**
 * StatefulSet spec shared by the cache cluster and the broker: peers start together (each
 * entrypoint finds its role itself), hardened pods spread over nodes, one data PVC per pod.
 */
export function redisStatefulSetSpec(a: {
  serviceName: pulumi.Input<string>;
  replicas: number;
  selector: Record<string, string>;
  labels: Record<string, string>;
  serviceAccountName: pulumi.Input<string>;
  containers: k8s.types.input.core.v1.Container[];
  volumes: k8s.types.input.core.v1.Volume[];
  storage: { size: string; storageClass?: string };
  /** Hash of the mounted config and scripts: a change rolls the members one by one. */
  configChecksum: string;
}): k8s.types.input.apps.v1.StatefulSetSpec {
  return {
    serviceName: a.serviceName,
    replicas: a.replicas,
    podManagementPolicy: "Parallel",
    selector: { matchLabels: a.selector },
    updateStrategy: { type: "RollingUpdate" },
    template: {
      metadata: {
        labels: a.labels,
        annotations: { ...exporterAnnotations, "checksum/config": a.configChecksum },
      },
      spec: {
        serviceAccountName: a.serviceAccountName,
        automountServiceAccountToken: false,
        securityContext: restrictedPodSecurity(REDIS_UID),
        affinity: preferSpreadAffinity(a.selector),
        terminationGracePeriodSeconds: 30,
        containers: a.containers,
        volumes: a.volumes,
      },
    },
    volumeClaimTemplates: [dataClaim(a.labels, a.storage)],
  };
}
