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
  restrictedPodSecurity,
  selectorLabels,
  toResourceRequirements,
  workloadLabels,
} from "../lib/k8s";
import { allowPolicySpec } from "../lib/network";
import { workloadCompanions } from "../lib/workload";
import { cacheClusterUrl, clusterNodeConf, maxmemoryFor, memoryQuantityBytes } from "./content";
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
  redisVolumes,
  scriptsData,
  redisStatefulSetSpec,
} from "./pods";

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
const BUS_PORT = REDIS_PORT + 10000;

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
    const c = cfg.cluster;
    const domain = args.clusterDomain ?? "cluster.local";
    const base = REDIS_CLUSTER_NAME;
    const headless = `${base}-headless`;
    const labels = workloadLabels(base, "cache", args.instance);
    const selector = selectorLabels(base);
    const child = { parent: this, provider: args.provider };
    const meta = (n: string, l: Record<string, string> = labels) => ({
      name: n,
      namespace: args.namespace,
      labels: l,
    });
    const nodeCount = c.masters * (1 + c.replicasPerMaster);

    const password = new random.RandomPassword(
      `${name}-password`,
      { length: 32, special: false },
      {
        parent: this,
      },
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

    this.dnsName = pulumi.interpolate`${base}.${args.namespace}.svc.${domain}`;
    const cacheUrl = new k8s.core.v1.Secret(
      `${name}-cache-url`,
      {
        metadata: meta(`${base}-cache-url`),
        type: "Opaque",
        stringData: {
          [this.cacheUrlSecretKey]: pulumi
            .all([password.result, this.dnsName])
            .apply(([pw, host]) => cacheClusterUrl({ password: pw, host, port: REDIS_PORT })),
        },
      },
      child,
    );
    this.cacheUrlSecretName = cacheUrl.metadata.name;

    const configData = {
      "redis.conf": clusterNodeConf({
        maxmemoryBytes: maxmemoryFor(memoryQuantityBytes(c.resources.limits.memory)),
        nodeTimeoutMs: c.nodeTimeoutMs,
      }),
    };
    const scriptFiles = scriptsData(["lib.sh", "node-entrypoint.sh", "cluster-form.sh"]);
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

    const formLabels = workloadLabels(`${base}-cluster-form`, "cache-formation", args.instance);
    const self: NetworkPeer = { podLabels: selector, ports: [REDIS_PORT, BUS_PORT] };
    const { serviceAccount } = workloadCompanions(this, args.provider, {
      name: base,
      namespace: args.namespace,
      labels,
      selector,
      network: {
        ingressFrom: [
          self,
          { podLabels: selectorLabels(`${base}-cluster-form`), ports: [REDIS_PORT] },
          { podLabels: { app: "prometheus" }, ports: [EXPORTER_PORT] },
          ...(args.clients ?? []).map((p) => ({ ...p, ports: [REDIS_PORT] })),
        ],
        egressTo: [self],
      },
    });

    const headlessSvc = new k8s.core.v1.Service(
      `${name}-headless`,
      {
        metadata: meta(headless),
        spec: {
          clusterIP: "None",
          // Nodes must find each other by name before they are ready (formation, rejoin).
          publishNotReadyAddresses: true,
          selector,
          ports: [
            { name: "redis", port: REDIS_PORT, targetPort: REDIS_PORT },
            { name: "bus", port: BUS_PORT, targetPort: BUS_PORT },
            { name: "metrics", port: EXPORTER_PORT, targetPort: EXPORTER_PORT },
          ],
        },
      },
      child,
    );
    const svc = new k8s.core.v1.Service(
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
    this.serviceName = svc.metadata.name;

    const volumes = redisVolumes({
      scriptsConfigMap: scripts.metadata.name,
      configConfigMap: config.metadata.name,
      authSecrets: [{ volume: "auth", secretName: auth.metadata.name }],
    });
    const statefulSet = new k8s.apps.v1.StatefulSet(
      `${name}-statefulset`,
      {
        metadata: meta(base),
        // Cluster nodes are peers: started together, the formation Job waits for all.
        spec: redisStatefulSetSpec({
          serviceName: headlessSvc.metadata.name,
          replicas: nodeCount,
          configChecksum: checksum(JSON.stringify(configData), JSON.stringify(scriptFiles)),
          selector,
          labels,
          serviceAccountName: serviceAccount.metadata.name,
          containers: [
            {
              name: "redis",
              image: cfg.image,
              imagePullPolicy: "IfNotPresent",
              command: ["bash", `${SCRIPTS_PATH}/node-entrypoint.sh`],
              env: [
                ...podDnsEnv("REDIS_ANNOUNCE_HOSTNAME", headless, domain),
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
              resources: toResourceRequirements(c.resources),
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
            },
            exporterContainer({
              image: cfg.exporterImage,
              resources: cfg.exporterResources,
              authSecretName: auth.metadata.name,
            }),
          ],
          volumes: [
            ...volumes,
            // Holds the include with the password: memory-backed, never on the node's disk.
            { name: "runtime", emptyDir: { medium: "Memory", sizeLimit: "1Mi" } },
          ],
          storage: c.storage,
        }),
      },
      child,
    );

    this.nodeAddresses = pulumi
      .output(args.namespace)
      .apply((ns) =>
        Array.from(
          { length: nodeCount },
          (_, i) => `${base}-${i}.${headless}.${ns}.svc.${domain}:${REDIS_PORT}`,
        ),
      );

    // A new Job per topology: Jobs are immutable, and the script is a no-op on a formed cluster.
    const formName = `${base}-cluster-form-${c.masters}x${c.replicasPerMaster}`;
    new k8s.networking.v1.NetworkPolicy(
      `${name}-form-netpol`,
      {
        metadata: meta(`${base}-cluster-form-allow`, formLabels),
        spec: allowPolicySpec(selectorLabels(`${base}-cluster-form`), {
          egressTo: [{ podLabels: selector, ports: [REDIS_PORT] }],
        }),
      },
      child,
    );
    new k8s.batch.v1.Job(
      `${name}-form`,
      {
        metadata: meta(formName, formLabels),
        spec: {
          backoffLimit: 4,
          activeDeadlineSeconds: 1200,
          template: {
            metadata: { labels: formLabels },
            spec: {
              restartPolicy: "Never",
              serviceAccountName: serviceAccount.metadata.name,
              automountServiceAccountToken: false,
              securityContext: restrictedPodSecurity(REDIS_UID),
              containers: [
                {
                  name: "cluster-form",
                  image: cfg.image,
                  imagePullPolicy: "IfNotPresent",
                  command: ["bash", `${SCRIPTS_PATH}/cluster-form.sh`],
                  env: [
                    { name: "REDIS_NODES", value: this.nodeAddresses.apply((a) => a.join(" ")) },
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
              volumes: volumes.filter((v) => v.name !== "config"),
            },
          },
        },
      },
      { ...child, dependsOn: [statefulSet] },
    );

    this.registerOutputs({
      serviceName: this.serviceName,
      dnsName: this.dnsName,
      authSecretName: this.authSecretName,
      cacheUrlSecretName: this.cacheUrlSecretName,
      nodeAddresses: this.nodeAddresses,
    });
  }
}
