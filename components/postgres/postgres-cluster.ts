import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import type { PostgresConfig } from "../config/postgres";
import {
  ClusterPlacement,
  NetworkPeer,
  SecretKeyRef,
  peerToRule,
  restrictedContainerSecurity,
  toResourceRequirements,
  workloadLabels,
} from "../lib/k8s";
import { allowPolicySpec } from "../lib/network";
import { restrictedJobPod } from "../lib/workload";
import {
  APP_DB,
  APP_USER,
  DATABASE_JOB_LABELS,
  DATA_MOUNT,
  EXPORTER_QUERIES_KEY,
  PASSWORD_KEYS,
  PG_UID,
  PORT,
  MemberArgs,
  controlJobNetworkPolicySpec,
  controlJobSpec,
  dynamicConfigJson,
  memberChecksum,
  memberNetworkPolicySpec,
  memberPatroniYaml,
  memberSelector,
  serviceSelectors,
  shortHash,
  statefulSetSpec,
} from "./members";
import { createBackupJobs, verifyCronJobName } from "./backup-jobs";
import { postgresExporterQueries } from "./exporter-queries";
import { postgresScripts } from "./content";
import { patroniRbacRules } from "./patroni";

export interface PostgresClusterArgs extends ClusterPlacement {
  /** app.kubernetes.io/instance: the stack name. */
  instance: string;
  /** Validated postgres section of the stack config. */
  config: PostgresConfig;
  /** Image the members run (the built image's digest). Default `config.image`. */
  image?: pulumi.Input<string>;
  /** StatefulSet, Service, Patroni scope and `app` label name. Default `postgresql` (the manual's name). */
  name?: string;
  /** Pods allowed to connect to port 5432 (API, Celery, PgBouncer). Default: none besides the members. */
  clients?: NetworkPeer[];
  /** Pods allowed to scrape the exporter on 9187. Default: none. */
  scrapers?: NetworkPeer[];
}

/**
 * PostgreSQL 15 managed by Patroni: a StatefulSet whose members elect a leader through the
 * Kubernetes API (leader lock in ConfigMaps, least-privilege Role), fail over without a human,
 * rewind and rejoin; Services `<name>` (the leader, by Patroni's role label), `<name>-read`
 * (replicas only) and `<name>-headless`; Jobs that apply the dynamic configuration and the
 * configured leader (`postgres.primary`) to a running cluster; exporter sidecar, PDB, generated
 * passwords in Secrets, the app's DATABASE_URL Secret, and the backup CronJobs.
 */
export class PostgresCluster extends pulumi.ComponentResource {
  /** Name of the read-write Service (`postgresql`). */
  public readonly serviceName: pulumi.Output<string>;
  /** DNS name of the read-write Service (always the current leader). */
  public readonly dnsName: pulumi.Output<string>;
  /** DNS name of the read Service (replicas only). */
  public readonly readDnsName: pulumi.Output<string>;
  /** Secret key holding `DATABASE_URL` (direct to the leader) for the API and Celery. */
  public readonly databaseUrl: SecretKeyRef;
  /** Secret with the superuser, replication, app and monitoring passwords. */
  public readonly passwordSecretName: pulumi.Output<string>;
  /** The app role's login (database, user, secret password) for URLs built elsewhere (PgBouncer). */
  public readonly app: { database: string; user: string; password: pulumi.Output<string> };
  /** Name of the backup verification CronJob; unset when backups are disabled. */
  public readonly verifyCronJobName?: string;

