import * as crypto from "node:crypto";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { PostgresConfig } from "../config/postgres";
import { memoryToBytes } from "../config/validators";
import {
  dataClaim,
  ClusterPlacement,
  NetworkPeer,
  SecretKeyRef,
  plainEnv,
  restrictedContainerSecurity,
  restrictedPodSecurity,
  toResourceRequirements,
  workloadLabels,
} from "../lib/k8s";
import { allowPolicySpec } from "../lib/network";
import { workloadCompanions } from "../lib/workload";
import { createBackupJobs } from "./backup-jobs";
import { memberName, pgHbaConf, postgresScripts, postgresqlConf } from "./content";

export interface PostgresClusterArgs extends ClusterPlacement {
  /** app.kubernetes.io/instance: the stack name. */
  instance: string;
  /** Validated postgres section of the stack config. */
  config: PostgresConfig;
  /** StatefulSet, Service and `app` label name. Default `postgresql` (the manual's name). */
  name?: string;
  /** Pods allowed to connect to port 5432 (API, Celery). Default: none besides the members. */
  clients?: NetworkPeer[];
  /** Pods allowed to scrape the exporter on 9187. Default: none. */
  scrapers?: NetworkPeer[];
}

const PORT = 5432;
const EXPORTER_PORT = 9187;
/** uid/gid of `postgres` in the official Debian-based image. */
const PG_UID = 999;
const DATA_MOUNT = "/var/lib/postgresql/data";
const APP_DB = "stock_analysis";
const APP_USER = "stock_analysis";
const PASSWORD_KEYS = {
  superuser: "superuser-password",
  replication: "replication-password",
  app: "app-password",
  monitoring: "monitoring-password",
} as const;

/**
 * PostgreSQL 15 on the official image: StatefulSet of one primary plus streaming replicas run by
 * pg-entrypoint.sh, declarative failover through `config.primary`, Services `<name>` (read-write,
 * the configured primary), `<name>-read` and `<name>-headless`, postgres_exporter sidecar, PDB,
 * anti-affinity, generated passwords in Secrets, the app's DATABASE_URL Secret, and backup,
 * backup-verify, maintenance and (suspended) restore CronJobs sharing one backup PVC.
 */
export class PostgresCluster extends pulumi.ComponentResource {
  /** Name of the read-write Service (`postgresql`). */
  public readonly serviceName: pulumi.Output<string>;
  /** DNS name of the read-write Service (always the primary). */
  public readonly dnsName: pulumi.Output<string>;
  /** DNS name of the read Service. */
  public readonly readDnsName: pulumi.Output<string>;
  /** Secret key holding `DATABASE_URL` for the API and Celery. */
  public readonly databaseUrl: SecretKeyRef;
  /** Secret with the superuser, replication, app and monitoring passwords. */
  public readonly passwordSecretName: pulumi.Output<string>;

