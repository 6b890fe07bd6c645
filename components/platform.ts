import * as docker from "@pulumi/docker";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { CeleryWorker } from "./app/celery-worker";
import { ApiMigration, migrationApp } from "./app/migration";
import { WebService } from "./app/web-service";
import { ClusterTarget } from "./cluster/cluster-target";
import type { PlatformConfig } from "./config/schema";
import { hasRegistryHost } from "./config/validators";
import { PlatformNamespace } from "./core/platform-namespace";
import { PlatformIngress } from "./ingress/platform-ingress";
import { ClusterPlacement, NetworkPeer, PART_OF, SecretKeyRef } from "./lib/k8s";
import { redisTier } from "./redis/tier";
import { Monitoring, MonitoringArgs } from "./monitoring/monitoring";
import { PgBouncer } from "./postgres/pgbouncer";
import { POOLER_PORT } from "./postgres/pgbouncer-content";
import { DATABASE_JOB_LABELS } from "./postgres/members";
import { PostgresCluster } from "./postgres/postgres-cluster";

/** Stable names the manual's runbooks use. */
export const NAMES = {
  api: "stock-analysis-api",
  frontend: "stock-analysis-frontend",
  celery: "stock-analysis-celery",
  appSecret: "stock-analysis-app",
} as const;

/** Type token of the platform: the one component at the root of every stack's resource tree. */
export const PLATFORM_TYPE = "stock-analysis:platform:Platform";

/**
 * Options of the platform's direct children. Until the platform was one component they were
 * top-level resources of the stack: the alias keeps their URNs (and, inherited, their
 * descendants') so an existing stack updates in place instead of replacing everything.
 */
function childOf(parent: Platform): pulumi.ResourceOptions {
  return { parent, aliases: [{ parent: pulumi.rootStackResource }] };
}

/** How the platform's pods reach one another: the peers the NetworkPolicies admit. */
export interface PlatformPeers {
  /** Prometheus' pods, scraping metrics ports. */
  prometheus: NetworkPeer;
  /** The ingress controller's namespace on one port. */
  fromIngress(port: number): NetworkPeer;
  /** Where the API and Celery connect: PostgreSQL (or its pooler), Redis, the broker. */
  dataStores: NetworkPeer[];
  /** The API and Celery pods, as clients of the data stores. */
  appClients: NetworkPeer[];
  /** Name of the PgBouncer deployment when the pooler is on. */
  poolerName: string;
}

/** The network peers of a config (pure). */
export function platformPeers(cfg: PlatformConfig): PlatformPeers {
  const poolerName = "postgresql-pooler";
  return {
    prometheus: { podLabels: { app: "prometheus" }, ports: [] },
    fromIngress: (port) => ({ namespace: cfg.ingress.controllerNamespace, ports: [port] }),
    // With the pooler on, the apps reach PostgreSQL only through it.
    dataStores: [
      cfg.postgres.pooler.enabled
        ? { podLabels: { app: poolerName }, ports: [POOLER_PORT] }
        : { podLabels: { app: "postgresql" }, ports: [5432] },
      { podLabels: { app: "redis" }, ports: [6379] },
      { podLabels: { app: "redis-broker" }, ports: [6379, 26379] },
    ],
    appClients: [
      { podLabels: { app: NAMES.api }, ports: [] },
      { podLabels: { app: NAMES.celery }, ports: [] },
    ],
    poolerName,
  };
}

/**
 * Where the Celery exporter reads the broker URL Celery uses. Its settings cannot carry
 * Sentinel's password (sentinel_kwargs), so a Sentinel broker needs an explicitly configured
 * secret (pure).
 */
export function celeryExporterBroker(cfg: PlatformConfig): "none" | "configured" | "derived" {
  if (!cfg.monitoring.enabled) return "none";
  if (cfg.monitoring.celeryExporter.brokerUrlSecret) return "configured";
  return cfg.redis.broker.mode === "standalone" ? "derived" : "none";
}

