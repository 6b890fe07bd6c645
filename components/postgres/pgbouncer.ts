import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { PostgresPoolerConfig } from "../config/postgres";
import {
  ClusterPlacement,
  NetworkPeer,
  SecretKeyRef,
  checksum,
  plainEnv,
  restrictedContainerSecurity,
  restrictedPodSecurity,
  secretEnv,
  toResourceRequirements,
  workloadLabels,
} from "../lib/k8s";
import {
  metricsSidecarProbes,
  restrictedJobPod,
  spreadOverNodes,
  workloadCompanions,
} from "../lib/workload";
import {
  POOLER_EXPORTER_PORT,
  POOLER_PORT,
  pgbouncerIni,
  poolerBootstrapCommand,
  poolerBootstrapSql,
  poolerDatabaseUrl,
  poolerExporterUrl,
  poolerUserlist,
} from "./pgbouncer-content";

export interface PgBouncerArgs extends ClusterPlacement {
  /** app.kubernetes.io/instance: the stack name. */
  instance: string;
  /** Validated postgres.pooler section. */
  config: PostgresPoolerConfig;
  /** Deployment, Service and `app` label name. Default `postgresql-pooler`. */
  name?: string;
  /** DNS name of the read-write Service (the primary) PgBouncer connects to. */
  serverHost: pulumi.Input<string>;
  serverPort?: number;
  /** Labels of the PostgreSQL pods (the only egress allowed besides DNS). */
  serverPodLabels: Record<string, string>;
  /** The app database, its login role and that role's password (for DATABASE_URL). */
  app: { database: string; user: string; password: pulumi.Input<string> };
  /** Pods allowed to connect to 6432 (API, Celery). */
  clients: NetworkPeer[];
  /** Pods allowed to scrape the exporter on 9127. */
  scrapers?: NetworkPeer[];
  /**
   * Runs poolerBootstrapSql() (idempotent) against the read-write Service on every change of it:
   * also prepares a database bootstrapped before the pooler existed, which Patroni's
   * post_bootstrap never sees again. Unset: the database is prepared elsewhere.
   */
  bootstrap?: {
    /** An image with psql (the PostgreSQL image). */
    image: pulumi.Input<string>;
    /** uid of that image's `postgres` user. */
    uid: number;
    /** The superuser's password. */
    superuserPassword: SecretKeyRef;
    /** Pod labels the PostgreSQL NetworkPolicies admit (its database-jobs labels). */
    podLabels: Record<string, string>;
  };
}

const AUTH_DIR = "/etc/pgbouncer-auth";
const CONFIG_DIR = "/etc/pgbouncer";
/** uid/gid `postgres` of the Alpine-based PgBouncer image. */
const POOLER_UID = 70;
/** Keys of the pooler's Secret. */
export const POOLER_SECRET_KEYS = {
  /** Password of the `pgbouncer` lookup role: Patroni's post_bootstrap sets it in the database. */
  authPassword: "auth-password",
  statsPassword: "stats-password",
  userlist: "userlist.txt",
  exporterUrl: "exporter-connection-string",
} as const;

/**
 * PgBouncer in front of the read-write Service: a Deployment (transaction pooling, spread over
 * nodes, PDB, restricted pods) with a pgbouncer-exporter sidecar, Service `postgresql-pooler`,
 * NetworkPolicy (API/Celery in, PostgreSQL out), the ini in a ConfigMap (its checksum rolls the
 * pods), the auth file in a Secret, and the app's DATABASE_URL through the pooler.
 */
export class PgBouncer extends pulumi.ComponentResource {
  /** Name of the pooler Service. */
  public readonly serviceName: pulumi.Output<string>;
  /** Its cluster DNS name. */
  public readonly dnsName: pulumi.Output<string>;
  /** Secret key with DATABASE_URL through the pooler, for the API and Celery. */
  public readonly databaseUrl: SecretKeyRef;
  /** Secret key with the `pgbouncer` role's password (for the database bootstrap SQL). */
  public readonly authPassword: SecretKeyRef;
  /** The psql script that creates the lookup role and function (see poolerBootstrapSql). */
  public readonly bootstrapSql: string;