  constructor(name: string, args: PostgresClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("stock-analysis:postgres:PostgresCluster", name, {}, opts);
    const c = args.config;
    const n = args.name ?? "postgresql";
    const ns = args.namespace;
    const child = { parent: this, provider: args.provider };
    const labels = workloadLabels(n, "database", args.instance);
    const selector = { app: n };
    const headless = `${n}-headless`;

    const passwords = Object.fromEntries(
      Object.entries(PASSWORD_KEYS).map(([who, key]) => [
        key,
        // No special characters: the app password goes into a URL unescaped.
        new random.RandomPassword(
          `${n}-${who}-password`,
          { length: 32, special: false },
          {
            parent: this,
          },
        ).result,
      ]),
    );
    const passwordSecret = new k8s.core.v1.Secret(
      `${n}-passwords`,
      {
        metadata: { name: n, namespace: ns, labels },
        type: "Opaque",
        stringData: passwords,
      },
      child,
    );
    const databaseUrlSecret = new k8s.core.v1.Secret(
      `${n}-database-url`,
      {
        metadata: { name: `${n}-app`, namespace: ns, labels },
        type: "Opaque",
        stringData: {
          DATABASE_URL: pulumi.interpolate`postgresql://${APP_USER}:${passwords[PASSWORD_KEYS.app]}@${n}.${ns}.svc.cluster.local:${PORT}/${APP_DB}`,
        },
      },
      child,
    );

    const members = Array.from({ length: c.replicas }, (_, i) => memberName("postgresql", i));
    const conf = postgresqlConf({
      memoryBytes: memoryToBytes(c.resources.limits.memory)!,
      members,
      synchronous: c.synchronous,
      port: PORT,
      maxConnections: c.maxConnections,
      maxSlotWalKeepSize: c.maxSlotWalKeepSize,
    });
    const hba = pgHbaConf();
    const configMap = new k8s.core.v1.ConfigMap(
      `${n}-config`,
      {
        metadata: { name: `${n}-config`, namespace: ns, labels },
        data: { "postgresql.conf": conf, "pg_hba.conf": hba },
      },
      child,
    );
    // Kept apart from the server config: a change must reach running pods (mounted file, no
    // restart) so their entrypoints switch roles, not roll the StatefulSet.
    const roleMap = new k8s.core.v1.ConfigMap(
      `${n}-role`,
      {
        metadata: { name: `${n}-role`, namespace: ns, labels },
        data: { primary: String(c.primary) },
      },
      child,
    );
    const scripts = postgresScripts();
    const scriptsMap = new k8s.core.v1.ConfigMap(
      `${n}-scripts`,
      { metadata: { name: `${n}-scripts`, namespace: ns, labels }, data: scripts },
      child,
    );
    const checksum = crypto
      .createHash("sha256")
      .update(conf + hba + JSON.stringify(scripts))
      .digest("hex");

    const jobLabels = {
      "app.kubernetes.io/component": "database-jobs",
      "app.kubernetes.io/part-of": "stock-analysis",
    };
    const { serviceAccount } = workloadCompanions(this, args.provider, {
      name: n,
      namespace: ns,
      labels,
      selector,
      network: {
        ingressFrom: [
          { podLabels: selector, ports: [PORT] },
          { podLabels: jobLabels, ports: [PORT] },
          ...(args.clients ?? []).map((p) => ({ ...p, ports: [PORT] })),
          ...(args.scrapers ?? []).map((p) => ({ ...p, ports: [EXPORTER_PORT] })),
        ],
        egressTo: [{ podLabels: selector, ports: [PORT] }],
      },
    });

    const peers = pulumi
      .output(ns)
      .apply((nsName) =>
        Array.from(
          { length: c.replicas },
          (_, i) => `${n}-${i}.${headless}.${nsName}.svc.cluster.local:${PORT}`,
        ).join(" "),
      );
    const secretFile = (key: string) => `/secrets/${key}`;
    const secretVolume = (keys: string[]): k8s.types.input.core.v1.Volume => ({
      name: "secrets",
      secret: {
        secretName: passwordSecret.metadata.name,
        defaultMode: 0o440,
        items: keys.map((k) => ({ key: k, path: k })),
      },
    });
    const scriptsVolume = {
      name: "scripts",
      configMap: { name: scriptsMap.metadata.name, defaultMode: 0o555 },
    };
    const tmp = (name: string) => ({ name, emptyDir: { sizeLimit: "1Gi" } });

    const spread: k8s.types.input.core.v1.PodAffinityTerm = {
      topologyKey: "kubernetes.io/hostname",
      labelSelector: { matchLabels: selector },
    };
    new k8s.apps.v1.StatefulSet(
      n,
      {
        metadata: { name: n, namespace: ns, labels },
        spec: {
          serviceName: headless,
          replicas: c.replicas,
          // Members must find each other while not ready (bootstrap, failover): no ordered start.
          podManagementPolicy: "Parallel",
          updateStrategy: { type: "RollingUpdate" },
          selector: { matchLabels: selector },
          template: {
            metadata: {
              labels,
              annotations: {
                // `kubectl exec postgresql-0 -- psql …` (the manual's commands) needs no -c.
                "kubectl.kubernetes.io/default-container": "postgresql",
                "checksum/config": checksum,
                "prometheus.io/scrape": "true",
                "prometheus.io/port": String(EXPORTER_PORT),
              },
            },
            spec: {
              serviceAccountName: serviceAccount.metadata.name,
              automountServiceAccountToken: false,
              securityContext: restrictedPodSecurity(PG_UID),
              // Fast shutdown plus the shutdown checkpoint; a killed primary needs crash recovery.
              terminationGracePeriodSeconds: 120,
              affinity: {
                podAntiAffinity:
                  c.antiAffinity === "required"
                    ? { requiredDuringSchedulingIgnoredDuringExecution: [spread] }
                    : {
                        preferredDuringSchedulingIgnoredDuringExecution: [
                          { weight: 100, podAffinityTerm: spread },
                        ],
                      },
              },
              containers: [
                {
                  name: "postgresql",
                  image: c.image,
                  imagePullPolicy: "IfNotPresent",
                  command: ["bash", "/scripts/pg-entrypoint.sh"],
                  ports: [{ name: "postgresql", containerPort: PORT, protocol: "TCP" }],
                  env: plainEnv({
                    PGDATA: `${DATA_MOUNT}/pgdata`,
                    PG_CONFIG_FILE: "/etc/postgresql/postgresql.conf",
                    PG_PRIMARY_FILE: "/etc/postgresql-role/primary",
                    PG_SOCKET_DIR: "/var/run/postgresql",
                    PG_SUPERUSER_PASSWORD_FILE: secretFile(PASSWORD_KEYS.superuser),
                    PG_REPLICATION_PASSWORD_FILE: secretFile(PASSWORD_KEYS.replication),
                    PG_APP_PASSWORD_FILE: secretFile(PASSWORD_KEYS.app),
                    PG_MONITORING_PASSWORD_FILE: secretFile(PASSWORD_KEYS.monitoring),
                    PG_APP_DB: APP_DB,
                    PG_APP_USER: APP_USER,
                    PG_MEMBER_PREFIX: "postgresql",
                  }).concat([{ name: "PG_PEERS", value: peers }]),
                  resources: toResourceRequirements(c.resources),
                  securityContext: restrictedContainerSecurity(true),
                  readinessProbe: {
                    exec: {
                      command: [
                        "pg_isready",
                        "-q",
                        "-h",
                        "/var/run/postgresql",
                        "-p",
                        String(PORT),
                      ],
                    },
                    periodSeconds: 10,
                    timeoutSeconds: 5,
                    failureThreshold: 3,
                  },
                  // Restarts a hung postmaster only; clones and crash recovery are left alone.
                  livenessProbe: {
                    exec: { command: ["bash", "/scripts/pg-liveness.sh"] },
                    periodSeconds: 30,
                    timeoutSeconds: 15,
                    failureThreshold: 4,
                  },
                  volumeMounts: [
                    { name: "data", mountPath: DATA_MOUNT },
                    { name: "config", mountPath: "/etc/postgresql", readOnly: true },
                    { name: "role", mountPath: "/etc/postgresql-role", readOnly: true },
                    { name: "scripts", mountPath: "/scripts", readOnly: true },
                    { name: "secrets", mountPath: "/secrets", readOnly: true },
                    { name: "run", mountPath: "/var/run/postgresql" },
                    { name: "tmp", mountPath: "/tmp" },
                  ],
                },
                {
                  name: "postgres-exporter",
                  image: c.exporterImage,
                  imagePullPolicy: "IfNotPresent",
                  ports: [{ name: "metrics", containerPort: EXPORTER_PORT, protocol: "TCP" }],
                  env: plainEnv({
                    DATA_SOURCE_URI: `localhost:${PORT}/postgres?sslmode=disable`,
                    DATA_SOURCE_USER: "monitoring",
                    DATA_SOURCE_PASS_FILE: secretFile(PASSWORD_KEYS.monitoring),
                  }),
                  resources: toResourceRequirements(c.exporterResources),
                  securityContext: restrictedContainerSecurity(true),
                  readinessProbe: {
                    httpGet: { path: "/", port: "metrics" },
                    periodSeconds: 20,
                    timeoutSeconds: 5,
                  },
                  livenessProbe: {
                    httpGet: { path: "/", port: "metrics" },
                    periodSeconds: 30,
                    timeoutSeconds: 5,
                    failureThreshold: 3,
                  },
                  volumeMounts: [{ name: "secrets", mountPath: "/secrets", readOnly: true }],
                },
              ],
              volumes: [
                { name: "config", configMap: { name: configMap.metadata.name } },
                { name: "role", configMap: { name: roleMap.metadata.name } },
                scriptsVolume,
                secretVolume(Object.values(PASSWORD_KEYS)),
                { name: "run", emptyDir: { medium: "Memory", sizeLimit: "16Mi" } },
                tmp("tmp"),
              ],
            },
          },
          volumeClaimTemplates: [dataClaim(labels, c.storage)],
        },
      },
      child,
    );

    const service = (svc: string, spec: k8s.types.input.core.v1.ServiceSpec) =>
      new k8s.core.v1.Service(
        `${svc}-svc`,
        {
          metadata: { name: svc, namespace: ns, labels },
          spec: {
            ports: [{ name: "postgresql", port: PORT, targetPort: "postgresql", protocol: "TCP" }],
            ...spec,
          },
        },
        child,
      );
    // Read-write: exactly the configured primary, by the pod-name label the StatefulSet sets.
    const rw = service(n, {
      type: "ClusterIP",
      selector: { ...selector, "statefulset.kubernetes.io/pod-name": `${n}-${c.primary}` },
    });
    const read = service(`${n}-read`, { type: "ClusterIP", selector });
    service(headless, { clusterIP: "None", publishNotReadyAddresses: true, selector });

    if (c.backup.enabled) {
      this.backupJobs(n, args, {
        passwordSecret: passwordSecret.metadata.name,
        scripts: scriptsVolume,
        jobLabels,
        primaryHost: pulumi.interpolate`${rw.metadata.name}.${ns}.svc.cluster.local`,
      });
    }

    this.serviceName = rw.metadata.name;
    this.dnsName = pulumi.interpolate`${rw.metadata.name}.${ns}.svc.cluster.local`;
    this.readDnsName = pulumi.interpolate`${read.metadata.name}.${ns}.svc.cluster.local`;
    this.databaseUrl = { secretName: databaseUrlSecret.metadata.name, key: "DATABASE_URL" };
    this.passwordSecretName = passwordSecret.metadata.name;
    this.registerOutputs({
      serviceName: this.serviceName,
      dnsName: this.dnsName,
      readDnsName: this.readDnsName,
      databaseUrlSecretName: this.databaseUrl.secretName,
    });
  }