/** How Grafana is published through the platform's ingress, if there is one (pure). */
export function grafanaIngress(cfg: PlatformConfig): MonitoringArgs["ingress"] {
  if (!cfg.ingress.enabled) return undefined;
  const tls = cfg.ingress.tls;
  return {
    className: cfg.ingress.className,
    controllerNamespace: cfg.ingress.controllerNamespace,
    // cert-manager issues one certificate per Ingress, so Grafana gets its own secret.
    tlsSecretName:
      tls.mode === "secret"
        ? tls.secretName
        : tls.mode === "cert-manager"
          ? "grafana-tls"
          : undefined,
    annotations:
      tls.mode === "cert-manager"
        ? {
            [tls.issuerKind === "ClusterIssuer"
              ? "cert-manager.io/cluster-issuer"
              : "cert-manager.io/issuer"]: tls.issuer!,
          }
        : undefined,
  };
}

export interface PlatformArgs {
  /** The validated stack config (components/config/load.ts). */
  config: PlatformConfig;
  /** Stack name: app.kubernetes.io/instance of every object, the namespace's environment. */
  stack: string;
}

/** The stack outputs: stable DNS names and entry URLs, never secret values. */
export interface PlatformOutputs {
  namespace: pulumi.Output<string>;
  prometheusUrl?: pulumi.Output<string>;
  alertmanagerUrl?: pulumi.Output<string>;
  grafanaUrl?: pulumi.Input<string>;
  grafanaAdminSecret?: pulumi.Output<string>;
  lokiUrl?: pulumi.Output<string>;
  apiUrl: pulumi.Output<string>;
  frontendUrl: pulumi.Output<string>;
  celeryDeployment: pulumi.Output<string>;
  redisCache: pulumi.Output<string>;
  celeryBrokerSecret: pulumi.Output<string>;
  databaseHost: pulumi.Output<string>;
  databaseReadHost: pulumi.Output<string>;
  databasePoolerHost?: pulumi.Output<string>;
  databaseUrlSecret: pulumi.Input<string>;
  publicUrl?: pulumi.Input<string>;
}

/**
 * The whole platform from one validated config, as one component whose children follow
 * docs/ARCHITECTURE.md: cluster target, namespace, app secrets, data stores (Redis, PostgreSQL
 * and its pooler), app tier (migration, API, frontend, Celery), ingress, monitoring.
 */
export class Platform extends pulumi.ComponentResource {
  public readonly outputs: PlatformOutputs;
  private readonly cfg: PlatformConfig;
  private readonly stack: string;
  private readonly target: ClusterTarget;
  private readonly registryPassword?: pulumi.Output<string>;