  constructor(name: string, args: PgBouncerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("stock-analysis:postgres:PgBouncer", name, {}, opts);
    const c = args.config;
    const n = args.name ?? "postgresql-pooler";
    const ns = args.namespace;
    const child = { parent: this, provider: args.provider };
    const labels = workloadLabels(n, "database-pooler", args.instance);
    const selector = { app: n };

    // No special characters: the passwords go into URLs and the auth file.
    const password = (who: string) =>
      new random.RandomPassword(
        `${n}-${who}-password`,
        { length: 32, special: false },
        {
          parent: this,
        },
      ).result;
    const authPassword = password("auth");
    const statsPassword = password("stats");
    const secret = new k8s.core.v1.Secret(
      `${n}-secret`,
      {
        metadata: { name: n, namespace: ns, labels },
        type: "Opaque",
        stringData: {
          [POOLER_SECRET_KEYS.authPassword]: authPassword,
          [POOLER_SECRET_KEYS.statsPassword]: statsPassword,
          [POOLER_SECRET_KEYS.userlist]: pulumi
            .all([authPassword, statsPassword])
            .apply(([a, s]) => poolerUserlist({ authPassword: a, statsPassword: s })),
          [POOLER_SECRET_KEYS.exporterUrl]: statsPassword.apply((s) => poolerExporterUrl(s)),
        },
      },
      child,
    );
    const dnsName = pulumi.interpolate`${n}.${ns}.svc.cluster.local`;
    const urlSecret = new k8s.core.v1.Secret(
      `${n}-database-url`,
      {
        metadata: { name: `${n}-app`, namespace: ns, labels },
        type: "Opaque",
        stringData: {
          DATABASE_URL: pulumi.all([dnsName, args.app.password]).apply(([host, pw]) =>
            poolerDatabaseUrl({
              user: args.app.user,
              password: pw,
              host,
              database: args.app.database,
            }),
          ),
        },
      },
      child,
    );

    const ini = pulumi.output(args.serverHost).apply((serverHost) =>
      pgbouncerIni({
        pool: c,
        serverHost,
        serverPort: args.serverPort,
        database: args.app.database,
        authFile: `${AUTH_DIR}/${POOLER_SECRET_KEYS.userlist}`,
      }),
    );
    const configMap = new k8s.core.v1.ConfigMap(
      `${n}-config`,
      { metadata: { name: `${n}-config`, namespace: ns, labels }, data: { "pgbouncer.ini": ini } },
      child,
    );

    const { serviceAccount } = workloadCompanions(this, args.provider, {
      name: n,
      namespace: ns,
      labels,
      selector,
      network: {
        ingressFrom: [
          ...args.clients.map((p) => ({ ...p, ports: [POOLER_PORT] })),
          ...(args.scrapers ?? []).map((p) => ({ ...p, ports: [POOLER_EXPORTER_PORT] })),
        ],
        egressTo: [{ podLabels: args.serverPodLabels, ports: [args.serverPort ?? 5432] }],
      },
    });

    const tcpProbe = (period: number, failures: number) => ({
      tcpSocket: { port: "pgbouncer" },
      periodSeconds: period,
      timeoutSeconds: 3,
      failureThreshold: failures,
    });
    new k8s.apps.v1.Deployment(
      n,
      {
        metadata: { name: n, namespace: ns, labels },
        spec: {
          replicas: c.replicas,
          selector: { matchLabels: selector },
          // One extra pod during a rollout: the connection budget counts it.
          strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
          template: {
            metadata: {
              labels,
              annotations: {
                "kubectl.kubernetes.io/default-container": "pgbouncer",
                "checksum/config": ini.apply((i) => checksum(i)),
                "prometheus.io/scrape": "true",
                "prometheus.io/port": String(POOLER_EXPORTER_PORT),
              },
            },
            spec: {
              serviceAccountName: serviceAccount.metadata.name,
              automountServiceAccountToken: false,
              securityContext: restrictedPodSecurity(POOLER_UID),
              topologySpreadConstraints: spreadOverNodes(selector),
              affinity: {
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
              },
              terminationGracePeriodSeconds: 30,
              containers: [
                {
                  name: "pgbouncer",
                  image: c.image,
                  imagePullPolicy: "IfNotPresent",
                  command: ["pgbouncer", `${CONFIG_DIR}/pgbouncer.ini`],
                  ports: [{ name: "pgbouncer", containerPort: POOLER_PORT, protocol: "TCP" }],
                  resources: toResourceRequirements(c.resources),
                  securityContext: restrictedContainerSecurity(true),
                  readinessProbe: tcpProbe(5, 2),
                  livenessProbe: tcpProbe(15, 4),
                  // Let the endpoint removal reach every node before pgbouncer stops accepting.
                  lifecycle: { preStop: { exec: { command: ["sleep", "5"] } } },
                  volumeMounts: [
                    { name: "config", mountPath: CONFIG_DIR, readOnly: true },
                    { name: "auth", mountPath: AUTH_DIR, readOnly: true },
                  ],
                },
                {
                  name: "pgbouncer-exporter",
                  image: c.exporterImage,
                  imagePullPolicy: "IfNotPresent",
                  ports: [
                    { name: "metrics", containerPort: POOLER_EXPORTER_PORT, protocol: "TCP" },
                  ],
                  env: secretEnv({
                    PGBOUNCER_EXPORTER_CONNECTION_STRING: {
                      secretName: secret.metadata.name,
                      key: POOLER_SECRET_KEYS.exporterUrl,
                    },
                  }),
                  resources: toResourceRequirements(c.exporterResources),
                  securityContext: restrictedContainerSecurity(true),
                  ...metricsSidecarProbes("/metrics"),
                },
              ],
              volumes: [
                { name: "config", configMap: { name: configMap.metadata.name } },
                {
                  name: "auth",
                  secret: {
                    secretName: secret.metadata.name,
                    defaultMode: 0o440,
                    items: [
                      { key: POOLER_SECRET_KEYS.userlist, path: POOLER_SECRET_KEYS.userlist },
                    ],
                  },
                },
              ],
            },
          },
        },
      },
      child,
    );

    if (args.bootstrap) this.bootstrapJob(n, args, args.bootstrap, secret.metadata.name, labels);

    const service = new k8s.core.v1.Service(
      `${n}-svc`,
      {
        metadata: { name: n, namespace: ns, labels },
        spec: {
          type: "ClusterIP",
          selector,
          ports: [
            { name: "pgbouncer", port: POOLER_PORT, targetPort: "pgbouncer", protocol: "TCP" },
          ],
        },
      },
      child,
    );

    this.serviceName = service.metadata.name;
    this.dnsName = pulumi.interpolate`${service.metadata.name}.${ns}.svc.cluster.local`;
    this.databaseUrl = { secretName: urlSecret.metadata.name, key: "DATABASE_URL" };
    this.authPassword = { secretName: secret.metadata.name, key: POOLER_SECRET_KEYS.authPassword };
    this.bootstrapSql = poolerBootstrapSql();
    this.registerOutputs({
      serviceName: this.serviceName,
      dnsName: this.dnsName,
      databaseUrlSecretName: this.databaseUrl.secretName,
    });
  }

