/**
 * The Redis Cluster's objects as pure builders: what `RedisCluster` wires into resources.
 * Names and numbers here are the cache's; the shared pod pieces live in ./pods.
 */
import type * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";
import type { RedisConfig } from "../config/redis";
import {
  NetworkPeer,
  plainEnv,
  restrictedContainerSecurity,
  restrictedPodSecurity,
  selectorLabels,
  toResourceRequirements,
} from "../lib/k8s";
import type { NetworkAccess } from "../lib/network";
import { clusterNodeConf, maxmemoryFor, memoryQuantityBytes } from "./content";
import {
  AUTH_PATH,
  CONFIG_PATH,
  EXPORTER_PORT,
  PASSWORD_KEY,
  REDIS_PORT,
  REDIS_UID,
  SCRIPTS_PATH,
  exporterContainer,
  pingProbe,
  podDnsEnv,
  redisStatefulSetSpec,
} from "./pods";

/** The cluster bus: Redis' client port + 10000. */
export const BUS_PORT = REDIS_PORT + 10000;
/** The scripts the nodes and the formation Job run (components/redis/scripts). */
export const CLUSTER_SCRIPTS = ["lib.sh", "node-entrypoint.sh", "cluster-form.sh"] as const;

type ClusterSettings = RedisConfig["cluster"];

/** Nodes in the cluster: masters × (1 + replicas per master). */
export function clusterNodeCount(c: ClusterSettings): number {
  return c.masters * (1 + c.replicasPerMaster);
}

/** The nodes' `redis.conf` (ConfigMap `<base>-config`). */
export function clusterConfigData(c: ClusterSettings): Record<string, string> {
  return {
    "redis.conf": clusterNodeConf({
      maxmemoryBytes: maxmemoryFor(memoryQuantityBytes(c.resources.limits.memory)),
      nodeTimeoutMs: c.nodeTimeoutMs,
    }),
  };
}

/** Who reaches the nodes: each other (data and bus), the formation Job, Prometheus, clients. */
export function clusterNetwork(
  base: string,
  selector: Record<string, string>,
  clients: NetworkPeer[],
): NetworkAccess {
  const self: NetworkPeer = { podLabels: selector, ports: [REDIS_PORT, BUS_PORT] };
  return {
    ingressFrom: [
      self,
      { podLabels: selectorLabels(`${base}-cluster-form`), ports: [REDIS_PORT] },
      { podLabels: { app: "prometheus" }, ports: [EXPORTER_PORT] },
      ...clients.map((p) => ({ ...p, ports: [REDIS_PORT] })),
    ],
    egressTo: [self],
  };
}

/** The governing Service: stable node names, published before the nodes are ready. */
export function clusterHeadlessServiceSpec(
  selector: Record<string, string>,
): k8s.types.input.core.v1.ServiceSpec {
  return {
    clusterIP: "None",
    // Nodes must find each other by name before they are ready (formation, rejoin).
    publishNotReadyAddresses: true,
    selector,
    ports: [
      { name: "redis", port: REDIS_PORT, targetPort: REDIS_PORT },
      { name: "bus", port: BUS_PORT, targetPort: BUS_PORT },
      { name: "metrics", port: EXPORTER_PORT, targetPort: EXPORTER_PORT },
    ],
  };
}

/** A ClusterIP Service on the Redis port: the clients' entry. */
export function redisClientServiceSpec(
  selector: Record<string, string>,
): k8s.types.input.core.v1.ServiceSpec {
  return {
    type: "ClusterIP",
    selector,
    ports: [{ name: "redis", port: REDIS_PORT, targetPort: REDIS_PORT }],
  };
}

/** Every node as `host:port` by its stable DNS name, in ordinal order. */
export function clusterNodeAddresses(a: {
  base: string;
  headless: string;
  namespace: string;
  domain: string;
  count: number;
}): string[] {
  return Array.from(
    { length: a.count },
    (_, i) => `${a.base}-${i}.${a.headless}.${a.namespace}.svc.${a.domain}:${REDIS_PORT}`,
  );
}

