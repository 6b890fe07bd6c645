import { z } from "zod";
import { resourcesSchema } from "./app";
import { cronSchedule, memoryQuantity, pinnedImage } from "./validators";

const storageSchema = (size: string) =>
  z.strictObject({
    size: memoryQuantity.default(size),
    /** StorageClass of the PVC; unset uses the cluster default (prod: an SSD class). */
    storageClass: z.string().min(1).optional(),
  });

export const postgresBackupSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Nightly backup (CronJob postgresql-backup). */
  schedule: cronSchedule.default("0 2 * * *"),
  /** Backups older than this are pruned... */
  retentionDays: z.number().int().min(1).default(7),
  /** ...but the newest `keepMin` intact backups are never pruned, whatever their age. */
  keepMin: z.number().int().min(1).default(3),
  /** Restore-test of the newest backup into a scratch database (CronJob postgresql-backup-verify). */
  verifySchedule: cronSchedule.default("0 5 * * *"),
  /** VACUUM ANALYZE of every database (CronJob postgresql-maintenance). */
  maintenanceSchedule: cronSchedule.default("0 3 * * 0"),
  /** Parallel pg_dump / pg_restore / compression workers. */
  jobs: z.number().int().min(1).max(16).default(2),
  compression: z.enum(["zstd", "gzip"]).default("zstd"),
  /** Fail verification when the newest backup is older than this: backups stopped running. */
  maxAgeHours: z.number().int().min(1).default(26),
  storage: storageSchema("5Gi").prefault({}),
  resources: resourcesSchema.default({
    requests: { cpu: "50m", memory: "128Mi" },
    limits: { memory: "512Mi" },
  }),
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
