import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { RedisConfig } from "../config/redis";
import {
  checksum,
  ClusterPlacement,
  NetworkPeer,
  plainEnv,
  restrictedContainerSecurity,
  selectorLabels,
  toResourceRequirements,
  workloadLabels,
} from "../lib/k8s";
import { workloadCompanions } from "../lib/workload";
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
  redisVolumes,
  scriptsData,
  redisStatefulSetSpec,
} from "./pods";

export interface RedisBrokerArgs extends ClusterPlacement {
  /** app.kubernetes.io/instance: the stack name. */
  instance: string;
  /** Validated Redis settings (image, exporter, `broker`). */
  config: RedisConfig;
  /** Pods that may connect (Celery workers, the API publishing tasks, backup). Default: none. */
  clients?: NetworkPeer[];
  /** Cluster DNS domain. Default `cluster.local`. */
  clusterDomain?: string;
  /**
   * Celery queues whose lengths the pods' redis_exporter sidecars export as `redis_key_size`
   * (the source of `celery_queue_length`). Default: none.
   */
  celeryQueues?: string[];
}

export const REDIS_BROKER_NAME = "redis-broker";
/** Sentinel's name for the broker primary: Celery's `master_name`. */
export const BROKER_MASTER_NAME = "broker";

/**
 * Celery's broker. `standalone`: one Redis server behind Service `redis-broker`. `sentinel`: a
 * StatefulSet of servers, each with a Sentinel sidecar; Sentinel promotes a replica when the
 * primary fails and Celery follows through kombu's `sentinel://` transport. No eviction, AOF on.
 * Celery's broker URL and transport options are published in Secret `celery-broker`.
 */
export class RedisBroker extends pulumi.ComponentResource {
  /** Secret holding the broker password (key `password`). */
  public readonly authSecretName: pulumi.Output<string>;
  /** Secret with keys `broker-url` and `transport-options` (JSON) for Celery. */
  public readonly celerySecretName: pulumi.Output<string>;
  public readonly celeryUrlKey = "broker-url";
  public readonly celeryTransportOptionsKey = "transport-options";
  /** Standalone: the server as `host:port`; sentinel: unset. */
  public readonly address: pulumi.Output<string> | undefined;
  /** Sentinel mode: every sentinel as `host:port`. */
  public readonly sentinelAddresses: pulumi.Output<string[]> | undefined;
  public readonly masterName = BROKER_MASTER_NAME;