  /**
   * pgBackRest (components/postgres/backup-jobs.ts: pgbackrest.conf ConfigMap, exec RBAC, full /
   * differential / verify CronJobs, object-store egress) and the maintenance CronJob.
   */
  private backupJobs(
    n: string,
    args: PostgresClusterArgs,
    x: {
      passwordSecret: pulumi.Output<string>;
      scripts: k8s.types.input.core.v1.Volume;
      jobLabels: Record<string, string>;
      primaryHost: pulumi.Output<string>;
    },
  ): void {
    const b = args.config.backup;
    const ns = args.namespace;
    const child = { parent: this, provider: args.provider };
    createBackupJobs(this, args.provider, {
      name: n,
      namespace: ns,
      instance: args.instance,
      config: args.config,
      dataDir: DATA_MOUNT,
      socketDir: "/var/run/postgresql",
      port: PORT,
      uid: PG_UID,
      scripts: x.scripts,
      jobLabels: x.jobLabels,
      kubectlImage: b.kubectlImage,
      timeZone: args.timeZone ?? "Etc/UTC",
    });
    new k8s.networking.v1.NetworkPolicy(
      `${n}-jobs-netpol`,
      {
        metadata: {
          name: `${n}-jobs-allow`,
          namespace: ns,
          labels: workloadLabels(`${n}-jobs`, "database-jobs", args.instance),
        },
        spec: allowPolicySpec(x.jobLabels, {
          egressTo: [{ podLabels: { app: n }, ports: [PORT] }],
        }),
      },
      child,
    );
    const name = `${n}-maintenance`;
    const labels = { ...workloadLabels(name, "database-jobs", args.instance), ...x.jobLabels };
    new k8s.batch.v1.CronJob(
      name,
      {
        metadata: { name, namespace: ns, labels },
        spec: {
          schedule: b.maintenanceSchedule,
          timeZone: args.timeZone ?? "Etc/UTC",
          concurrencyPolicy: "Forbid",
          startingDeadlineSeconds: 3600,
          successfulJobsHistoryLimit: 3,
          failedJobsHistoryLimit: 3,
          jobTemplate: {
            metadata: { labels },
            spec: {
              backoffLimit: 0,
              activeDeadlineSeconds: 6 * 3600,
              template: {
                metadata: { labels },
                spec: {
                  restartPolicy: "Never",
                  automountServiceAccountToken: false,
                  securityContext: restrictedPodSecurity(PG_UID),
                  containers: [
                    {
                      name: "maintenance",
                      image: args.config.image,
                      imagePullPolicy: "IfNotPresent",
                      command: ["bash", "/scripts/pg-maintenance.sh"],
                      env: [
                        { name: "MAINTENANCE_JOBS", value: String(b.processMax) },
                        { name: "PGHOST", value: x.primaryHost },
                        { name: "PGPORT", value: String(PORT) },
                        { name: "PGUSER", value: "postgres" },
                        { name: "PG_PASSWORD_FILE", value: `/secrets/${PASSWORD_KEYS.superuser}` },
                      ],
                      resources: toResourceRequirements(b.resources),
                      securityContext: restrictedContainerSecurity(true),
                      volumeMounts: [
                        { name: "scripts", mountPath: "/scripts", readOnly: true },
                        { name: "secrets", mountPath: "/secrets", readOnly: true },
                        { name: "tmp", mountPath: "/tmp" },
                      ],
                    },
                  ],
                  volumes: [
                    x.scripts,
                    {
                      name: "secrets",
                      secret: {
                        secretName: x.passwordSecret,
                        defaultMode: 0o440,
                        items: [{ key: PASSWORD_KEYS.superuser, path: PASSWORD_KEYS.superuser }],
                      },
                    },
                    { name: "tmp", emptyDir: { sizeLimit: "1Gi" } },
                  ],
                },
              },
            },
          },
        },
      },
      child,
    );
  }
}
