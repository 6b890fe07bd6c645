/**
 * The Celery broker's objects as pure builders: what `RedisBroker` wires into resources.
 * `sentinel` mode adds a Sentinel sidecar per server; the shared pod pieces live in ./pods.
 */
import type * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";
import type { RedisConfig } from "../config/redis";
import {
  NetworkPeer,
  plainEnv,
  restrictedContainerSecurity,
  toResourceRequirements,
} from "../lib/k8s";
import type { NetworkAccess } from "../lib/network";
import {
  brokerConf,
  celeryBrokerSettings,
  celeryQueueKeys,
  maxmemoryFor,
  memoryQuantityBytes,
  sentinelConf,
} from "./content";
import {
  AUTH_PATH,
  CONFIG_PATH,
  EXPORTER_PORT,
  PASSWORD_KEY,
  REDIS_PORT,
  SCRIPTS_PATH,
  SENTINEL_PORT,
  exporterContainer,
  pingProbe,
  podDnsEnv,
  redisStatefulSetSpec,
} from "./pods";

type BrokerSettings = RedisConfig["broker"];

/** Where the broker's pods are: what every builder below derives names from. */
export interface BrokerShape {
  base: string;
  headless: string;
  domain: string;
  sentinel: boolean;
  /** Redis servers: the configured replicas with Sentinel, else one. */
  servers: number;
  /** Sentinel's name for the primary (Celery's `master_name`). */
  masterName: string;
}

/** The broker's shape from its settings. */
export function brokerShape(
  base: string,
  b: BrokerSettings,
  domain: string,
  masterName: string,
): BrokerShape {
  const sentinel = b.mode === "sentinel";
  return {
    base,
    headless: `${base}-headless`,
    domain,
    sentinel,
    servers: sentinel ? b.replicas : 1,
    masterName,
  };
}

/** Stable DNS name of server `i` in namespace `ns`. */
export function brokerPodHost(s: BrokerShape, ns: string, i: number): string {
  return `${s.base}-${i}.${s.headless}.${ns}.svc.${s.domain}`;
}

/** Every sentinel as `host:port`, in ordinal order. */
export function brokerSentinelAddresses(s: BrokerShape, ns: string): string[] {
  return Array.from({ length: s.servers }, (_, i) => `${brokerPodHost(s, ns, i)}:${SENTINEL_PORT}`);
}

/** Celery's broker URL and transport options for this broker. */
export function brokerCelerySettings(
  s: BrokerShape,
  b: BrokerSettings,
  password: string,
  ns: string,
): ReturnType<typeof celeryBrokerSettings> {
  return celeryBrokerSettings({
    password,
    visibilityTimeoutS: b.visibilityTimeoutS,
    ...(s.sentinel
      ? {
          sentinels: Array.from({ length: s.servers }, (_, i) => ({
            host: brokerPodHost(s, ns, i),
            port: SENTINEL_PORT,
          })),
          masterName: s.masterName,
        }
      : { standalone: { host: `${s.base}.${ns}.svc.${s.domain}`, port: REDIS_PORT } }),
  });
}

/** `broker.conf`, plus `sentinel.conf` with Sentinel (ConfigMap `<base>-config`). */
export function brokerConfigData(s: BrokerShape, b: BrokerSettings): Record<string, string> {
  return {
    "broker.conf": brokerConf({
      maxmemoryBytes: maxmemoryFor(memoryQuantityBytes(b.resources.limits.memory)),
    }),
    ...(s.sentinel
      ? {
          "sentinel.conf": sentinelConf({
            masterName: s.masterName,
            quorum: Math.floor(s.servers / 2) + 1,
            downAfterMs: b.downAfterMs,
          }),
        }
      : {}),
  };
}

/** The scripts the pods run (components/redis/scripts). */
export function brokerScripts(s: BrokerShape) {
  return s.sentinel
    ? (["lib.sh", "broker-entrypoint.sh", "sentinel-entrypoint.sh"] as const)
    : (["lib.sh", "broker-entrypoint.sh"] as const);
}

/** The ports clients use: Redis, and Sentinel's when it runs. */
export function brokerPorts(s: BrokerShape): number[] {
  return s.sentinel ? [REDIS_PORT, SENTINEL_PORT] : [REDIS_PORT];
}

/** Who reaches the servers: each other (Sentinel), Prometheus, the clients. */
export function brokerNetwork(
  s: BrokerShape,
  selector: Record<string, string>,
  clients: NetworkPeer[],
): NetworkAccess {
  const ports = brokerPorts(s);
  const self: NetworkPeer = { podLabels: selector, ports };
  return {
    ingressFrom: [
      ...(s.sentinel ? [self] : []),
      { podLabels: { app: "prometheus" }, ports: [EXPORTER_PORT] },
      ...clients.map((p) => ({ ...p, ports })),
    ],
    egressTo: s.sentinel ? [self] : [],
  };
}

/** The governing Service: stable server names, published before they are ready. */
export function brokerHeadlessServiceSpec(
  s: BrokerShape,
  selector: Record<string, string>,
): k8s.types.input.core.v1.ServiceSpec {
  return {
    clusterIP: "None",
    publishNotReadyAddresses: true,
    selector,
    ports: [
      { name: "redis", port: REDIS_PORT, targetPort: REDIS_PORT },
      ...(s.sentinel ? [{ name: "sentinel", port: SENTINEL_PORT, targetPort: SENTINEL_PORT }] : []),
      { name: "metrics", port: EXPORTER_PORT, targetPort: EXPORTER_PORT },
    ],
  };
}

