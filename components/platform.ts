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
import { NetworkPeer, PART_OF, SecretKeyRef } from "./lib/k8s";
import { redisTier } from "./redis/tier";
import { Monitoring } from "./monitoring/monitoring";
import { PgBouncer } from "./postgres/pgbouncer";
import { POOLER_PORT } from "./postgres/pgbouncer-content";
import { PostgresCluster } from "./postgres/postgres-cluster";

/** Stable names the manual's runbooks use. */
export const NAMES = {
  api: "stock-analysis-api",
  frontend: "stock-analysis-frontend",
  celery: "stock-analysis-celery",
  appSecret: "stock-analysis-app",
} as const;

/** Builds `image` from `build.context` and pushes it when a build is configured. */
function imageFor(
  target: ClusterTarget,
  name: string,
  image: string,
  build: { context: string; dockerfile: string } | undefined,
  registry: PlatformConfig["registry"],
  registryPassword: pulumi.Output<string> | undefined,
): pulumi.Input<string> {
  if (!build) return image;
  const pushable = hasRegistryHost(image);
  const built = new docker.Image(`${name}-image`, {
    imageName: image,
    build: {
      context: build.context,
      dockerfile: `${build.context}/${build.dockerfile}`,
      platform: "linux/amd64",
    },
    registry:
      registry && registryPassword
        ? { server: registry.server, username: registry.username, password: registryPassword }
        : undefined,
    // A name without a registry host (`stock-analysis-postgres:…`) stays in the local Docker
    // engine (kind: `kind load`); anything else is pushed (registry config or ambient login).
    skipPush: !pushable,
  });
  // The digest pins exactly what was pushed, so a rebuilt tag cannot change running pods.
  return pushable ? built.repoDigest : target.localImage(name, built.imageName);
}

/**
 * The whole platform from one validated config: cluster target, namespace, app tier, ingress.
 * Returns the stack outputs (stable DNS names and entry URLs; never secret values).
 */