/** The node container: Redis in cluster mode, announcing its DNS name. */
export function clusterNodeContainer(a: {
  image: string;
  resources: ClusterSettings["resources"];
  headless: string;
  domain: string;
}): k8s.types.input.core.v1.Container {
  return {
    name: "redis",
    image: a.image,
    imagePullPolicy: "IfNotPresent",
    command: ["bash", `${SCRIPTS_PATH}/node-entrypoint.sh`],
    env: [
      ...podDnsEnv("REDIS_ANNOUNCE_HOSTNAME", a.headless, a.domain),
      ...plainEnv({
        REDIS_CONF: `${CONFIG_PATH}/redis.conf`,
        REDIS_DATA_DIR: "/data",
        REDIS_RUNTIME_DIR: "/run/redis",
        REDIS_PORT: String(REDIS_PORT),
        REDIS_PASSWORD_FILE: `${AUTH_PATH}/${PASSWORD_KEY}`,
      }),
    ],
    ports: [
      { name: "redis", containerPort: REDIS_PORT },
      { name: "bus", containerPort: BUS_PORT },
    ],
    resources: toResourceRequirements(a.resources),
    securityContext: restrictedContainerSecurity(true),
    readinessProbe: pingProbe(REDIS_PORT, 5, 3),
    livenessProbe: { ...pingProbe(REDIS_PORT, 15, 4), initialDelaySeconds: 30 },
    volumeMounts: [
      { name: "data", mountPath: "/data" },
      { name: "runtime", mountPath: "/run/redis" },
      { name: "scripts", mountPath: SCRIPTS_PATH, readOnly: true },
      { name: "config", mountPath: CONFIG_PATH, readOnly: true },
      { name: "auth", mountPath: AUTH_PATH, readOnly: true },
    ],
  };
}

/** The nodes' StatefulSet: peers started together (the formation Job waits for all). */
export function clusterStatefulSetSpec(a: {
  config: RedisConfig;
  serviceName: pulumi.Input<string>;
  headless: string;
  domain: string;
  selector: Record<string, string>;
  labels: Record<string, string>;
  serviceAccountName: pulumi.Input<string>;
  authSecretName: pulumi.Input<string>;
  /** Scripts, config and auth volumes (./pods redisVolumes). */
  volumes: k8s.types.input.core.v1.Volume[];
  configChecksum: string;
}): k8s.types.input.apps.v1.StatefulSetSpec {
  const c = a.config.cluster;
  return redisStatefulSetSpec({
    serviceName: a.serviceName,
    replicas: clusterNodeCount(c),
    configChecksum: a.configChecksum,
    selector: a.selector,
    labels: a.labels,
    serviceAccountName: a.serviceAccountName,
    containers: [
      clusterNodeContainer({
        image: a.config.image,
        resources: c.resources,
        headless: a.headless,
        domain: a.domain,
      }),
      exporterContainer({
        image: a.config.exporterImage,
        resources: a.config.exporterResources,
        authSecretName: a.authSecretName,
      }),
    ],
    volumes: [
      ...a.volumes,
      // Holds the include with the password: memory-backed, never on the node's disk.
      { name: "runtime", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } },
    ],
    storage: c.storage,
  });
}

/** The formation Job's name: a new Job per topology (Jobs are immutable). */
export function clusterFormJobName(base: string, c: ClusterSettings): string {
  return `${base}-cluster-form-${c.masters}x${c.replicasPerMaster}`;
}

/** The idempotent formation Job: forms the cluster once all nodes answer; no-op when formed. */
export function clusterFormJobSpec(a: {
  config: RedisConfig;
  labels: Record<string, string>;
  serviceAccountName: pulumi.Input<string>;
  /** Space-separated `host:port` of every node. */
  nodes: pulumi.Input<string>;
  /** Scripts and auth volumes (./pods redisVolumes). */
  volumes: k8s.types.input.core.v1.Volume[];
}): k8s.types.input.batch.v1.JobSpec {
  const c = a.config.cluster;
  return {
    backoffLimit: 4,
    activeDeadlineSeconds: 1200,
    template: {
      metadata: { labels: a.labels },
      spec: {
        restartPolicy: "Never",
        serviceAccountName: a.serviceAccountName,
        automountServiceAccountToken: false,
        securityContext: restrictedPodSecurity(REDIS_UID),
        containers: [
          {
            name: "cluster-form",
            image: a.config.image,
            imagePullPolicy: "IfNotPresent",
            command: ["bash", `${SCRIPTS_PATH}/cluster-form.sh`],
            env: [
              { name: "REDIS_NODES", value: a.nodes },
              ...plainEnv({
                REDIS_MASTERS: String(c.masters),
                REDIS_REPLICAS_PER_MASTER: String(c.replicasPerMaster),
                REDIS_PASSWORD_FILE: `${AUTH_PATH}/${PASSWORD_KEY}`,
                REDIS_FORM_TIMEOUT_S: "900",
              }),
            ],
            resources: {
              requests: { cpu: "10m", memory: "16Mi" },
              limits: { memory: "64Mi" },
            },
            securityContext: restrictedContainerSecurity(true),
            volumeMounts: [
              { name: "scripts", mountPath: SCRIPTS_PATH, readOnly: true },
              { name: "auth", mountPath: AUTH_PATH, readOnly: true },
            ],
          },
        ],
        volumes: a.volumes.filter((v) => v.name !== "config"),
      },
    },
  };
}
