import * as fs from "node:fs";
import * as path from "node:path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { MigrationConfig } from "../config/migration";
import {
  ClusterPlacement,
  SecretKeyRef,
  checksum,
  dataClaim,
  restrictedContainerSecurity,
  restrictedPodSecurity,
  secretEnv,
  selectorLabels,
  toResourceRequirements,
  workloadLabels,
  writableVolumes,
} from "../lib/k8s";
import { allowPolicySpec } from "../lib/network";
import { restrictedJobPod } from "../lib/workload";

/** The pre-migration backup script the Job's init container runs (and the test runs). */
export const BACKUP_SCRIPT = "pre-migrate-backup.sh";
export const backupScriptPath = path.join(__dirname, "scripts", BACKUP_SCRIPT);
/** The `migrate` container's wrapper: checks the API image has what the command needs. */
export const MIGRATE_SCRIPT = "migrate.sh";
export const migrateScriptPath = path.join(__dirname, "scripts", MIGRATE_SCRIPT);
/** Files of the Job's scripts ConfigMap (help.sh is scripts/lib/help.sh, linked). */
const SCRIPT_FILES = [BACKUP_SCRIPT, MIGRATE_SCRIPT, "help.sh"] as const;

/** The scripts ConfigMap's data: the very files the tests run. */
export function migrationScripts(): Record<string, string> {
  return Object.fromEntries(
    SCRIPT_FILES.map((f) => [f, fs.readFileSync(path.join(__dirname, "scripts", f), "utf8")]),
  );
}

/**
 * The `migrate` container's command: `migration.command` behind migrate.sh in POSIX sh (the API
 * image need not have bash), which fails with one line when psql or the SQL file is missing.
 */
export function migrateContainerCommand(command: readonly string[]): string[] {
  return ["sh", `/scripts/${MIGRATE_SCRIPT}`, ...command];
}

/** UID of the official postgres image's `postgres` user: the backup container runs as it. */
const PG_UID = 999;
/** UID the app images run as (the API Deployment's). */
const APP_UID = 10001;

export interface MigrationArgs extends ClusterPlacement {
  /** Base name: the API's (`stock-analysis-api`); objects are `<base>-migrate…`. */
  base: string;
  instance: string;
  config: MigrationConfig;
  /** The API's image: the migration runs the code that is about to roll out. */
  image: pulumi.Input<string>;
  /** PostgreSQL image for the pre-migration pg_dump (its pg_dump matches the server). */
  backupImage: pulumi.Input<string>;
  /** `DATABASE_URL` Secret key (the one the API reads). */
  databaseUrl: SecretKeyRef;
  /** PostgreSQL pods the Job connects to on 5432. */
  database: { podLabels: Record<string, string>; port: number };
  imagePullSecrets?: pulumi.Input<string>[];
  /** What must be ready before the Job starts (the database). */
  waitFor?: pulumi.Input<pulumi.Resource>[];
}

/** Pod labels of every migration Job (`app=<base>-migrate`), what PostgreSQL's policy admits. */
export function migrationApp(base: string): string {
  return `${base}-migrate`;
}

/**
 * `<base>-migrate-<hash of image and command>`: a new API image (or command) is a new Job that
 * runs once; the same image again is the same, already completed Job, so nothing reruns.
 */
export function migrationJobName(base: string, image: string, command: readonly string[]): string {
  return `${migrationApp(base)}-${checksum(image, JSON.stringify(command))}`;
}

/**
 * The Job: init container `backup` (pg_dump to the PVC, PostgreSQL image) then container
 * `migrate` (the configured command in the API's image). No retries and no TTL: a failure fails
 * the Job at once (Pulumi fails the update), and a finished Job stays so it is not run again.
 */