export function buildPlatform(cfg: PlatformConfig, stack: string) {
  const target = new ClusterTarget("cluster", { config: cfg.cluster });
  const provider = target.provider;
  const ns = new PlatformNamespace("namespace", {
    provider,
    name: cfg.namespace,
    environment: stack,
  });
  const namespace = ns.name;
  const placement = { provider, namespace, timeZone: cfg.timeZone };

  const registryPassword = cfg.registryPassword
    ? pulumi.secret(cfg.registryPassword.value)
    : undefined;
  const imagePullSecrets: pulumi.Input<string>[] = [];
  if (cfg.registry && registryPassword) {
    const pull = new k8s.core.v1.Secret(
      "registry-pull",
      {
        metadata: {
          name: "registry-pull",
          namespace,
          labels: { "app.kubernetes.io/part-of": PART_OF },
        },
        type: "kubernetes.io/dockerconfigjson",
        stringData: {
          ".dockerconfigjson": registryPassword.apply((p) =>
            JSON.stringify({
              auths: { [cfg.registry!.server]: { username: cfg.registry!.username, password: p } },
            }),
          ),
        },
      },
      { provider },
    );
    imagePullSecrets.push(pull.metadata.name);
  }

  // Signing key of the API (sessions, tokens): generated once, kept in state as a secret.
  const secretKey = new random.RandomPassword("api-secret-key", { length: 64, special: false });
  const appSecret = new k8s.core.v1.Secret(
    "app-secret",
    {
      metadata: {
        name: NAMES.appSecret,
        namespace,
        labels: { "app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/managed-by": "pulumi" },
      },
      type: "Opaque",
      stringData: { "secret-key": secretKey.result },
    },
    { provider },
  );

  const prometheus: NetworkPeer = { podLabels: { app: "prometheus" }, ports: [] };
  const fromIngress = (port: number): NetworkPeer => ({
    namespace: cfg.ingress.controllerNamespace,
    ports: [port],
  });
  // With the pooler on, the apps reach PostgreSQL only through it.
  const pooled = cfg.postgres.pooler.enabled;
  const poolerName = "postgresql-pooler";
  const dataStores: NetworkPeer[] = [
    pooled
      ? { podLabels: { app: poolerName }, ports: [POOLER_PORT] }
      : { podLabels: { app: "postgresql" }, ports: [5432] },
    { podLabels: { app: "redis" }, ports: [6379] },
    { podLabels: { app: "redis-broker" }, ports: [6379, 26379] },
  ];

  // The Celery exporter reads the broker URL Celery uses. Its settings cannot carry Sentinel's
  // password (sentinel_kwargs), so a Sentinel broker needs an explicitly configured secret.
  const exporterSecret = cfg.monitoring.celeryExporter.brokerUrlSecret;
  const celeryExporterBroker = !cfg.monitoring.enabled
    ? "none"
    : exporterSecret
      ? "configured"
      : cfg.redis.broker.mode === "standalone"
        ? "derived"
        : "none";
  const redis = redisTier(placement, {
    instance: stack,
    config: cfg.redis,
    clientApps: [NAMES.api, NAMES.celery],
    brokerOnlyClientApps: celeryExporterBroker === "none" ? [] : ["celery-exporter"],
    // Source of celery_queue_length in every stack (recording rule over the broker's key sizes).
    celeryQueues: cfg.celery.queues,
  });
  const celeryBrokerUrl: SecretKeyRef | undefined = exporterSecret
    ? { secretName: exporterSecret.name, key: exporterSecret.key }
    : celeryExporterBroker === "derived"
      ? { secretName: redis.broker.celerySecretName, key: redis.broker.celeryUrlKey }
      : undefined;

  const appClients: NetworkPeer[] = [
    { podLabels: { app: NAMES.api }, ports: [] },
    { podLabels: { app: NAMES.celery }, ports: [] },
  ];
  // The member image (Patroni + pgBackRest); the pooler's bootstrap Job runs its psql too.
  const pgImage = imageFor(
    target,
    "postgres",
    cfg.postgres.image,
    cfg.postgres.build,
    cfg.registry,
    registryPassword,
  );
  const postgres = new PostgresCluster("postgres", {
    ...placement,
    instance: stack,
    config: cfg.postgres,
    image: pgImage,
    clients: [
      ...(pooled ? [{ podLabels: { app: poolerName }, ports: [] }] : appClients),
      // The migration Job connects directly (DDL and its pre-migration dump bypass the pooler).
      ...(cfg.migration.enabled
        ? [{ podLabels: { app: migrationApp(NAMES.api) }, ports: [] }]
        : []),
    ],
    scrapers: [prometheus],
  });
  const pooler = pooled
    ? new PgBouncer("pooler", {
        ...placement,
        name: poolerName,
        instance: stack,
        config: cfg.postgres.pooler,
        serverHost: postgres.dnsName,
        serverPodLabels: { app: "postgresql" },
        app: postgres.app,
        clients: appClients,
        scrapers: [prometheus],
        // Prepares the database (role + lookup function) also when it predates the pooler.
        bootstrap: {
          image: pgImage,
          uid: 999,
          superuserPassword: { secretName: postgres.passwordSecretName, key: "superuser-password" },
          // The labels PostgreSQL's NetworkPolicies admit for its database Jobs.
          podLabels: {
            "app.kubernetes.io/component": "database-jobs",
            "app.kubernetes.io/part-of": PART_OF,
          },
        },
      })
    : undefined;
  // DATABASE_URL of the API and Celery: through PgBouncer when it is enabled.
  const databaseUrl = pooler?.databaseUrl ?? postgres.databaseUrl;

  const apiImage = imageFor(
    target,
    "api",
    cfg.api.image,
    cfg.api.build,
    cfg.registry,
    registryPassword,
  );
  // The upgrade flow: fresh dump, migration in the new image, then the rollout (docs/RUNBOOK.md).
  const migration = cfg.migration.enabled
    ? new ApiMigration("api-migration", {
        ...placement,
        base: NAMES.api,
        instance: stack,
        config: cfg.migration,
        image: apiImage,
        backupImage: pgImage,
        databaseUrl: postgres.databaseUrl,
        database: { podLabels: { app: "postgresql" }, port: 5432 },
        imagePullSecrets,
        waitFor: [postgres],
      })
    : undefined;
  const rolloutAfter = migration ? [migration.job] : undefined;

  const api = new WebService("api", {
    ...placement,
    name: NAMES.api,
    component: "api",
    instance: stack,
    config: cfg.api,
    image: apiImage,
    imagePullSecrets,
    rolloutAfter,
    secretEnv: {
      SECRET_KEY: { secretName: appSecret.metadata.name, key: "secret-key" },
      ...redis.env,
      DATABASE_URL: databaseUrl,
    },
    network: {
      ingressFrom: [fromIngress(cfg.api.port), { ...prometheus, ports: [cfg.api.port] }],
      egressTo: dataStores,
    },
  });

  const frontend = new WebService("frontend", {
    ...placement,
    name: NAMES.frontend,
    component: "frontend",
    instance: stack,
    config: cfg.frontend,
    image: imageFor(
      target,
      "frontend",
      cfg.frontend.image,
      cfg.frontend.build,
      cfg.registry,
      registryPassword,
    ),
    imagePullSecrets,
    network: {
      ingressFrom: [
        fromIngress(cfg.frontend.port),
        ...(cfg.frontend.metrics.enabled ? [{ ...prometheus, ports: [cfg.frontend.port] }] : []),
      ],
    },
  });

  const celery = new CeleryWorker("celery", {
    ...placement,
    name: NAMES.celery,
    instance: stack,
    config: cfg.celery,
    image: imageFor(
      target,
      "celery",
      cfg.celery.image,
      cfg.celery.build,
      cfg.registry,
      registryPassword,
    ),
    imagePullSecrets,
    secretEnv: { ...redis.env, DATABASE_URL: databaseUrl },
    network: { egressTo: dataStores },
    // Celery runs the same code against the same schema: it waits for the migration too.
    rolloutAfter,
  });

  const ingress = cfg.ingress.enabled
    ? new PlatformIngress(
        "ingress",
        {
          ...placement,
          config: cfg.ingress,
          frontend: { serviceName: frontend.serviceName, port: frontend.port },
          api: { serviceName: api.serviceName, port: api.port },
        },
        { dependsOn: target.addonsReady },
      )
    : undefined;

  const secretOrUnset = (v: { value: string } | undefined) =>
    v === undefined ? undefined : pulumi.secret(v.value);
  const tls = cfg.ingress.tls;
  const monitoring = cfg.monitoring.enabled
    ? new Monitoring("monitoring", {
        ...placement,
        namespaceName: cfg.namespace,
        instance: stack,
        config: cfg.monitoring,
        alertEndpoints: {
          slackApiUrl: secretOrUnset(cfg.alertSlackWebhookUrl),
          pagerWebhookUrl: secretOrUnset(cfg.alertPagerWebhookUrl),
          webhookUrl: secretOrUnset(cfg.alertWebhookUrl),
          smtpPassword: secretOrUnset(cfg.alertSmtpPassword),
        },
        apiPort: cfg.api.port,
        celery: celeryBrokerUrl
          ? {
              brokerUrl: celeryBrokerUrl,
              queues: cfg.celery.queues,
              broker: dataStores.find((p) => p.podLabels?.app === "redis-broker")!,
            }
          : undefined,
        postgresReplicas: cfg.postgres.replicas - 1,
        postgresBackup: postgres.verifyCronJobName
          ? {
              archiveTimeoutSeconds: cfg.postgres.backup.archiveTimeout,
              verifyCronJob: postgres.verifyCronJobName,
            }
          : undefined,
        ingress: cfg.ingress.enabled
          ? {
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
            }
          : undefined,
      })
    : undefined;

  return {
    namespace,
    prometheusUrl: monitoring?.prometheusUrl,
    alertmanagerUrl: monitoring?.alertmanagerUrl,
    grafanaUrl: monitoring?.grafanaPublicUrl ?? monitoring?.grafanaUrl,
    grafanaAdminSecret: monitoring?.grafanaAdminSecret,
    lokiUrl: monitoring?.lokiUrl,
    apiUrl: api.dnsName.apply((d) => `http://${d}:${api.port}`),
    frontendUrl: frontend.dnsName.apply((d) => `http://${d}:${frontend.port}`),
    celeryDeployment: celery.deploymentName,
    redisCache: redis.cache.dnsName,
    celeryBrokerSecret: redis.broker.celerySecretName,
    databaseHost: postgres.dnsName,
    databaseReadHost: postgres.readDnsName,
    databasePoolerHost: pooler?.dnsName,
    databaseUrlSecret: databaseUrl.secretName,
    publicUrl: ingress?.url,
  };
}