  constructor(name: string, args: PlatformArgs, opts?: pulumi.ComponentResourceOptions) {
    super(PLATFORM_TYPE, name, {}, opts);
    const cfg = (this.cfg = args.config);
    const stack = (this.stack = args.stack);
    this.target = new ClusterTarget("cluster", { config: cfg.cluster }, childOf(this));
    const provider = this.target.provider;
    const ns = new PlatformNamespace(
      "namespace",
      { provider, name: cfg.namespace, environment: stack },
      childOf(this),
    );
    const placement = { provider, namespace: ns.name, timeZone: cfg.timeZone };
    this.registryPassword = cfg.registryPassword
      ? pulumi.secret(cfg.registryPassword.value)
      : undefined;
    const imagePullSecrets = this.pullSecrets(placement);
    const appSecret = this.appSecret(placement);
    const peers = platformPeers(cfg);

    const redis = this.redis(placement);
    const pgImage = this.image("postgres", cfg.postgres.image, cfg.postgres.build);
    const postgres = this.postgres(placement, peers, pgImage);
    const pooler = this.pooler(placement, peers, postgres, pgImage);
    // DATABASE_URL of the API and Celery: through PgBouncer when it is enabled.
    const databaseUrl = pooler?.databaseUrl ?? postgres.databaseUrl;

    const app = this.appTier(placement, peers, {
      imagePullSecrets,
      secretKey: { secretName: appSecret.metadata.name, key: "secret-key" },
      dataEnv: { ...redis.env, DATABASE_URL: databaseUrl },
      postgres,
      pgImage,
    });
    const ingress = cfg.ingress.enabled
      ? new PlatformIngress(
          "ingress",
          {
            ...placement,
            config: cfg.ingress,
            frontend: { serviceName: app.frontend.serviceName, port: app.frontend.port },
            api: { serviceName: app.api.serviceName, port: app.api.port },
          },
          { ...childOf(this), dependsOn: this.target.addonsReady },
        )
      : undefined;
    const monitoring = this.monitoring(placement, peers, redis, postgres);

    this.outputs = {
      namespace: ns.name,
      prometheusUrl: monitoring?.prometheusUrl,
      alertmanagerUrl: monitoring?.alertmanagerUrl,
      grafanaUrl: monitoring?.grafanaPublicUrl ?? monitoring?.grafanaUrl,
      grafanaAdminSecret: monitoring?.grafanaAdminSecret,
      lokiUrl: monitoring?.lokiUrl,
      apiUrl: app.api.dnsName.apply((d) => `http://${d}:${app.api.port}`),
      frontendUrl: app.frontend.dnsName.apply((d) => `http://${d}:${app.frontend.port}`),
      celeryDeployment: app.celery.deploymentName,
      redisCache: redis.cache.dnsName,
      celeryBrokerSecret: redis.broker.celerySecretName,
      databaseHost: postgres.dnsName,
      databaseReadHost: postgres.readDnsName,
      databasePoolerHost: pooler?.dnsName,
      databaseUrlSecret: databaseUrl.secretName,
      publicUrl: ingress?.url,
    };
    this.registerOutputs({});
  }

  /** The registry's pull Secret, when a registry with a password is configured. */
  private pullSecrets(placement: ClusterPlacement): pulumi.Input<string>[] {
    const { registry } = this.cfg;
    const password = this.registryPassword;
    if (!registry || !password) return [];
    const pull = new k8s.core.v1.Secret(
      "registry-pull",
      {
        metadata: {
          name: "registry-pull",
          namespace: placement.namespace,
          labels: { "app.kubernetes.io/part-of": PART_OF },
        },
        type: "kubernetes.io/dockerconfigjson",
        stringData: {
          ".dockerconfigjson": password.apply((p) =>
            JSON.stringify({
              auths: { [registry.server]: { username: registry.username, password: p } },
            }),
          ),
        },
      },
      { ...childOf(this), provider: placement.provider },
    );
    return [pull.metadata.name];
  }

  /** The API's signing key (sessions, tokens): generated once, kept in state as a secret. */
  private appSecret(placement: ClusterPlacement): k8s.core.v1.Secret {
    const secretKey = new random.RandomPassword(
      "api-secret-key",
      { length: 64, special: false },
      childOf(this),
    );
    return new k8s.core.v1.Secret(
      "app-secret",
      {
        metadata: {
          name: NAMES.appSecret,
          namespace: placement.namespace,
          labels: {
            "app.kubernetes.io/part-of": PART_OF,
            "app.kubernetes.io/managed-by": "pulumi",
          },
        },
        type: "Opaque",
        stringData: { "secret-key": secretKey.result },
      },
      { ...childOf(this), provider: placement.provider },
    );
  }

  /** Builds `image` from `build.context` and pushes it when a build is configured. */
  private image(
    name: string,
    image: string,
    build: { context: string; dockerfile: string } | undefined,
  ): pulumi.Input<string> {
    if (!build) return image;
    const { registry } = this.cfg;
    const password = this.registryPassword;
    const pushable = hasRegistryHost(image);
    const built = new docker.Image(
      `${name}-image`,
      {
        imageName: image,
        build: {
          context: build.context,
          dockerfile: `${build.context}/${build.dockerfile}`,
          platform: "linux/amd64",
        },
        registry:
          registry && password
            ? { server: registry.server, username: registry.username, password }
            : undefined,
        // A name without a registry host (`stock-analysis-postgres:…`) stays in the local Docker
        // engine (kind: `kind load`); anything else is pushed (registry config or ambient login).
        skipPush: !pushable,
      },
      childOf(this),
    );
    // The digest pins exactly what was pushed, so a rebuilt tag cannot change running pods.
    return pushable ? built.repoDigest : this.target.localImage(name, built.imageName);
  }

