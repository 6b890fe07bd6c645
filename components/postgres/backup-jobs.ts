/**
 * pgBackRest wiring: what the members need (pgbackrest.conf ConfigMap, S3 key env from the
 * credentials Secret, CA mount: {@link backrestMemberWiring}) and the backup CronJobs.
 *
 * Backups run where PGDATA is: the full / differential CronJobs start a small kubectl pod whose
 * ServiceAccount may only `pods/exec` into the members (by name) and list pods, and it runs
 * pg-backrest.sh in the current primary's postgresql container (docs/ARCHITECTURE.md, PostgreSQL backups).
 * Verification never touches a member: its own pod restores the newest backup into an ephemeral
 * volume and checks it (pg-backrest-verify.sh).
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { PostgresConfig } from "../config/postgres";
import { allowPolicySpec } from "../lib/network";
import { restrictedJobPod } from "../lib/workload";
import { restrictedContainerSecurity, toResourceRequirements, workloadLabels } from "../lib/k8s";
import { archiveParameters, BackrestRepo, pgbackrestConf, s3KeyEnv } from "./backrest";

/** Where the members and the verify pod find pgBackRest's files. */
export const BACKREST_PATHS = {
  configDir: "/etc/pgbackrest",
  config: "/etc/pgbackrest/pgbackrest.conf",
  caDir: "/etc/pgbackrest/ca",
  /** Name of the CA file in the caSecret and in the mount. */
  caKey: "ca.crt",
  lockPath: "/tmp/pgbackrest",
} as const;

/**
 * Pods carrying this label may open connections to the object store (its ports on any address)
 * and to the API server: the backup pods, and the members (archive-push) once the StatefulSet's
 * pod template carries it too.
 */
export const BACKUP_EGRESS_LABEL = { "backup.stock-analysis.io/object-store": "true" } as const;

/** Suffix of the verification CronJob's name (`<name>-backup-verify`). */
const VERIFY_JOB = "backup-verify";
/** Name of the verification CronJob of the member set `name` (alerts select it by name). */
export function verifyCronJobName(name: string): string {
  return `${name}-${VERIFY_JOB}`;
}

/** Keys of the credentials Secret. */
export const S3_SECRET_KEYS = { access: "access-key", secret: "secret-key" } as const;

type Backup = PostgresConfig["backup"];
type Repo = NonNullable<Backup["repo"]>;

function repos(b: Backup): Repo[] {
  return [b.repo, b.repo2].filter((r): r is Repo => r !== undefined);
}

function toBackrestRepo(r: Repo, i: number): BackrestRepo {
  return {
    endpoint: r.endpoint,
    port: r.port,
    bucket: r.bucket,
    region: r.region,
    uriStyle: r.uriStyle,
    path: r.path,
    caFile: r.caSecret ? `${BACKREST_PATHS.caDir}/repo${i + 1}/${BACKREST_PATHS.caKey}` : undefined,
  };
}

/** pgbackrest.conf of the members (and of the verify pod, which overrides pg1-path). */
export function memberBackrestConf(
  b: Backup,
  o: { dataDir: string; socketDir: string; port: number; backupStandby: boolean },
): string {
  return pgbackrestConf({
    stanza: b.stanza,
    pgPath: `${o.dataDir}/pgdata`,
    pgPort: o.port,
    pgSocketPath: o.socketDir,
    repos: repos(b).map(toBackrestRepo),
    // Only a fallback: every expire passes the count pg-backrest.sh computes from days + minimum.
    retentionFull: b.minFullBackups,
    compressType: b.compressType,
    compressLevel: b.compressLevel,
    processMax: b.processMax,
    // On the data volume: survives a container restart; loss only means re-checking the archive.
    spoolPath: `${o.dataDir}/pgbackrest-spool`,
    lockPath: BACKREST_PATHS.lockPath,
    backupStandby: o.backupStandby,
  });
}

/**
 * PostgreSQL parameters Patroni must set (bootstrap.dcs.postgresql.parameters): archiving on the
 * current primary, restore_command for replicas and recovery.
 */
export function memberArchiveParameters(b: Backup): Record<string, string | number> {
  if (!b.enabled) return {};
  return archiveParameters({ stanza: b.stanza, archiveTimeout: b.archiveTimeout }).parameters;
}

type EnvVar = k8s.types.input.core.v1.EnvVar;
type Volume = k8s.types.input.core.v1.Volume;
type VolumeMount = k8s.types.input.core.v1.VolumeMount;

