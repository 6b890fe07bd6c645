import { z } from "zod";
import { resourcesSchema } from "./app";
import { cronSchedule, memoryQuantity, pinnedImage } from "./validators";

const storageSchema = (size: string) =>
  z.strictObject({
    size: memoryQuantity.default(size),
    /** StorageClass of the PVC; unset uses the cluster default (prod: an SSD class). */
    storageClass: z.string().min(1).optional(),
  });

/** One pgBackRest repository in an S3-compatible object store. */
export const backupRepoSchema = z.strictObject({
  /** S3 endpoint host name (no scheme), e.g. `s3.ap-east-1.amazonaws.com` or `minio.backup.internal`. */
  endpoint: z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, {
    message: "must be a host name without scheme or port",
  }),
  /** TCP port of the endpoint (HTTPS only: pgBackRest speaks nothing else to S3). */
  port: z.number().int().min(1).max(65535).default(443),
  bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, {
    message: "must be an S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)",
  }),
  region: z.string().min(1).default("us-east-1"),
  /** `path` (https://endpoint/bucket/key, most self-hosted stores) or `host` (bucket.endpoint). */
  uriStyle: z.enum(["path", "host"]).default("path"),
  /** Prefix inside the bucket; one per stack so stacks never share backups. */
  path: z
    .string()
    .regex(/^\/[A-Za-z0-9._/-]*$/, {
      message: "must be an absolute path like /stock-analysis/prod",
    })
    .default("/stock-analysis"),
  /**
   * Secret (same namespace) holding the store's keys as `access-key` and `secret-key`; they reach
   * pgBackRest only as PGBACKREST_REPO<n>_S3_KEY / _KEY_SECRET environment variables.
   */
  credentialsSecret: z.string().min(1).default("postgresql-backup-s3"),
  /** Secret with `ca.crt`, the CA that signed the endpoint's certificate; unset: system CAs. */
  caSecret: z.string().min(1).optional(),
});

export const postgresBackupSchema = z
  .strictObject({
    /**
     * Continuous WAL archiving and base backups with pgBackRest to the object store `repo`. Off by
     * default (no store to send them to); the prod policy requires a backup for every data set.
     */
    enabled: z.boolean().default(false),
    /** pgBackRest stanza (the cluster's name in the repository). */
    stanza: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]*$/, { message: "must be lowercase letters, digits, _ or -" })
      .default("stock-analysis"),
    /** Primary repository: where every WAL segment and base backup goes. Required when enabled. */
    repo: backupRepoSchema.optional(),
    /** Optional second repository (another store or region); archiving writes to both. */
    repo2: backupRepoSchema.optional(),
    /** Full backup (CronJob postgresql-backup-full). */
    fullSchedule: cronSchedule.default("0 2 * * 0"),
    /** Differential or incremental backups between fulls (CronJob postgresql-backup-diff). */
    diffSchedule: cronSchedule.default("0 2 * * 1-6"),
    /** `diff`: changes since the last full; `incr`: since the last backup of any type. */
    diffType: z.enum(["diff", "incr"]).default("diff"),
    /**
     * Full backups (and the WAL to restore them to any point) are kept this many days: the
     * point-in-time window. Expiry runs after every backup.
     */
    retentionDays: z.number().int().min(1).default(7),
    /** ...but never fewer than this many full backups, whatever their age. */
    minFullBackups: z.number().int().min(1).default(2),
    /** Force a WAL segment switch after this many seconds: the recovery point under light load. */
    archiveTimeout: z.number().int().min(10).max(3600).default(60),
    /** Compression of backups and archived WAL. */
    compressType: z.enum(["zstd", "lz4", "gz", "none"]).default("lz4"),
    compressLevel: z.number().int().min(0).max(19).default(1),
    /** Parallel processes for backup, restore and asynchronous archive-push/get. */
    processMax: z.number().int().min(1).max(16).default(2),
    /** Take backups from a streaming standby (needs replicas >= 2); the primary only ships WAL. */
    fromStandby: z.boolean().default(true),
    /** Restore test of the newest backup in its own pod (CronJob postgresql-backup-verify). */
    verifySchedule: cronSchedule.default("0 5 * * *"),
    /** Verification fails when the newest backup is older than this: backups stopped running. */
    maxAgeHours: z.number().int().min(1).default(26),
    /** Tables whose row counts the verification reports (schema-qualified or in `public`). */
    verifyTables: z.array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_.]*$/)).default([]),
    /** Scratch volume of the verification pod (ephemeral); must hold the restored database. */
    verifyStorage: memoryQuantity.default("10Gi"),
    /**
     * Image of the backup CronJobs' pods, which only `kubectl exec` pgBackRest in the primary
     * (needs bash: the upstream kubectl image ships it).
     */
    kubectlImage: pinnedImage.default("registry.k8s.io/kubectl:v1.31.14"),
    /** VACUUM ANALYZE of every database (CronJob postgresql-maintenance). */
    maintenanceSchedule: cronSchedule.default("0 3 * * 0"),
    resources: resourcesSchema.default({
      requests: { cpu: "50m", memory: "128Mi" },
      limits: { memory: "512Mi" },
    }),
  })
  .superRefine((b, ctx) => {
    if (b.enabled && !b.repo)
      ctx.addIssue({
        code: "custom",
        path: ["repo"],
        message:
          "is required when backup.enabled: the object store (endpoint, bucket) backups go to",
      });
    if (
      b.repo &&
      b.repo2 &&
      b.repo.endpoint === b.repo2.endpoint &&
      b.repo.bucket === b.repo2.bucket &&
      b.repo.path === b.repo2.path
    )
      ctx.addIssue({
        code: "custom",
        path: ["repo2"],
        message:
          "must differ from repo (endpoint, bucket or path): a second copy in the same place",
      });
  });