  constructor(name: string, args: RedisBrokerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("stock-analysis:redis:RedisBroker", name, {}, opts);
    const cfg = args.config;
    const b = cfg.broker;
    const sentinel = b.mode === "sentinel";
    const domain = args.clusterDomain ?? "cluster.local";
    const base = REDIS_BROKER_NAME;
    const headless = `${base}-headless`;
    const labels = workloadLabels(base, "broker", args.instance);
    const selector = selectorLabels(base);
    const child = { parent: this, provider: args.provider };
    const meta = (n: string) => ({ name: n, namespace: args.namespace, labels });
    const servers = sentinel ? b.replicas : 1;
    const podHost = (ns: string, i: number) => `${base}-${i}.${headless}.${ns}.svc.${domain}`;

    const password = new random.RandomPassword(
      `${name}-password`,
      { length: 32, special: false },
      { parent: this },
    );
    const auth = new k8s.core.v1.Secret(
      `${name}-auth`,
      {
        metadata: meta(`${base}-auth`),
        type: "Opaque",
        stringData: { [PASSWORD_KEY]: password.result },
      },
      child,
    );
    this.authSecretName = auth.metadata.name;

    const ns = pulumi.output(args.namespace);
    this.sentinelAddresses = sentinel
      ? ns.apply((n) =>
          Array.from({ length: servers }, (_, i) => `${podHost(n, i)}:${SENTINEL_PORT}`),
        )
      : undefined;
    this.address = sentinel
      ? undefined
      : ns.apply((n) => `${base}.${n}.svc.${domain}:${REDIS_PORT}`);
    const settings = pulumi.all([password.result, ns]).apply(([pw, n]) =>
      celeryBrokerSettings({
        password: pw,
        visibilityTimeoutS: b.visibilityTimeoutS,
        ...(sentinel
          ? {
              sentinels: Array.from({ length: servers }, (_, i) => ({
                host: podHost(n, i),
                port: SENTINEL_PORT,
              })),
              masterName: BROKER_MASTER_NAME,
            }
          : { standalone: { host: `${base}.${n}.svc.${domain}`, port: REDIS_PORT } }),
      }),
    );
    const celery = new k8s.core.v1.Secret(
      `${name}-celery`,
      {
        metadata: meta("celery-broker"),
        type: "Opaque",
        stringData: {
          [this.celeryUrlKey]: settings.apply((s) => s.url),
          [this.celeryTransportOptionsKey]: settings.apply((s) =>
            JSON.stringify(s.transportOptions),
          ),
        },
      },
      child,
    );
    this.celerySecretName = celery.metadata.name;

    const configData: Record<string, string> = {
      "broker.conf": brokerConf({
        maxmemoryBytes: maxmemoryFor(memoryQuantityBytes(b.resources.limits.memory)),
      }),
      ...(sentinel
        ? {
            "sentinel.conf": sentinelConf({
              masterName: BROKER_MASTER_NAME,
              quorum: Math.floor(servers / 2) + 1,
              downAfterMs: b.downAfterMs,
            }),
          }
        : {}),
    };
    const scriptFiles = scriptsData(
      sentinel
        ? ["lib.sh", "broker-entrypoint.sh", "sentinel-entrypoint.sh"]
        : ["lib.sh", "broker-entrypoint.sh"],
    );
    const config = new k8s.core.v1.ConfigMap(
      `${name}-config`,
      { metadata: meta(`${base}-config`), data: configData },
      child,
    );
    const scripts = new k8s.core.v1.ConfigMap(
      `${name}-scripts`,
      { metadata: meta(`${base}-scripts`), data: scriptFiles },
      child,
    );

    const ports = sentinel ? [REDIS_PORT, SENTINEL_PORT] : [REDIS_PORT];
    const self: NetworkPeer = { podLabels: selector, ports };
    const { serviceAccount } = workloadCompanions(this, args.provider, {
      name: base,
      namespace: args.namespace,
      labels,
      selector,
      network: {
        ingressFrom: [
          ...(sentinel ? [self] : []),
          { podLabels: { app: "prometheus" }, ports: [EXPORTER_PORT] },
          ...(args.clients ?? []).map((p) => ({ ...p, ports })),
        ],
        egressTo: sentinel ? [self] : [],
      },
    });

    const headlessSvc = new k8s.core.v1.Service(
      `${name}-headless`,
      {
        metadata: meta(headless),
        spec: {
          clusterIP: "None",
          publishNotReadyAddresses: true,
          selector,
          ports: [
            { name: "redis", port: REDIS_PORT, targetPort: REDIS_PORT },
            ...(sentinel
              ? [{ name: "sentinel", port: SENTINEL_PORT, targetPort: SENTINEL_PORT }]
              : []),
            { name: "metrics", port: EXPORTER_PORT, targetPort: EXPORTER_PORT },
          ],
        },
      },
      child,
    );
    if (!sentinel) {
      // With Sentinel a plain Service would also hit replicas; clients ask the sentinels instead.
      new k8s.core.v1.Service(
        `${name}-service`,
        {
          metadata: meta(base),
          spec: {
            type: "ClusterIP",
            selector,
            ports: [{ name: "redis", port: REDIS_PORT, targetPort: REDIS_PORT }],
          },
        },
        child,
      );
    }

    const passwordFile = `${AUTH_PATH}/${PASSWORD_KEY}`;
    const sentinelList = ns.apply((n) =>
      Array.from({ length: servers }, (_, i) => `${podHost(n, i)}:${SENTINEL_PORT}`).join(" "),
    );
    const initialPrimary = ns.apply((n) => `${podHost(n, 0)}:${REDIS_PORT}`);
    const sentinelEnv: k8s.types.input.core.v1.EnvVar[] = [
      { name: "BROKER_SENTINELS", value: sentinelList },
      { name: "BROKER_INITIAL_PRIMARY", value: initialPrimary },
      { name: "BROKER_MASTER_NAME", value: BROKER_MASTER_NAME },
    ];
    const mounts = [
      { name: "scripts", mountPath: SCRIPTS_PATH, readOnly: true },
      { name: "config", mountPath: CONFIG_PATH, readOnly: true },
      { name: "auth", mountPath: AUTH_PATH, readOnly: true },
    ];
    const containers: k8s.types.input.core.v1.Container[] = [
      {
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
          ...(sentinel
            ? [...podDnsEnv("BROKER_ANNOUNCE_HOSTNAME", headless, domain), ...sentinelEnv]
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
      },
    ];
    if (sentinel) {
      containers.push({
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
          ...podDnsEnv("SENTINEL_ANNOUNCE_HOSTNAME", headless, domain),
          ...sentinelEnv,
        ],
        ports: [{ name: "sentinel", containerPort: SENTINEL_PORT }],
        resources: toResourceRequirements(b.sentinelResources),
        securityContext: restrictedContainerSecurity(true),
        readinessProbe: pingProbe(SENTINEL_PORT, 5, 3),
        livenessProbe: { ...pingProbe(SENTINEL_PORT, 15, 4), initialDelaySeconds: 30 },
        volumeMounts: [{ name: "sentinel-runtime", mountPath: "/run/sentinel" }, ...mounts],
      });
    }
    containers.push(
      exporterContainer({
        image: cfg.exporterImage,
        resources: cfg.exporterResources,
        authSecretName: auth.metadata.name,
        checkSingleKeys: args.celeryQueues?.length ? celeryQueueKeys(args.celeryQueues) : undefined,
      }),
    );

    new k8s.apps.v1.StatefulSet(
      `${name}-statefulset`,
      {
        metadata: meta(base),
        spec: redisStatefulSetSpec({
          serviceName: headlessSvc.metadata.name,
          replicas: servers,
          configChecksum: checksum(JSON.stringify(configData), JSON.stringify(scriptFiles)),
          selector,
          labels,
          serviceAccountName: serviceAccount.metadata.name,
          containers,
          volumes: [
            ...redisVolumes({
              scriptsConfigMap: scripts.metadata.name,
              configConfigMap: config.metadata.name,
              authSecrets: [{ volume: "auth", secretName: auth.metadata.name }],
            }),
            // Both hold files with the password: memory-backed, never on the node's disk.
            { name: "runtime", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } },
            ...(sentinel
              ? [{ name: "sentinel-runtime", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } }]
              : []),
          ],
          storage: b.storage,
        }),
      },
      child,
    );

    this.registerOutputs({
      authSecretName: this.authSecretName,
      celerySecretName: this.celerySecretName,
      address: this.address,
      sentinelAddresses: this.sentinelAddresses,
    });
  }
}