  constructor(name: string, args: PostgresClusterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("stock-analysis:postgres:PostgresCluster", name, {}, opts);
    const c = args.config;
    const n = args.name ?? "postgresql";
    const ns = args.namespace;
    const child = { parent: this, provider: args.provider };
    const labels = workloadLabels(n, "database", args.instance);
    const meta = (objName: string) => ({ name: objName, namespace: ns, labels });

    const passwords = this.passwords(n);
    const passwordSecret = new k8s.core.v1.Secret(
      `${n}-passwords`,
      { metadata: meta(n), type: "Opaque", stringData: passwords },
      child,
    );
    const databaseUrlSecret = new k8s.core.v1.Secret(
      `${n}-database-url`,
      {
        metadata: meta(`${n}-app`),
        type: "Opaque",
        stringData: {
          DATABASE_URL: pulumi.interpolate`postgresql://${APP_USER}:${passwords[PASSWORD_KEYS.app]}@${n}.${ns}.svc.cluster.local:${PORT}/${APP_DB}`,
        },
      },
      child,
    );

    const nsName = pulumi.output(ns);
    const patroniYaml = nsName.apply((v) => memberPatroniYaml(n, v, c));
    const dcsJson = dynamicConfigJson(n, c);
    const patroniMap = new k8s.core.v1.ConfigMap(
      `${n}-patroni`,
      { metadata: meta(`${n}-patroni`), data: { "patroni.yml": patroniYaml, "dcs.json": dcsJson } },
      child,
    );
    const scripts = postgresScripts();
    const scriptsMap = new k8s.core.v1.ConfigMap(
      `${n}-scripts`,
      { metadata: meta(`${n}-scripts`), data: scripts },
      child,
    );
    // The exporter sidecar's custom queries (WAL-archiving state); it re-reads the file every scrape.
    const exporterMap = new k8s.core.v1.ConfigMap(
      `${n}-exporter`,
      {
        metadata: meta(`${n}-exporter-queries`),
        data: { [EXPORTER_QUERIES_KEY]: postgresExporterQueries() },
      },
      child,
    );
    const serviceAccount = this.patroniAccess(n, meta, child);
    this.networkPolicies(n, args, meta, child);

    const member = (nsv: string, cs: string): MemberArgs => ({
      name: n,
      namespace: nsv,
      config: c,
      image: args.image ?? c.image,
      labels,
      serviceAccountName: serviceAccount.metadata.name,
      passwordSecret: passwordSecret.metadata.name,
      patroniConfigMap: patroniMap.metadata.name,
      scriptsConfigMap: scriptsMap.metadata.name,
      exporterConfigMap: exporterMap.metadata.name,
      checksum: cs,
      // Created by createBackupJobs (backup-jobs.ts) under this name.
      backrestConfigMap: c.backup.enabled ? `${n}-pgbackrest` : undefined,
    });
    // The DCS part is applied by the config Job, not by a restart: it stays out of the checksum.
    const memberArgs = pulumi
      .all([nsName, patroniYaml])
      .apply(([nsv, y]) => member(nsv, memberChecksum(y, scripts)));
    const statefulSet = new k8s.apps.v1.StatefulSet(
      n,
      { metadata: meta(n), spec: memberArgs.apply(statefulSetSpec) },
      child,
    );
    new k8s.policy.v1.PodDisruptionBudget(
      `${n}-pdb`,
      {
        metadata: meta(n),
        spec: { maxUnavailable: 1, selector: { matchLabels: memberSelector(n) } },
      },
      child,
    );

    const selectors = serviceSelectors(n);
    const service = (svc: string, spec: k8s.types.input.core.v1.ServiceSpec) =>
      new k8s.core.v1.Service(
        `${svc}-svc`,
        {
          metadata: meta(svc),
          spec: {
            ports: [{ name: "postgresql", port: PORT, targetPort: "postgresql", protocol: "TCP" }],
            ...spec,
          },
        },
        child,
      );
    const rw = service(n, { type: "ClusterIP", selector: selectors.rw });
    const read = service(`${n}-read`, { type: "ClusterIP", selector: selectors.read });
    service(`${n}-headless`, {
      clusterIP: "None",
      publishNotReadyAddresses: true,
      selector: selectors.headless,
    });

    // Jobs are immutable and named by what they apply: a changed value replaces (and runs) the
    // Job; an unchanged one is left alone, so `pulumi up` never undoes an automatic failover
    // unless `postgres.primary` itself is changed.
    const control = (
      job: string,
      objName: string,
      spec: { script: string; args?: string[] },
      dependsOn: pulumi.Resource,
    ) =>
      new k8s.batch.v1.Job(
        `${n}-${job}`,
        {
          metadata: meta(objName),
          spec: memberArgs.apply((m) =>
            controlJobSpec(m, {
              ...spec,
              labels: workloadLabels(`${n}-${job}`, "database-control", args.instance),
            }),
          ),
        },
        { ...child, dependsOn: [dependsOn], deleteBeforeReplace: true },
      );
    const config = control(
      "config",
      `${n}-config-${shortHash(dcsJson)}`,
      { script: "pg-dcs-config.sh", args: ["/etc/patroni/dcs.json"] },
      statefulSet,
    );
    control(
      "switchover",
      `${n}-switchover-to-${c.primary}`,
      { script: "pg-switchover.sh", args: [`${n}-${c.primary}`] },
      config,
    );

    // The database Jobs (backups, maintenance, the pooler's bootstrap) reach PostgreSQL only.
    new k8s.networking.v1.NetworkPolicy(
      `${n}-jobs-netpol`,
      {
        metadata: {
          name: `${n}-jobs-allow`,
          namespace: ns,
          labels: workloadLabels(`${n}-jobs`, "database-jobs", args.instance),
        },
        spec: allowPolicySpec(
          { ...DATABASE_JOB_LABELS },
          { egressTo: [{ podLabels: { app: n }, ports: [PORT] }] },
        ),
      },
      child,
    );

    const scriptsVolume: k8s.types.input.core.v1.Volume = {
      name: "scripts",
      configMap: { name: scriptsMap.metadata.name, defaultMode: 0o555 },
    };
    const jobLabels = { ...DATABASE_JOB_LABELS };
    if (c.backup.enabled) {
      this.backupJobs(n, args, { scripts: scriptsVolume, jobLabels });
      this.verifyCronJobName = verifyCronJobName(n);
    }
    // VACUUM ANALYZE keeps statistics and visibility maps fresh whether or not backups are on.
    this.maintenanceJob(n, args, {
      passwordSecret: passwordSecret.metadata.name,
      scripts: scriptsVolume,
      jobLabels,
      primaryHost: pulumi.interpolate`${rw.metadata.name}.${ns}.svc.cluster.local`,
    });

    this.serviceName = rw.metadata.name;
    this.dnsName = pulumi.interpolate`${rw.metadata.name}.${ns}.svc.cluster.local`;
    this.readDnsName = pulumi.interpolate`${read.metadata.name}.${ns}.svc.cluster.local`;
    this.databaseUrl = { secretName: databaseUrlSecret.metadata.name, key: "DATABASE_URL" };
    this.passwordSecretName = passwordSecret.metadata.name;
    this.app = { database: APP_DB, user: APP_USER, password: passwords[PASSWORD_KEYS.app] };
    this.registerOutputs({
      serviceName: this.serviceName,
      dnsName: this.dnsName,
      readDnsName: this.readDnsName,
      databaseUrlSecretName: this.databaseUrl.secretName,
    });
  }