  /** Cache cluster, Celery broker and their backups. */
  private redis(placement: ClusterPlacement) {
    return redisTier(
      placement,
      {
        instance: this.stack,
        config: this.cfg.redis,
        clientApps: [NAMES.api, NAMES.celery],
        brokerOnlyClientApps: celeryExporterBroker(this.cfg) === "none" ? [] : ["celery-exporter"],
        // Source of celery_queue_length in every stack (recording rule over the broker's key sizes).
        celeryQueues: this.cfg.celery.queues,
      },
      childOf(this),
    );
  }

  /** PostgreSQL HA: Patroni members and pgBackRest backups (the member image). */
  private postgres(
    placement: ClusterPlacement,
    peers: PlatformPeers,
    image: pulumi.Input<string>,
  ): PostgresCluster {
    const cfg = this.cfg;
    return new PostgresCluster(
      "postgres",
      {
        ...placement,
        instance: this.stack,
        config: cfg.postgres,
        image,
        clients: [
          ...(cfg.postgres.pooler.enabled
            ? [{ podLabels: { app: peers.poolerName }, ports: [] }]
            : peers.appClients),
          // The migration Job connects directly (DDL and its pre-migration dump bypass the pooler).
          ...(cfg.migration.enabled
            ? [{ podLabels: { app: migrationApp(NAMES.api) }, ports: [] }]
            : []),
        ],
        scrapers: [peers.prometheus],
      },
      childOf(this),
    );
  }

  /** PgBouncer in front of PostgreSQL, when enabled. */
  private pooler(
    placement: ClusterPlacement,
    peers: PlatformPeers,
    postgres: PostgresCluster,
    pgImage: pulumi.Input<string>,
  ): PgBouncer | undefined {
    const cfg = this.cfg;
    if (!cfg.postgres.pooler.enabled) return undefined;
    return new PgBouncer(
      "pooler",
      {
        ...placement,
        name: peers.poolerName,
        instance: this.stack,
        config: cfg.postgres.pooler,
        serverHost: postgres.dnsName,
        serverPodLabels: { app: "postgresql" },
        app: postgres.app,
        clients: peers.appClients,
        scrapers: [peers.prometheus],
        // Prepares the database (role + lookup function) also when it predates the pooler.
        bootstrap: {
          image: pgImage,
          uid: 999,
          superuserPassword: { secretName: postgres.passwordSecretName, key: "superuser-password" },
          // The labels PostgreSQL's NetworkPolicies admit for its database Jobs.
          podLabels: { ...DATABASE_JOB_LABELS },
        },
      },
      childOf(this),
    );
  }