  /** Job `<name>-bootstrap-<sql checksum>`: creates the lookup role and function as `postgres`. */
  private bootstrapJob(
    n: string,
    args: PgBouncerArgs,
    b: NonNullable<PgBouncerArgs["bootstrap"]>,
    poolerSecret: pulumi.Output<string>,
    labels: Record<string, string>,
  ): void {
    const ns = args.namespace;
    const child = { parent: this, provider: args.provider };
    const sql = poolerBootstrapSql();
    const sqlMap = new k8s.core.v1.ConfigMap(
      `${n}-bootstrap-sql`,
      {
        metadata: { name: `${n}-bootstrap-sql`, namespace: ns, labels },
        data: { "pooler.sql": sql },
      },
      child,
    );
    // Not the pooler's `app` label: its Service, PDB and NetworkPolicy must not select the Job.
    const podLabels = {
      ...workloadLabels(`${n}-bootstrap`, "database-jobs", args.instance),
      ...b.podLabels,
    };
    // A new SQL text is a new Job (Jobs are immutable); an unchanged one is not re-run.
    const name = `${n}-bootstrap-${checksum(sql).slice(0, 8)}`;
    new k8s.batch.v1.Job(
      name,
      {
        metadata: { name, namespace: ns, labels: podLabels },
        spec: {
          // On a first deploy the database may take minutes to come up: retry with back-off.
          backoffLimit: 8,
          activeDeadlineSeconds: 1800,
          template: {
            metadata: { labels: podLabels },
            spec: {
              ...restrictedJobPod({ uid: b.uid }),
              containers: [
                {
                  name: "bootstrap",
                  image: b.image,
                  imagePullPolicy: "IfNotPresent",
                  command: poolerBootstrapCommand(
                    "/sql/pooler.sql",
                    "/secrets/pooler/auth-password",
                  ),
                  env: [
                    { name: "PGHOST", value: args.serverHost },
                    ...plainEnv({
                      PGPORT: String(args.serverPort ?? 5432),
                      PGUSER: "postgres",
                      PGDATABASE: args.app.database,
                      PGCONNECT_TIMEOUT: "10",
                    }),
                    ...secretEnv({ PGPASSWORD: b.superuserPassword }),
                  ],
                  // psql is as small as pgbouncer.
                  resources: toResourceRequirements(args.config.resources),
                  securityContext: restrictedContainerSecurity(true),
                  volumeMounts: [
                    { name: "sql", mountPath: "/sql", readOnly: true },
                    { name: "pooler", mountPath: "/secrets/pooler", readOnly: true },
                  ],
                },
              ],
              volumes: [
                { name: "sql", configMap: { name: sqlMap.metadata.name } },
                {
                  name: "pooler",
                  secret: {
                    secretName: poolerSecret,
                    defaultMode: 0o440,
                    items: [{ key: POOLER_SECRET_KEYS.authPassword, path: "auth-password" }],
                  },
                },
              ],
            },
          },
        },
      },
      child,
    );
  }
}