/** PostgreSQL 15: one primary plus `replicas - 1` streaming replicas (statefulset/postgresql). */
export const postgresSchema = z
  .strictObject({
    image: pinnedImage.default("postgres:15.10-bookworm"),
    exporterImage: pinnedImage.default("quay.io/prometheuscommunity/postgres-exporter:v0.15.0"),
    /** Members of the StatefulSet: 1 primary + (replicas - 1) streaming replicas. */
    replicas: z.number().int().min(1).max(7).default(1),
    /**
     * Ordinal of the primary (pod postgresql-<primary>). Changing it and running `pulumi up`
     * promotes that replica and turns the old primary into its replica.
     */
    primary: z.number().int().min(0).default(0),
    /** Synchronous replication: a commit waits until ANY 1 replica has flushed it. */
    synchronous: z.boolean().default(false),
    maxConnections: z.number().int().min(20).max(5000).default(200),
    /** Cap on WAL a disconnected replica's slot may hold back (it re-clones beyond that). */
    maxSlotWalKeepSize: z
      .string()
      .regex(/^\d+(MB|GB|TB)$/)
      .default("10GB"),
    /** Hard (required) or soft (preferred) one-member-per-node spreading. */
    antiAffinity: z.enum(["required", "preferred"]).default("preferred"),
    resources: resourcesSchema.default({
      requests: { cpu: "200m", memory: "384Mi" },
      limits: { memory: "384Mi" },
    }),
    exporterResources: resourcesSchema.default({
      requests: { cpu: "20m", memory: "32Mi" },
      limits: { memory: "64Mi" },
    }),
    storage: storageSchema("5Gi").prefault({}),
    backup: postgresBackupSchema.prefault({}),
  })
  .superRefine((p, ctx) => {
    if (p.primary >= p.replicas) {
      ctx.addIssue({
        code: "custom",
        path: ["primary"],
        message: `must be an ordinal of the StatefulSet (0..${p.replicas - 1})`,
      });
    }
    if (p.synchronous && p.replicas < 2) {
      ctx.addIssue({
        code: "custom",
        path: ["synchronous"],
        message: "needs at least one replica (replicas >= 2): commits would wait forever",
      });
    }
  });
export type PostgresConfig = z.output<typeof postgresSchema>;
