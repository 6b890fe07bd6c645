import { z } from "zod";
import { buildSchema, resourcesSchema } from "./app";
import { checkTiming } from "../postgres/patroni";
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

/** Patroni's failover timing and safety limits (written to the DCS, applied to running clusters). */
export const failoverSchema = z
  .strictObject({
    /** Leader lock lifetime in seconds: a lost leader is replaced at most this long after it was last seen. */
    ttl: z.number().int().min(5).max(300).default(20),
    /** Seconds between Patroni HA loop runs. */
    loopWait: z.number().int().min(1).max(60).default(5),
    /** Seconds DCS and PostgreSQL calls are retried before a leader demotes itself. */
    retryTimeout: z.number().int().min(1).max(120).default(5),
    /** A replica lagging more than this many bytes is never promoted automatically. */
    maximumLagOnFailover: z.number().int().min(0).default(1048576),
  })
  .superRefine((t, ctx) => {
    try {
      checkTiming(t);
    } catch (e) {
      ctx.addIssue({ code: "custom", path: ["ttl"], message: (e as Error).message });
    }
  });

/**
 * PostgreSQL 15 run by Patroni (statefulset/postgresql): one leader plus `replicas - 1` streaming
 * replicas, automatic failover through the Kubernetes API, leader lock in ConfigMaps.
 */
export const postgresSchema = z
  .strictObject({
    /**
     * Member image: the official postgres:15 plus Patroni and pgBackRest, from
     * components/postgres/image/Dockerfile. Both stacks build it (`build`); without a build the
     * image must already exist where the cluster pulls from.
     */
    image: pinnedImage.default("stock-analysis-postgres:15.10-patroni3.0.2"),
    /**
     * @pulumi/docker builds `image` from this context (`{ context: components/postgres/image }`).
     * A name with a registry host is pushed and pods run the pushed digest; a bare name stays
     * local (kind: loaded into the nodes), which only mode kind can run.
     */
    build: buildSchema.optional(),
    exporterImage: pinnedImage.default("quay.io/prometheuscommunity/postgres-exporter:v0.15.0"),
    /** Members of the StatefulSet: 1 leader + (replicas - 1) streaming replicas. */
    replicas: z.number().int().min(1).max(7).default(1),
    /**
     * Ordinal of the preferred leader (pod postgresql-<primary>). Changing it and running
     * `pulumi up` asks Patroni for a switchover to that member (nothing happens when it already
     * leads). Patroni fails over by itself when the leader is lost; set this to the new leader
     * afterwards (docs/RUNBOOK.md).
     */
    primary: z.number().int().min(0).default(0),
    /**
     * Patroni synchronous_mode: a commit waits until one standby has flushed it, and only that
     * standby may be promoted automatically (no acknowledged commit is lost on failover).
     */
    synchronous: z.boolean().default(false),
    failover: failoverSchema.prefault({}),
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