/** The pods' containers: Redis, with Sentinel its sidecar, and the exporter. */
export function brokerContainers(a: {
  shape: BrokerShape;
  config: RedisConfig;
  /** The pods' namespace (Sentinel addresses and the initial primary). */
  namespace: pulumi.Output<string>;
  authSecretName: pulumi.Input<string>;
  celeryQueues?: string[];
}): k8s.types.input.core.v1.Container[] {
  const { shape: s, config: cfg } = a;
  const b = cfg.broker;
  const passwordFile = `${AUTH_PATH}/${PASSWORD_KEY}`;
  const sentinelEnv: k8s.types.input.core.v1.EnvVar[] = [
    {
      name: "BROKER_SENTINELS",
      value: a.namespace.apply((n) => brokerSentinelAddresses(s, n).join(" ")),
    },
    {
      name: "BROKER_INITIAL_PRIMARY",
      value: a.namespace.apply((n) => `${brokerPodHost(s, n, 0)}:${REDIS_PORT}`),
    },
    { name: "BROKER_MASTER_NAME", value: s.masterName },
  ];
  const mounts = [
    { name: "scripts", mountPath: SCRIPTS_PATH, readOnly: true },
    { name: "config", mountPath: CONFIG_PATH, readOnly: true },
    { name: "auth", mountPath: AUTH_PATH, readOnly: true },
  ];
  const redis: k8s.types.input.core.v1.Container = {
    name: "redis",
    image: cfg.image,
    imagePullPolicy: "IfNotPresent",
    command: ["bash", `${SCRIPTS_PATH}/broker-entrypoint.sh`],
    env: [
      ...plainEnv({
        BROKER_CONF: `${CONFIG_PATH}/broker.conf`,
        REDIS_DATA_DIR: "/data",
        REDIS_RUNTIME_DIR: "/run/redis",
        REDIS_PORT: String(REDIS_PORT),
        REDIS_PASSWORD_FILE: passwordFile,
      }),
      ...(s.sentinel
        ? [...podDnsEnv("BROKER_ANNOUNCE_HOSTNAME", s.headless, s.domain), ...sentinelEnv]
        : []),
    ],
    ports: [{ name: "redis", containerPort: REDIS_PORT }],
    resources: toResourceRequirements(b.resources),
    securityContext: restrictedContainerSecurity(true),
    readinessProbe: pingProbe(REDIS_PORT, 5, 3),
    livenessProbe: { ...pingProbe(REDIS_PORT, 15, 4), initialDelaySeconds: 30 },
    volumeMounts: [
      { name: "data", mountPath: "/data" },
      { name: "runtime", mountPath: "/run/redis" },
      ...mounts,
    ],
  };
  const sentinel: k8s.types.input.core.v1.Container = {
    name: "sentinel",
    image: cfg.image,
    imagePullPolicy: "IfNotPresent",
    command: ["bash", `${SCRIPTS_PATH}/sentinel-entrypoint.sh`],
    env: [
      ...plainEnv({
        SENTINEL_TEMPLATE: `${CONFIG_PATH}/sentinel.conf`,
        SENTINEL_RUNTIME_DIR: "/run/sentinel",
        SENTINEL_PORT: String(SENTINEL_PORT),
        REDIS_PASSWORD_FILE: passwordFile,
      }),
      ...podDnsEnv("SENTINEL_ANNOUNCE_HOSTNAME", s.headless, s.domain),
      ...sentinelEnv,
    ],
    ports: [{ name: "sentinel", containerPort: SENTINEL_PORT }],
    resources: toResourceRequirements(b.sentinelResources),
    securityContext: restrictedContainerSecurity(true),
    readinessProbe: pingProbe(SENTINEL_PORT, 5, 3),
    livenessProbe: { ...pingProbe(SENTINEL_PORT, 15, 4), initialDelaySeconds: 30 },
    volumeMounts: [{ name: "sentinel-runtime", mountPath: "/run/sentinel" }, ...mounts],
  };
  return [
    redis,
    ...(s.sentinel ? [sentinel] : []),
    exporterContainer({
      image: cfg.exporterImage,
      resources: cfg.exporterResources,
      authSecretName: a.authSecretName,
      checkSingleKeys: a.celeryQueues?.length ? celeryQueueKeys(a.celeryQueues) : undefined,
    }),
  ];
}

/** The servers' StatefulSet. */
export function brokerStatefulSetSpec(a: {
  shape: BrokerShape;
  storage: BrokerSettings["storage"];
  serviceName: pulumi.Input<string>;
  selector: Record<string, string>;
  labels: Record<string, string>;
  serviceAccountName: pulumi.Input<string>;
  containers: k8s.types.input.core.v1.Container[];
  /** Scripts, config and auth volumes (./pods redisVolumes). */
  volumes: k8s.types.input.core.v1.Volume[];
  configChecksum: string;
}): k8s.types.input.apps.v1.StatefulSetSpec {
  return redisStatefulSetSpec({
    serviceName: a.serviceName,
    replicas: a.shape.servers,
    configChecksum: a.configChecksum,
    selector: a.selector,
    labels: a.labels,
    serviceAccountName: a.serviceAccountName,
    containers: a.containers,
    volumes: [
      ...a.volumes,
      // Both hold files with the password: memory-backed, never on the node's disk.
      { name: "runtime", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } },
      ...(a.shape.sentinel
        ? [{ name: "sentinel-runtime", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } }]
        : []),
    ],
    storage: a.storage,
  });
}