/** Env, volumes and mounts a container running pgBackRest needs (member or verify pod). */
export function backrestMemberWiring(
  b: Backup,
  configMapName: pulumi.Input<string>,
): { env: EnvVar[]; volumes: Volume[]; volumeMounts: VolumeMount[] } {
  const env: EnvVar[] = [{ name: "PGBACKREST_STANZA", value: b.stanza }];
  const volumes: Volume[] = [
    { name: "pgbackrest-config", configMap: { name: configMapName, defaultMode: 0o444 } },
  ];
  const volumeMounts: VolumeMount[] = [
    { name: "pgbackrest-config", mountPath: BACKREST_PATHS.configDir, readOnly: true },
  ];
  repos(b).forEach((r, i) => {
    const names = s3KeyEnv(i + 1);
    env.push(
      {
        name: names.key,
        valueFrom: { secretKeyRef: { name: r.credentialsSecret, key: S3_SECRET_KEYS.access } },
      },
      {
        name: names.secret,
        valueFrom: { secretKeyRef: { name: r.credentialsSecret, key: S3_SECRET_KEYS.secret } },
      },
    );
    if (r.caSecret) {
      const vol = `pgbackrest-ca-repo${i + 1}`;
      volumes.push({
        name: vol,
        secret: {
          secretName: r.caSecret,
          defaultMode: 0o444,
          items: [{ key: BACKREST_PATHS.caKey, path: BACKREST_PATHS.caKey }],
        },
      });
      volumeMounts.push({
        name: vol,
        mountPath: `${BACKREST_PATHS.caDir}/repo${i + 1}`,
        readOnly: true,
      });
    }
  });
  return { env, volumes, volumeMounts };
}

export interface BackupJobsArgs {
  /** StatefulSet / app name (`postgresql`). */
  name: string;
  namespace: pulumi.Input<string>;
  instance: string;
  config: PostgresConfig;
  /** Data volume mount of the members (PGDATA is `<dataDir>/pgdata`). */
  dataDir: string;
  socketDir: string;
  port: number;
  uid: number;
  /** Scripts ConfigMap volume (pg-backrest*.sh, pg-backup-exec.sh). */
  scripts: Volume;
  /** Labels the job pods carry (the NetworkPolicy lets them reach PostgreSQL). */
  jobLabels: Record<string, string>;
  /** Image with kubectl for the exec pods. */
  kubectlImage: string;
  /** CronJob.spec.timeZone. */
  timeZone: string;
}

