import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { RedisConfig } from "../config/redis";
import {
  checksum,
  ClusterPlacement,
  NetworkPeer,
  selectorLabels,
  workloadLabels,
} from "../lib/k8s";
import { workloadCompanions } from "../lib/workload";
import {
  brokerCelerySettings,
  brokerConfigData,
  brokerContainers,
  brokerHeadlessServiceSpec,
  brokerNetwork,
  brokerScripts,
  brokerSentinelAddresses,
  BrokerShape,
  brokerShape,
  brokerStatefulSetSpec,
} from "./broker-specs";
import { redisClientServiceSpec } from "./cluster-specs";
import { PASSWORD_KEY, REDIS_PORT, redisVolumes, scriptsData } from "./pods";

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
    const base = REDIS_BROKER_NAME;
    const domain = args.clusterDomain ?? "cluster.local";
    const shape = brokerShape(base, cfg.broker, domain, BROKER_MASTER_NAME);
    const labels = workloadLabels(base, "broker", args.instance);
    const selector = selectorLabels(base);
    const child = { parent: this, provider: args.provider };
    const meta = (n: string) => ({ name: n, namespace: args.namespace, labels });
    const ns = pulumi.output(args.namespace);
    const at: Parts = { name, args, shape, meta, child, ns };

    const { auth, celery } = this.secrets(at);
    this.authSecretName = auth.metadata.name;
    this.celerySecretName = celery.metadata.name;
    this.sentinelAddresses = shape.sentinel
      ? ns.apply((n) => brokerSentinelAddresses(shape, n))
      : undefined;
    this.address = shape.sentinel
      ? undefined
      : ns.apply((n) => `${base}.${n}.svc.${domain}:${REDIS_PORT}`);
    const content = this.content(at);

    // Identity and network (ServiceAccount, PDB, NetworkPolicy), Services, the servers.
    const { serviceAccount } = workloadCompanions(this, args.provider, {
      name: base,
      namespace: args.namespace,
      labels,
      selector,
      network: brokerNetwork(shape, selector, args.clients ?? []),
    });
    const headlessSvc = new k8s.core.v1.Service(
      `${name}-headless`,
      { metadata: meta(shape.headless), spec: brokerHeadlessServiceSpec(shape, selector) },
      child,
    );
    // With Sentinel a plain Service would also hit replicas; clients ask the sentinels instead.
    if (!shape.sentinel)
      new k8s.core.v1.Service(
        `${name}-service`,
        { metadata: meta(base), spec: redisClientServiceSpec(selector) },
        child,
      );
    new k8s.apps.v1.StatefulSet(
      `${name}-statefulset`,
      {
        metadata: meta(base),
        spec: brokerStatefulSetSpec({
          shape,
          storage: cfg.broker.storage,
          serviceName: headlessSvc.metadata.name,
          selector,
          labels,
          serviceAccountName: serviceAccount.metadata.name,
          containers: brokerContainers({
            shape,
            config: cfg,
            namespace: ns,
            authSecretName: auth.metadata.name,
            celeryQueues: args.celeryQueues,
          }),
          volumes: redisVolumes({
            scriptsConfigMap: content.scripts.metadata.name,
            configConfigMap: content.config.metadata.name,
            authSecrets: [{ volume: "auth", secretName: auth.metadata.name }],
          }),
          configChecksum: content.checksum,
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

  /** The password (Secret `redis-broker-auth`) and Celery's URL and options (`celery-broker`). */
  private secrets(at: Parts) {
    const { name, shape, meta, child } = at;
    const password = new random.RandomPassword(
      `${name}-password`,
      { length: 32, special: false },
      { parent: this },
    );
    const auth = new k8s.core.v1.Secret(
      `${name}-auth`,
      {
        metadata: meta(`${shape.base}-auth`),
        type: "Opaque",
        stringData: { [PASSWORD_KEY]: password.result },
      },
      child,
    );
    const settings = pulumi
      .all([password.result, at.ns])
      .apply(([pw, n]) => brokerCelerySettings(shape, at.args.config.broker, pw, n));
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
    return { auth, celery };
  }

  /** Config and scripts ConfigMaps; their checksum rolls the servers one by one. */
  private content(at: Parts) {
    const { name, shape, meta, child } = at;
    const configData = brokerConfigData(shape, at.args.config.broker);
    const scriptFiles = scriptsData(brokerScripts(shape));
    const config = new k8s.core.v1.ConfigMap(
      `${name}-config`,
      { metadata: meta(`${shape.base}-config`), data: configData },
      child,
    );
    const scripts = new k8s.core.v1.ConfigMap(
      `${name}-scripts`,
      { metadata: meta(`${shape.base}-scripts`), data: scriptFiles },
      child,
    );
    return {
      config,
      scripts,
      checksum: checksum(JSON.stringify(configData), JSON.stringify(scriptFiles)),
    };
  }
}

/** What the constructor's parts share. */
interface Parts {
  name: string;
  args: RedisBrokerArgs;
  shape: BrokerShape;
  meta: (name: string) => {
    name: string;
    namespace: pulumi.Input<string>;
    labels: Record<string, string>;
  };
  child: { parent: pulumi.Resource; provider: k8s.Provider };
  ns: pulumi.Output<string>;
}
