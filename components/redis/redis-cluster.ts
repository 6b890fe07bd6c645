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
import { allowPolicySpec } from "../lib/network";
import { workloadCompanions } from "../lib/workload";
import {
  CLUSTER_SCRIPTS,
  clusterConfigData,
  clusterFormJobName,
  clusterFormJobSpec,
  clusterHeadlessServiceSpec,
  clusterNetwork,
  clusterNodeAddresses,
  clusterNodeCount,
  clusterStatefulSetSpec,
  redisClientServiceSpec,
} from "./cluster-specs";
import { cacheClusterUrl } from "./content";
import { PASSWORD_KEY, REDIS_PORT, redisVolumes, scriptsData } from "./pods";

export interface RedisClusterArgs extends ClusterPlacement {
  /** app.kubernetes.io/instance: the stack name. */
  instance: string;
  /** Validated Redis settings (image, exporter, `cluster` sizing). */
  config: RedisConfig;
  /** Pods that may connect to the cache (API, workers, backup). Default: none. */
  clients?: NetworkPeer[];
  /** Cluster DNS domain. Default `cluster.local`. */
  clusterDomain?: string;
}

/** StatefulSet, Services and Secrets are all named from this (pods `redis-0`, `redis-1`, …). */
export const REDIS_CLUSTER_NAME = "redis";

/**
 * Redis Cluster for the API cache: StatefulSet `redis` of masters × (1 + replicas) nodes whose
 * identities are their DNS names (cluster-announce-hostname on the headless service), nodes.conf
 * and AOF on the PVC, an idempotent formation Job, redis_exporter sidecars, PDB and anti-affinity.
 * The password is generated here and reaches pods only through the `redis-auth` Secret.
 */
export class RedisCluster extends pulumi.ComponentResource {
  /** Client Service name (`redis`): any node; cluster-aware clients discover the rest. */
  public readonly serviceName: pulumi.Output<string>;
  /** `redis.<namespace>.svc.<domain>`. */
  public readonly dnsName: pulumi.Output<string>;
  public readonly port = REDIS_PORT;
  /** Secret holding the password (key `password`). */
  public readonly authSecretName: pulumi.Output<string>;
  /** Secret holding the cache URL for the API (key `url`). */
  public readonly cacheUrlSecretName: pulumi.Output<string>;
  public readonly cacheUrlSecretKey = "url";
  /** Every node as `host:port` by stable DNS name, in ordinal order. */
  public readonly nodeAddresses: pulumi.Output<string[]>;

  constructor(name: string, args: RedisClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("stock-analysis:redis:RedisCluster", name, {}, opts);
    const cfg = args.config;
    const base = REDIS_CLUSTER_NAME;
    const at: Placement = {
      name,
      args,
      base,
      headless: `${base}-headless`,
      domain: args.clusterDomain ?? "cluster.local",
      labels: workloadLabels(base, "cache", args.instance),
      selector: selectorLabels(base),
      child: { parent: this, provider: args.provider },
    };
    const { labels, selector, child, headless, domain } = at;

    this.dnsName = pulumi.interpolate`${base}.${args.namespace}.svc.${at.domain}`;
    const { auth, cacheUrl } = this.secrets(at, this.dnsName);
    this.authSecretName = auth.metadata.name;
    this.cacheUrlSecretName = cacheUrl.metadata.name;
    const content = this.content(at);
    // Identity and network (ServiceAccount, PDB, NetworkPolicy), Services, the nodes.
    const { serviceAccount } = workloadCompanions(this, args.provider, {
      name: base,
      namespace: args.namespace,
      labels,
      selector,
      network: clusterNetwork(base, selector, args.clients ?? []),
    });
    const headlessSvc = new k8s.core.v1.Service(
      `${name}-headless`,
      { metadata: meta(at, headless), spec: clusterHeadlessServiceSpec(selector) },
      child,
    );
    const svc = new k8s.core.v1.Service(
      `${name}-service`,
      { metadata: meta(at, base), spec: redisClientServiceSpec(selector) },
      child,
    );
    this.serviceName = svc.metadata.name;
    const volumes = redisVolumes({
      scriptsConfigMap: content.scripts.metadata.name,
      configConfigMap: content.config.metadata.name,
      authSecrets: [{ volume: "auth", secretName: auth.metadata.name }],
    });
    const statefulSet = new k8s.apps.v1.StatefulSet(
      `${name}-statefulset`,
      {
        metadata: meta(at, base),
        spec: clusterStatefulSetSpec({
          config: cfg,
          serviceName: headlessSvc.metadata.name,
          headless,
          domain,
          selector,
          labels,
          serviceAccountName: serviceAccount.metadata.name,
          authSecretName: auth.metadata.name,
          volumes,
          configChecksum: content.checksum,
        }),
      },
      child,
    );
    this.nodeAddresses = pulumi.output(args.namespace).apply((namespace) =>
      clusterNodeAddresses({
        base,
        headless,
        namespace,
        domain,
        count: clusterNodeCount(cfg.cluster),
      }),
    );
    this.formation(at, serviceAccount, volumes, statefulSet);

    this.registerOutputs({
      serviceName: this.serviceName,
      dnsName: this.dnsName,
      authSecretName: this.authSecretName,
      cacheUrlSecretName: this.cacheUrlSecretName,
      nodeAddresses: this.nodeAddresses,
    });
  }