export function migrationJobSpec(
  a: MigrationArgs,
  o: {
    labels: Record<string, string>;
    serviceAccountName: pulumi.Input<string>;
    jobName: pulumi.Input<string>;
    scriptsConfigMap: pulumi.Input<string>;
    backupClaim?: pulumi.Input<string>;
  },
): k8s.types.input.batch.v1.JobSpec {
  const c = a.config;
  const env = secretEnv({ DATABASE_URL: a.databaseUrl });
  const tmp = writableVolumes(["/tmp"]);
  const backup = c.backup.enabled && o.backupClaim;
  const scriptsMount = { name: "scripts", mountPath: "/scripts", readOnly: true };
  return {
    backoffLimit: 0,
    activeDeadlineSeconds: c.timeoutMinutes * 60,
    template: {
      metadata: { labels: o.labels },
      spec: {
        ...restrictedJobPod({ serviceAccountName: o.serviceAccountName }),
        // The backup container (uid 999) writes the PVC: the volume gets its group.
        securityContext: {
          ...restrictedPodSecurity(APP_UID),
          ...(backup ? { fsGroup: PG_UID } : {}),
        },
        imagePullSecrets: a.imagePullSecrets?.map((n) => ({ name: n })),
        initContainers: backup
          ? [
              {
                name: "backup",
                image: a.backupImage,
                imagePullPolicy: "IfNotPresent",
                command: ["bash", `/scripts/${BACKUP_SCRIPT}`],
                env: [
                  ...env,
                  { name: "MIGRATE_BACKUP_DIR", value: "/backups" },
                  { name: "MIGRATE_BACKUP_KEEP", value: String(c.backup.keep) },
                  { name: "MIGRATE_TAG", value: o.jobName },
                ],
                resources: toResourceRequirements(c.resources),
                securityContext: {
                  ...restrictedContainerSecurity(true),
                  runAsUser: PG_UID,
                  runAsGroup: PG_UID,
                },
                volumeMounts: [
                  scriptsMount,
                  { name: "backups", mountPath: "/backups" },
                  ...tmp.mounts,
                ],
              },
            ]
          : undefined,
        containers: [
          {
            name: "migrate",
            image: a.image,
            imagePullPolicy: "IfNotPresent",
            command: migrateContainerCommand(c.command),
            env,
            resources: toResourceRequirements(c.resources),
            securityContext: restrictedContainerSecurity(true),
            volumeMounts: [scriptsMount, ...tmp.mounts],
          },
        ],
        volumes: [
          { name: "scripts", configMap: { name: o.scriptsConfigMap, defaultMode: 0o555 } },
          ...(backup
            ? [{ name: "backups", persistentVolumeClaim: { claimName: o.backupClaim! } }]
            : []),
          ...tmp.volumes,
        ],
      },
    },
  };
}

/**
 * Database migration before each API rollout: a fresh pg_dump, then the configured command in
 * the API's image. `job` is what the API and Celery Deployments depend on: Pulumi awaits the
 * Job's completion, and a failed Job fails the update before either Deployment changes, so the
 * old version keeps serving.
 */
export class ApiMigration extends pulumi.ComponentResource {
  /** The Job of the current image; the app Deployments depend on it. */
  public readonly job: k8s.batch.v1.Job;

  constructor(name: string, args: MigrationArgs, opts?: pulumi.ComponentResourceOptions) {
    super("stock-analysis:app:ApiMigration", name, {}, opts);
    const c = args.config;
    const app = migrationApp(args.base);
    const labels = workloadLabels(app, "migration", args.instance);
    const selector = selectorLabels(app);
    const child = { parent: this, provider: args.provider };
    const meta = (n: string) => ({ name: n, namespace: args.namespace, labels });

    const serviceAccount = new k8s.core.v1.ServiceAccount(
      `${app}-sa`,
      { metadata: meta(app), automountServiceAccountToken: false },
      child,
    );
    new k8s.networking.v1.NetworkPolicy(
      `${app}-netpol`,
      {
        metadata: meta(`${app}-allow`),
        spec: allowPolicySpec(selector, {
          egressTo: [{ podLabels: args.database.podLabels, ports: [args.database.port] }],
        }),
      },
      child,
    );

    const scriptsConfigMap = new k8s.core.v1.ConfigMap(
      `${app}-scripts`,
      { metadata: meta(`${app}-scripts`), data: migrationScripts() },
      child,
    ).metadata.name;
    let backupClaim: pulumi.Output<string> | undefined;
    if (c.backup.enabled) {
      const claim = dataClaim(labels, { size: c.backup.size, storageClass: c.backup.storageClass });
      backupClaim = new k8s.core.v1.PersistentVolumeClaim(
        `${app}-backups`,
        {
          metadata: meta(`${app}-backups`),
          spec: claim.spec!,
        },
        // The dumps are the way back from a bad migration: never deleted by an update.
        { ...child, retainOnDelete: true },
      ).metadata.name;
    }

    const jobName = pulumi
      .output(args.image)
      .apply((image) => migrationJobName(args.base, image, c.command));
    const spec = migrationJobSpec(args, {
      labels,
      serviceAccountName: serviceAccount.metadata.name,
      jobName,
      scriptsConfigMap,
      backupClaim,
    });

    this.job = new k8s.batch.v1.Job(
      app,
      {
        metadata: {
          name: jobName,
          namespace: args.namespace,
          labels,
          // A Job that failed is replaced on the next `up` instead of awaited again.
          annotations: { "pulumi.com/replaceUnready": "true" },
        },
        spec,
      },
      {
        ...child,
        dependsOn: args.waitFor,
        // Every change of a Job's template is a replacement; its name may stay the same.
        deleteBeforeReplace: true,
        customTimeouts: { create: `${c.timeoutMinutes + 5}m`, update: `${c.timeoutMinutes + 5}m` },
      },
    );
    this.registerOutputs({ jobName: this.job.metadata.name });
  }
}