/** Creates the pgbackrest.conf ConfigMap, the exec RBAC, and the backup and verify CronJobs. */
export function createBackupJobs(
  parent: pulumi.Resource,
  provider: k8s.Provider,
  a: BackupJobsArgs,
): { configMapName: pulumi.Output<string> } {
  const b = a.config.backup;
  const n = a.name;
  const ns = a.namespace;
  const child = { parent, provider };
  const labels = workloadLabels(`${n}-backup`, "database-jobs", a.instance);
  const configMap = new k8s.core.v1.ConfigMap(
    `${n}-pgbackrest`,
    {
      metadata: { name: `${n}-pgbackrest`, namespace: ns, labels },
      data: {
        "pgbackrest.conf": memberBackrestConf(b, {
          dataDir: a.dataDir,
          socketDir: a.socketDir,
          port: a.port,
          // Needs pgBackRest's TLS server on the primary; until then backups run on the primary.
          backupStandby: false,
        }),
      },
    },
    child,
  );

  const members = Array.from({ length: a.config.replicas }, (_, i) => `${n}-${i}`);
  const sa = new k8s.core.v1.ServiceAccount(
    `${n}-backup-sa`,
    {
      metadata: { name: `${n}-backup`, namespace: ns, labels },
      automountServiceAccountToken: false,
    },
    child,
  );
  const role = new k8s.rbac.v1.Role(
    `${n}-backup-role`,
    {
      metadata: { name: `${n}-backup`, namespace: ns, labels },
      rules: [
        // Find the current primary by its role label.
        { apiGroups: [""], resources: ["pods"], verbs: ["list"] },
        // Exec only into the members, by name.
        { apiGroups: [""], resources: ["pods/exec"], resourceNames: members, verbs: ["create"] },
      ],
    },
    child,
  );
  new k8s.rbac.v1.RoleBinding(
    `${n}-backup-rolebinding`,
    {
      metadata: { name: `${n}-backup`, namespace: ns, labels },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: role.metadata.name },
      subjects: [{ kind: "ServiceAccount", name: sa.metadata.name, namespace: ns }],
    },
    child,
  );

  // Object store (any address: an external endpoint) and API server (kubectl exec) egress.
  const ports = [...new Set([...repos(b).map((r) => r.port), 443, 6443])].sort((x, y) => x - y);
  const base = allowPolicySpec(BACKUP_EGRESS_LABEL, {});
  new k8s.networking.v1.NetworkPolicy(
    `${n}-backup-netpol`,
    {
      metadata: { name: `${n}-backup-egress`, namespace: ns, labels },
      spec: {
        ...base,
        policyTypes: ["Egress"],
        egress: [
          {
            to: [{ ipBlock: { cidr: "0.0.0.0/0" } }],
            ports: ports.map((port) => ({ protocol: "TCP", port })),
          },
        ],
      },
    },
    child,
  );

  const wiring = backrestMemberWiring(b, configMap.metadata.name);
  const cron = (
    job: string,
    schedule: string,
    spec: {
      image: string;
      command: string[];
      env: EnvVar[];
      serviceAccount?: pulumi.Input<string>;
      volumes: Volume[];
      volumeMounts: VolumeMount[];
      deadlineSeconds: number;
      uid: number;
      retentionDays?: number;
    },
  ) => {
    const name = `${n}-${job}`;
    const podLabels = {
      ...workloadLabels(name, "database-jobs", a.instance),
      ...a.jobLabels,
      ...BACKUP_EGRESS_LABEL,
    };
    const backupMeta =
      spec.retentionDays === undefined
        ? {}
        : {
            labels: { ...podLabels, "backup.stock-analysis.io/target": n },
            annotations: {
              "backup.stock-analysis.io/retention-days": String(spec.retentionDays),
            },
          };
    return new k8s.batch.v1.CronJob(
      name,
      {
        metadata: { name, namespace: ns, labels: podLabels, ...backupMeta },
        spec: {
          schedule,
          timeZone: a.timeZone,
          concurrencyPolicy: "Forbid",
          startingDeadlineSeconds: 3600,
          successfulJobsHistoryLimit: 3,
          failedJobsHistoryLimit: 3,
          jobTemplate: {
            metadata: { labels: podLabels },
            spec: {
              // A failed run stays Failed for alerting; the next schedule is the retry.
              backoffLimit: 0,
              activeDeadlineSeconds: spec.deadlineSeconds,
              template: {
                metadata: { labels: podLabels },
                spec: {
                  ...restrictedJobPod({
                    uid: spec.uid,
                    serviceAccountName: spec.serviceAccount,
                    apiToken: spec.serviceAccount !== undefined,
                  }),
                  containers: [
                    {
                      name: job,
                      image: spec.image,
                      imagePullPolicy: "IfNotPresent",
                      command: spec.command,
                      env: spec.env,
                      resources: toResourceRequirements(b.resources),
                      securityContext: restrictedContainerSecurity(true),
                      volumeMounts: [
                        { name: "scripts", mountPath: "/scripts", readOnly: true },
                        { name: "tmp", mountPath: "/tmp" },
                        ...spec.volumeMounts,
                      ],
                    },
                  ],
                  volumes: [
                    a.scripts,
                    { name: "tmp", emptyDir: { sizeLimit: "256Mi" } },
                    ...spec.volumes,
                  ],
                },
              },
            },
          },
        },
      },
      child,
    );
  };

  const execEnv: EnvVar[] = [
    { name: "BACKUP_MIN_FULL", value: String(b.minFullBackups) },
    { name: "BACKUP_RETENTION_DAYS", value: String(b.retentionDays) },
    { name: "BACKUP_SELECTOR", value: `app=${n}` },
    { name: "NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
  ];
  const exec = (job: string, schedule: string, type: string) =>
    cron(job, schedule, {
      image: a.kubectlImage,
      command: ["bash", "/scripts/pg-backup-exec.sh", type],
      env: execEnv,
      serviceAccount: sa.metadata.name,
      volumes: [],
      volumeMounts: [],
      deadlineSeconds: 6 * 3600,
      uid: 65532,
      retentionDays: b.retentionDays,
    });
  exec("backup-full", b.fullSchedule, "full");
  exec("backup-diff", b.diffSchedule, b.diffType);

  cron(VERIFY_JOB, b.verifySchedule, {
    image: a.config.image,
    command: ["bash", "/scripts/pg-backrest-verify.sh"],
    env: [
      ...wiring.env,
      { name: "VERIFY_DIR", value: "/verify" },
      { name: "VERIFY_MAX_AGE_HOURS", value: String(b.maxAgeHours) },
      { name: "VERIFY_JOBS", value: String(b.processMax) },
      { name: "VERIFY_TABLES", value: b.verifyTables.join(" ") },
    ],
    volumes: [
      ...wiring.volumes,
      {
        // Generic ephemeral volume: created with the pod, deleted with it, sized from config.
        name: "verify",
        ephemeral: {
          volumeClaimTemplate: {
            metadata: { labels },
            spec: {
              accessModes: ["ReadWriteOnce"],
              storageClassName: a.config.storage.storageClass,
              resources: { requests: { storage: b.verifyStorage } },
            },
          },
        },
      },
    ],
    volumeMounts: [...wiring.volumeMounts, { name: "verify", mountPath: "/verify" }],
    deadlineSeconds: 6 * 3600,
    uid: a.uid,
  });
  return { configMapName: configMap.metadata.name };
}
