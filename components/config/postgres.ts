import { z } from "zod";
import { buildSchema, resourcesSchema } from "./app";
import { objectStoreSchema } from "./object-store";
import { DEFAULT_TIMING, checkTiming } from "../postgres/patroni";
import { cronSchedule, memoryQuantity, pinnedImage } from "./validators";

const storageSchema = (size: string) =>
  z.strictObject({
    size: memoryQuantity.default(size),
    /** StorageClass of the PVC; unset uses the cluster default (prod: an SSD class). */
    storageClass: z.string().min(1).optional(),
  });

/**
 * One pgBackRest repository in an S3-compatible object store (HTTPS only: pgBackRest speaks nothing
 * else to S3); the keys reach pgBackRest only as PGBACKREST_REPO<n>_S3_KEY / _KEY_SECRET.
 */
export const backupRepoSchema = objectStoreSchema({
  path: "/stock-analysis",
  credentialsSecret: "postgresql-backup-s3",
});

/** Patroni's failover timing and safety limits (written to the DCS, applied to running clusters). */
export const failoverSchema = z
  .strictObject({
    /** Leader lock lifetime in seconds: a lost leader is replaced at most this long after it was last seen. */
    ttl: z.number().int().min(5).max(300).default(DEFAULT_TIMING.ttl),
    /** Seconds between Patroni HA loop runs. */
    loopWait: z.number().int().min(1).max(60).default(DEFAULT_TIMING.loopWait),
    /** Seconds DCS and PostgreSQL calls are retried before a leader demotes itself. */
    retryTimeout: z.number().int().min(1).max(120).default(DEFAULT_TIMING.retryTimeout),
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
/**
 * PgBouncer in front of the read-write Service (Deployment `postgresql-pooler`). The API and
 * Celery connect through it; each pooler pod keeps at most defaultPoolSize + reservePoolSize
 * (+1 for its auth_query lookups) server connections to the primary, whatever the number of
 * app pods.
 */
export const postgresPoolerSchema = z
  .strictObject({
    /** Route the API's and Celery's DATABASE_URL through PgBouncer (false: straight to `postgresql`). */
    enabled: z.boolean().default(true),
    /** Pooler pods; prod runs at least 2 (a PDB keeps one up through a node drain). */
    replicas: z.number().int().min(1).max(10).default(1),
    /**
     * Only `transaction` is supported: a server connection is held for one transaction, which is
     * what makes many app pods share a small pool. Session-level state (SET, advisory locks,
     * LISTEN, WITH HOLD cursors) does not survive between transactions.
     */
    poolMode: z.literal("transaction").default("transaction"),
    /** Server connections per pooler pod for the app database (`default_pool_size`). */
    defaultPoolSize: z.number().int().min(1).max(500).default(20),
    /** Server connections each pod keeps open even when idle (`min_pool_size`). */
    minPoolSize: z.number().int().min(0).max(500).default(2),
    /** Extra server connections a pod may open when clients wait longer than 3 s (`reserve_pool_size`). */
    reservePoolSize: z.number().int().min(0).max(100).default(5),
    /** Client connections each pooler pod accepts (`max_client_conn`); they cost ~2 KiB each. */
    maxClientConn: z.number().int().min(10).max(100000).default(1000),
    /** Seconds after which a server connection is closed and reopened (`server_lifetime`). */
    serverLifetimeSeconds: z.number().int().min(60).default(3600),
    /** Seconds an idle server connection is kept (`server_idle_timeout`). */
    serverIdleTimeoutSeconds: z.number().int().min(10).default(600),
    /** A client waiting this long for a server connection gets an error (`query_wait_timeout`). */
    queryWaitTimeoutSeconds: z.number().int().min(1).default(30),
    image: pinnedImage.default("edoburu/pgbouncer:v1.23.1-p3"),
    exporterImage: pinnedImage.default("quay.io/prometheuscommunity/pgbouncer-exporter:v0.9.0"),
    resources: resourcesSchema.default({
      requests: { cpu: "20m", memory: "32Mi" },
      limits: { memory: "64Mi" },
    }),
    exporterResources: resourcesSchema.default({
      requests: { cpu: "10m", memory: "16Mi" },
      limits: { memory: "32Mi" },
    }),
  })
  .superRefine((p, ctx) => {
    if (p.minPoolSize > p.defaultPoolSize) {
      ctx.addIssue({
        code: "custom",
        path: ["minPoolSize"],
        message: `must not exceed defaultPoolSize (${p.defaultPoolSize})`,
      });
    }
  });
export type PostgresPoolerConfig = z.output<typeof postgresPoolerSchema>;

/** `superuser_reserved_connections` (PostgreSQL's default, not overridden). */
export const SUPERUSER_RESERVED_CONNECTIONS = 3;
/** Patroni on the primary: its HA-loop connection, REST health checks, a rejoining pg_rewind. */
export const PATRONI_CONNECTIONS = 3;
/** postgres_exporter beside the primary (one connection). */
export const EXPORTER_CONNECTIONS = 1;
/** A rolling update of the pooler Deployment starts one new pod before stopping an old one. */
export const POOLER_ROLLOUT_SURGE = 1;

/** How the primary's `max_connections` is shared out; see {@link poolerConnectionBudget}. */
export interface ConnectionBudget {
  /** Server connections the pooler pods may open at worst (rollout surge included). */
  poolerNeeds: number;
  /** Connections per pooler pod: pool + reserve + 1 auth_query connection (`max_db_connections`). */
  perPod: number;
  /** Connections kept for everything else (superusers, Patroni, exporter, database jobs). */
  reserved: number;
  /** maxConnections - reserved: what the pooler may use. */
  available: number;
  /** The reserved part, item by item. */
  reservedFor: { superuser: number; patroni: number; exporter: number; backupJobs: number };
}

/**
 * The connection budget of the primary:
 *   (pooler.replicas + 1 surge) × (defaultPoolSize + reservePoolSize + 1 auth_query)
 *     <= maxConnections − (superuser_reserved_connections 3 + Patroni 3 + exporter 1
 *                          + database jobs (backup.processMax + 1) × (3 with backups, else 1))
 * The backup, verify and maintenance CronJobs may overlap and each opens up to processMax + 1
 * connections (a conservative bound); the maintenance CronJob (VACUUM ANALYZE) runs whether or
 * not backups are enabled. Streaming replicas and pg_basebackup use walsender slots, which count against
 * max_wal_senders, not max_connections (PostgreSQL >= 12), so replicas need no share here.
 * App pods never connect directly while the pooler is enabled, so their number does not count.
 */
export function poolerConnectionBudget(p: {
  maxConnections: number;
  backup: { enabled: boolean; processMax: number };
  pooler: Pick<PostgresPoolerConfig, "replicas" | "defaultPoolSize" | "reservePoolSize">;
}): ConnectionBudget {
  const perPod = p.pooler.defaultPoolSize + p.pooler.reservePoolSize + 1;
  const reservedFor = {
    superuser: SUPERUSER_RESERVED_CONNECTIONS,
    patroni: PATRONI_CONNECTIONS,
    exporter: EXPORTER_CONNECTIONS,
    backupJobs: (p.backup.enabled ? 3 : 1) * (p.backup.processMax + 1),
  };
  const reserved = Object.values(reservedFor).reduce((a, b) => a + b, 0);
  return {
    poolerNeeds: (p.pooler.replicas + POOLER_ROLLOUT_SURGE) * perPod,
    perPod,
    reserved,
    available: p.maxConnections - reserved,
    reservedFor,
  };
}
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
    /**
     * Force a WAL segment switch after this many seconds: the recovery point under light load is
     * this plus the asynchronous push (1-2 s measured). 50 keeps it within the 60 s goal
     * (scripts/bench/pg-backup: 60 gave 60.1 s, 50 gave 49.9 s).
     */
    archiveTimeout: z.number().int().min(10).max(3600).default(50),
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
    /**
     * VACUUM ANALYZE of every database (CronJob postgresql-maintenance); runs whether or not
     * backups are enabled.
     */
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
    pooler: postgresPoolerSchema.prefault({}),
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
    if (p.pooler.enabled) {
      const b = poolerConnectionBudget(p);
      if (b.poolerNeeds > b.available) {
        const r = b.reservedFor;
        ctx.addIssue({
          code: "custom",
          path: ["pooler"],
          message:
            `pooler server connections do not fit max_connections: ` +
            `(pooler.replicas ${p.pooler.replicas} + ${POOLER_ROLLOUT_SURGE} rollout surge) × ` +
            `(pooler.defaultPoolSize ${p.pooler.defaultPoolSize} + pooler.reservePoolSize ` +
            `${p.pooler.reservePoolSize} + 1 auth_query) = ${b.poolerNeeds} > maxConnections ` +
            `${p.maxConnections} − ${b.reserved} reserved (${r.superuser} superuser_reserved_connections ` +
            `+ ${r.patroni} Patroni + ${r.exporter} exporter + ${r.backupJobs} backup/maintenance jobs at ` +
            `backup.processMax ${p.backup.processMax}) = ${b.available}: lower pooler.replicas, ` +
            `pooler.defaultPoolSize or pooler.reservePoolSize, or raise maxConnections`,
        });
      }
    }
  });
export type PostgresConfig = z.output<typeof postgresSchema>;