  /** The password (Secret `redis-auth`) and the cache URL the API reads (`redis-cache-url`). */
  private secrets(at: Placement, dnsName: pulumi.Output<string>) {
    const { name, base, child } = at;
    const password = new random.RandomPassword(
      `${name}-password`,
      { length: 32, special: false },
      { parent: this },
    );
    const auth = new k8s.core.v1.Secret(
      `${name}-auth`,
      {
        metadata: meta(at, `${base}-auth`),
        type: "Opaque",
        stringData: { [PASSWORD_KEY]: password.result },
      },
      child,
    );
    const cacheUrl = new k8s.core.v1.Secret(
      `${name}-cache-url`,
      {
        metadata: meta(at, `${base}-cache-url`),
        type: "Opaque",
        stringData: {
          [this.cacheUrlSecretKey]: pulumi
            .all([password.result, dnsName])
            .apply(([pw, host]) => cacheClusterUrl({ password: pw, host, port: REDIS_PORT })),
        },
      },
      child,
    );
    return { auth, cacheUrl };
  }

  /** Config and scripts ConfigMaps; their checksum rolls the nodes one by one. */
  private content(at: Placement) {
    const configData = clusterConfigData(at.args.config.cluster);
    const scriptFiles = scriptsData(CLUSTER_SCRIPTS);
    const config = new k8s.core.v1.ConfigMap(
      `${at.name}-config`,
      { metadata: meta(at, `${at.base}-config`), data: configData },
      at.child,
    );
    const scripts = new k8s.core.v1.ConfigMap(
      `${at.name}-scripts`,
      { metadata: meta(at, `${at.base}-scripts`), data: scriptFiles },
      at.child,
    );
    return {
      config,
      scripts,
      checksum: checksum(JSON.stringify(configData), JSON.stringify(scriptFiles)),
    };
  }

  /** The formation Job (after the nodes), and the NetworkPolicy that lets it reach them. */
  private formation(
    at: Placement,
    serviceAccount: k8s.core.v1.ServiceAccount,
    volumes: k8s.types.input.core.v1.Volume[],
    statefulSet: k8s.apps.v1.StatefulSet,
  ): void {
    const { name, base, child } = at;
    const formLabels = workloadLabels(`${base}-cluster-form`, "cache-formation", at.args.instance);
    new k8s.networking.v1.NetworkPolicy(
      `${name}-form-netpol`,
      {
        metadata: meta(at, `${base}-cluster-form-allow`, formLabels),
        spec: allowPolicySpec(selectorLabels(`${base}-cluster-form`), {
          egressTo: [{ podLabels: at.selector, ports: [REDIS_PORT] }],
        }),
      },
      child,
    );
    new k8s.batch.v1.Job(
      `${name}-form`,
      {
        metadata: meta(at, clusterFormJobName(base, at.args.config.cluster), formLabels),
        spec: clusterFormJobSpec({
          config: at.args.config,
          labels: formLabels,
          serviceAccountName: serviceAccount.metadata.name,
          nodes: this.nodeAddresses.apply((a) => a.join(" ")),
          volumes,
        }),
      },
      { ...child, dependsOn: [statefulSet] },
    );
  }
}

/** What the constructor's parts share. */
interface Placement {
  name: string;
  args: RedisClusterArgs;
  base: string;
  headless: string;
  domain: string;
  labels: Record<string, string>;
  selector: Record<string, string>;
  child: { parent: pulumi.Resource; provider: k8s.Provider };
}

const meta = (at: Placement, name: string, labels: Record<string, string> = at.labels) => ({
  name,
  namespace: at.args.namespace,
  labels,
});