  /** The upgrade flow's migration Job, then API, frontend and Celery (which wait for it). */
  private appTier(
    placement: ClusterPlacement,
    peers: PlatformPeers,
    deps: {
      imagePullSecrets: pulumi.Input<string>[];
      secretKey: SecretKeyRef;
      /** REDIS_URL, the CELERY_BROKER_* keys and DATABASE_URL. */
      dataEnv: Record<string, SecretKeyRef>;
      postgres: PostgresCluster;
      pgImage: pulumi.Input<string>;
    },
  ) {
    const { cfg, stack } = this;
    const { imagePullSecrets, dataEnv } = deps;
    const apiImage = this.image("api", cfg.api.image, cfg.api.build);
    // The upgrade flow: fresh dump, migration in the new image, then the rollout (docs/RUNBOOK.md).
    const migration = cfg.migration.enabled
      ? new ApiMigration(
          "api-migration",
          {
            ...placement,
            base: NAMES.api,
            instance: stack,
            config: cfg.migration,
            image: apiImage,
            backupImage: deps.pgImage,
            databaseUrl: deps.postgres.databaseUrl,
            database: { podLabels: { app: "postgresql" }, port: 5432 },
            imagePullSecrets,
            waitFor: [deps.postgres],
          },
          childOf(this),
        )
      : undefined;
    const rolloutAfter = migration ? [migration.job] : undefined;

    const api = new WebService(
      "api",
      {
        ...placement,
        name: NAMES.api,
        component: "api",
        instance: stack,
        config: cfg.api,
        image: apiImage,
        imagePullSecrets,
        rolloutAfter,
        secretEnv: { SECRET_KEY: deps.secretKey, ...dataEnv },
        network: {
          ingressFrom: [
            peers.fromIngress(cfg.api.port),
            { ...peers.prometheus, ports: [cfg.api.port] },
          ],
          egressTo: peers.dataStores,
        },
      },
      childOf(this),
    );
    const frontend = new WebService(
      "frontend",
      {
        ...placement,
        name: NAMES.frontend,
        component: "frontend",
        instance: stack,
        config: cfg.frontend,
        image: this.image("frontend", cfg.frontend.image, cfg.frontend.build),
        imagePullSecrets,
        network: {
          ingressFrom: [
            peers.fromIngress(cfg.frontend.port),
            ...(cfg.frontend.metrics.enabled
              ? [{ ...peers.prometheus, ports: [cfg.frontend.port] }]
              : []),
          ],
        },
      },
      childOf(this),
    );
    const celery = new CeleryWorker(
      "celery",
      {
        ...placement,
        name: NAMES.celery,
        instance: stack,
        config: cfg.celery,
        image: this.image("celery", cfg.celery.image, cfg.celery.build),
        imagePullSecrets,
        secretEnv: dataEnv,
        network: { egressTo: peers.dataStores },
        // Celery runs the same code against the same schema: it waits for the migration too.
        rolloutAfter,
      },
      childOf(this),
    );
    return { migration, api, frontend, celery };
  }

  /** Prometheus, Alertmanager, Grafana, Loki and the exporters, when enabled. */
  private monitoring(
    placement: ClusterPlacement,
    peers: PlatformPeers,
    redis: ReturnType<typeof redisTier>,
    postgres: PostgresCluster,
  ): Monitoring | undefined {
    const cfg = this.cfg;
    if (!cfg.monitoring.enabled) return undefined;
    const exporterSecret = cfg.monitoring.celeryExporter.brokerUrlSecret;
    const brokerUrl: SecretKeyRef | undefined = exporterSecret
      ? { secretName: exporterSecret.name, key: exporterSecret.key }
      : celeryExporterBroker(cfg) === "derived"
        ? { secretName: redis.broker.celerySecretName, key: redis.broker.celeryUrlKey }
        : undefined;
    const secretOrUnset = (v: { value: string } | undefined) =>
      v === undefined ? undefined : pulumi.secret(v.value);
    return new Monitoring(
      "monitoring",
      {
        ...placement,
        namespaceName: cfg.namespace,
        instance: this.stack,
        config: cfg.monitoring,
        alertEndpoints: {
          slackApiUrl: secretOrUnset(cfg.alertSlackWebhookUrl),
          pagerWebhookUrl: secretOrUnset(cfg.alertPagerWebhookUrl),
          webhookUrl: secretOrUnset(cfg.alertWebhookUrl),
          smtpPassword: secretOrUnset(cfg.alertSmtpPassword),
        },
        apiPort: cfg.api.port,
        celery: brokerUrl
          ? {
              brokerUrl,
              queues: cfg.celery.queues,
              broker: peers.dataStores.find((p) => p.podLabels?.app === "redis-broker")!,
            }
          : undefined,
        postgresReplicas: cfg.postgres.replicas - 1,
        postgresBackup: postgres.verifyCronJobName
          ? {
              archiveTimeoutSeconds: cfg.postgres.backup.archiveTimeout,
              verifyCronJob: postgres.verifyCronJobName,
            }
          : undefined,
        ingress: grafanaIngress(cfg),
      },
      childOf(this),
    );
  }
}

/** The platform component for a stack; returns the stack outputs. */
export function buildPlatform(cfg: PlatformConfig, stack: string): PlatformOutputs {
  return new Platform("platform", { config: cfg, stack }).outputs;
}