  /** Generated passwords (no special characters: the app password goes into a URL unescaped). */
  private passwords(n: string): Record<string, pulumi.Output<string>> {
    return Object.fromEntries(
      Object.entries(PASSWORD_KEYS).map(([who, key]) => [
        key,
        new random.RandomPassword(
          `${n}-${who}-password`,
          { length: 32, special: false },
          { parent: this },
        ).result,
      ]),
    );
  }

  /** The members' ServiceAccount (token mounted: Patroni's DCS is the API) and its Role. */
  private patroniAccess(
    n: string,
    meta: (name: string) => {
      name: string;
      namespace: pulumi.Input<string>;
      labels: Record<string, string>;
    },
    child: pulumi.CustomResourceOptions,
  ): k8s.core.v1.ServiceAccount {
    // No token by default: only the members' pod spec mounts one (Patroni's DCS is the API).
    const sa = new k8s.core.v1.ServiceAccount(
      `${n}-sa`,
      { metadata: meta(n), automountServiceAccountToken: false },
      child,
    );
    const role = new k8s.rbac.v1.Role(
      `${n}-patroni-role`,
      { metadata: meta(`${n}-patroni`), rules: patroniRbacRules() },
      child,
    );
    new k8s.rbac.v1.RoleBinding(
      `${n}-patroni-binding`,
      {
        metadata: meta(`${n}-patroni`),
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: role.metadata.name },
        subjects: [
          { kind: "ServiceAccount", name: sa.metadata.name, namespace: meta(n).namespace },
        ],
      },
      child,
    );
    return sa;
  }

  /** NetworkPolicies of the members and of the Patroni control Jobs. */
  private networkPolicies(
    n: string,
    args: PostgresClusterArgs,
    meta: (name: string) => {
      name: string;
      namespace: pulumi.Input<string>;
      labels: Record<string, string>;
    },
    child: pulumi.CustomResourceOptions,
  ): void {
    const peers = (list: NetworkPeer[] | undefined) =>
      (list ?? []).flatMap((p) => peerToRule(p).peers);
    new k8s.networking.v1.NetworkPolicy(
      `${n}-netpol`,
      {
        metadata: meta(`${n}-allow`),
        spec: memberNetworkPolicySpec(n, {
          clients: peers(args.clients),
          scrapers: peers(args.scrapers),
          jobs: { ...DATABASE_JOB_LABELS },
        }),
      },
      child,
    );
    new k8s.networking.v1.NetworkPolicy(
      `${n}-control-netpol`,
      { metadata: meta(`${n}-control-allow`), spec: controlJobNetworkPolicySpec(n) },
      child,
    );
  }

  /**
   * pgBackRest (components/postgres/backup-jobs.ts: pgbackrest.conf ConfigMap, exec RBAC, full /
   * differential / verify CronJobs, object-store egress).
   */
  private backupJobs(
    n: string,
    args: PostgresClusterArgs,
    x: { scripts: k8s.types.input.core.v1.Volume; jobLabels: Record<string, string> },
  ): void {
    const b = args.config.backup;
    createBackupJobs(this, args.provider, {
      name: n,
      namespace: args.namespace,
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
  }

  /** The weekly VACUUM ANALYZE CronJob (pg-maintenance.sh against the primary). */
  private maintenanceJob(
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
                  ...restrictedJobPod({ uid: PG_UID }),
                  containers: [
                    {
                      name: "maintenance",
                      image: args.image ?? args.config.image,
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
