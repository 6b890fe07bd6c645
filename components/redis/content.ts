/**
 * Redis content as data: redis.conf for cluster nodes and the Celery broker, the Sentinel
 * template, client URLs, and the shell scripts the pods run (read from ./scripts).
 *
 * Secrets never appear here: passwords, the announced hostname, port, bind address and data dir
 * are written by the entrypoints into a runtime include (`--include`) from mounted Secret files
 * and env, so the same config runs in a pod and on loopback in tests.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

/** Directory holding the shell scripts mounted into the Redis pods. */
export const REDIS_SCRIPTS_DIR = join(__dirname, "scripts");

/** Every script the pods, Jobs and CronJobs run; the ConfigMap holds exactly these. */
export const REDIS_SCRIPT_NAMES = [
  "lib.sh",
  "node-entrypoint.sh",
  "cluster-form.sh",
  "broker-entrypoint.sh",
  "sentinel-entrypoint.sh",
  "backup.sh",
  "restore.sh",
  "object-store.sh",
] as const;
export type RedisScriptName = (typeof REDIS_SCRIPT_NAMES)[number];

/** Contents of one script, exactly as mounted. */
export function redisScript(name: RedisScriptName): string {
  return readFileSync(join(REDIS_SCRIPTS_DIR, name), "utf8");
}

/** All scripts keyed by file name, for a ConfigMap's `data`. */
export function redisScripts(): Record<RedisScriptName, string> {
  return Object.fromEntries(REDIS_SCRIPT_NAMES.map((n) => [n, redisScript(n)])) as Record<
    RedisScriptName,
    string
  >;
}

/** Share of the container memory limit given to `maxmemory`; the rest covers fork copy-on-write
 * during BGSAVE/AOF rewrite, replication and client buffers. */
export const MAXMEMORY_SHARE = 0.7;

/** `maxmemory` in bytes for a container memory limit in bytes. */
export function maxmemoryFor(memoryLimitBytes: number): number {
  if (!Number.isFinite(memoryLimitBytes) || memoryLimitBytes <= 0) {
    throw new Error(`memory limit must be a positive byte count, got ${memoryLimitBytes}`);
  }
  return Math.floor(memoryLimitBytes * MAXMEMORY_SHARE);
}

/** Parses a Kubernetes memory quantity (e.g. `1Gi`, `512Mi`, `64M`) into bytes. */
export function memoryQuantityBytes(quantity: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(quantity.trim());
  if (!m) throw new Error(`unsupported memory quantity: ${quantity}`);
  const factors: Record<string, number> = {
    "": 1,
    Ki: 1024,
    Mi: 1024 ** 2,
    Gi: 1024 ** 3,
    Ti: 1024 ** 4,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
  };
  return Math.floor(Number(m[1]) * factors[m[2] ?? ""]);
}

export interface ClusterNodeConfOptions {
  /** Memory cap for data, bytes (see {@link maxmemoryFor}). */
  maxmemoryBytes: number;
  /** Milliseconds a master may be unreachable before its replica is promoted. Default 5000. */
  nodeTimeoutMs?: number;
}

/** Directives shared by every Redis server we run (cluster node or broker). */
function commonServerLines(): string[] {
  return [
    "protected-mode yes",
    "tcp-keepalive 60",
    "daemonize no",
    'logfile ""',
    // AOF every second plus RDB snapshots: AOF for durability, RDB for backups and fast restarts.
    "appendonly yes",
    "appendfsync everysec",
    'appenddirname "appendonlydir"',
    "aof-use-rdb-preamble yes",
    'dbfilename "dump.rdb"',
    "save 900 1 300 10 60 10000",
    "stop-writes-on-bgsave-error yes",
    // Backups pull RDBs over the replication protocol (`redis-cli --rdb`); diskless keeps that off the PVC.
    "repl-diskless-sync yes",
  ];
}

/**
 * redis.conf for a Redis Cluster node used as the API cache.
 * Port, bind, dir, passwords and `cluster-announce-hostname` come from the entrypoint's include.
 */
export function clusterNodeConf(opts: ClusterNodeConfOptions): string {
  const nodeTimeoutMs = opts.nodeTimeoutMs ?? 5000;
  if (!Number.isInteger(nodeTimeoutMs) || nodeTimeoutMs < 100) {
    throw new Error(`nodeTimeoutMs must be an integer >= 100, got ${nodeTimeoutMs}`);
  }
  const lines = [
    "# Redis Cluster node (API cache). Port, bind, dir, auth and the announced hostname",
    "# are appended at start by node-entrypoint.sh via --include.",
    ...commonServerLines(),
    "cluster-enabled yes",
    // Relative to `dir`, i.e. on the PVC: the node keeps its ID and view of the cluster across restarts.
    "cluster-config-file nodes.conf",
    `cluster-node-timeout ${nodeTimeoutMs}`,
    // Clients are redirected by DNS name, so pod IP changes never invalidate what clients cache.
    "cluster-preferred-endpoint-type hostname",
    // A cache keeps serving the slots it still has when a shard is down.
    "cluster-require-full-coverage no",
    `maxmemory ${opts.maxmemoryBytes}`,
    "maxmemory-policy allkeys-lru",
    "maxmemory-samples 5",
  ];
  return lines.join("\n") + "\n";
}

export interface BrokerConfOptions {
  /** Memory cap in bytes; writes fail (no eviction) when reached so no task is silently dropped. */
  maxmemoryBytes: number;
}

/**
 * redis.conf for the Celery broker (standalone or Sentinel-managed).
 * `noeviction`: evicting a queue list would lose tasks; a full broker must refuse writes instead.
 */
export function brokerConf(opts: BrokerConfOptions): string {
  const lines = [
    "# Celery broker. Port, bind, dir, auth, replicaof and the announced hostname",
    "# are appended at start by broker-entrypoint.sh via --include.",
    ...commonServerLines(),
    `maxmemory ${opts.maxmemoryBytes}`,
    "maxmemory-policy noeviction",
    "replica-read-only yes",
    "replica-serve-stale-data yes",
  ];
  return lines.join("\n") + "\n";
}

export interface SentinelConfOptions {
  /** Sentinel master name; Celery's `master_name`. */
  masterName: string;
  /** Sentinels that must agree the primary is down. Default 2 (of 3). */
  quorum?: number;
  /** Milliseconds without a valid reply before the primary is considered down. Default 5000. */
  downAfterMs?: number;
  /** Failover timeout, ms. Default 60000. */
  failoverTimeoutMs?: number;
}

/** Placeholders in the Sentinel template, replaced by sentinel-entrypoint.sh with the current primary. */
export const SENTINEL_PRIMARY_HOST = "@PRIMARY_HOST@";
export const SENTINEL_PRIMARY_PORT = "@PRIMARY_PORT@";

/**
 * sentinel.conf template. Sentinel rewrites its config, so the entrypoint copies this to a writable
 * file, fills in the current primary and appends port, bind, announce and auth lines.
 */
export function sentinelConf(opts: SentinelConfOptions): string {
  if (!/^[A-Za-z0-9_-]+$/.test(opts.masterName)) {
    throw new Error(`invalid sentinel master name: ${opts.masterName}`);
  }
  const name = opts.masterName;
  const lines = [
    "# Redis Sentinel for the Celery broker; completed by sentinel-entrypoint.sh.",
    "daemonize no",
    'logfile ""',
    // Pods are addressed by stable DNS names (IPs change on restart); must precede `monitor`.
    "sentinel resolve-hostnames yes",
    "sentinel announce-hostnames yes",
    `sentinel monitor ${name} ${SENTINEL_PRIMARY_HOST} ${SENTINEL_PRIMARY_PORT} ${opts.quorum ?? 2}`,
    `sentinel down-after-milliseconds ${name} ${opts.downAfterMs ?? 5000}`,
    `sentinel failover-timeout ${name} ${opts.failoverTimeoutMs ?? 60000}`,
    `sentinel parallel-syncs ${name} 1`,
  ];
  return lines.join("\n") + "\n";
}

export interface HostPort {
  host: string;
  port: number;
}

export interface CeleryBrokerSettings {
  /** Value for Celery's `broker_url`. */
  url: string;
  /** Value for Celery's `broker_transport_options` (JSON-serialisable). */
  transportOptions: Record<string, unknown>;
}

/** Redis database Celery's broker URL selects; its queues are lists named after them there. */
export const CELERY_BROKER_DB = 0;

/**
 * redis_exporter's `REDIS_EXPORTER_CHECK_SINGLE_KEYS` value for Celery's queues: it exports
 * `redis_key_size{db="db<n>",key="<queue>"}` (LLEN of the list, 0 when the queue is empty and Redis
 * has deleted the list). The exporter splits on `,` and `=`, so queue names must not contain them.
 */
export function celeryQueueKeys(queues: readonly string[], db: number = CELERY_BROKER_DB): string {
  for (const q of queues)
    if (/[,=\s]/.test(q) || q === "") throw new Error(`queue name ${JSON.stringify(q)} unusable`);
  return queues.map((q) => `db${db}=${q}`).join(",");
}

/**
 * Celery broker settings. With sentinels: kombu's `sentinel://` transport, one URL per sentinel
 * joined by `;`, `master_name` and the sentinels' own password in `sentinel_kwargs`.
 * Without: a plain `redis://` URL to the standalone broker.
 */
export function celeryBrokerSettings(args: {
  password: string;
  db?: number;
  standalone?: HostPort;
  sentinels?: HostPort[];
  masterName?: string;
  /** Seconds before an unacknowledged task is redelivered; longer than the longest task. */
  visibilityTimeoutS?: number;
}): CeleryBrokerSettings {
  const db = args.db ?? CELERY_BROKER_DB;
  const auth = `:${encodeURIComponent(args.password)}@`;
  const visibility = { visibility_timeout: args.visibilityTimeoutS ?? 3600 };
  const sentinels = args.sentinels ?? [];
  if (sentinels.length > 0) {
    if (args.standalone) throw new Error("give either sentinels or standalone, not both");
    if (!args.masterName) throw new Error("masterName is required with sentinels");
    return {
      url: sentinels.map((s) => `sentinel://${auth}${s.host}:${s.port}/${db}`).join(";"),
      transportOptions: {
        master_name: args.masterName,
        sentinel_kwargs: { password: args.password },
        ...visibility,
      },
    };
  }
  if (!args.standalone) throw new Error("either sentinels or standalone is required");
  return {
    url: `redis://${auth}${args.standalone.host}:${args.standalone.port}/${db}`,
    transportOptions: visibility,
  };
}

/** URL of the cache cluster for a cluster-aware client (e.g. redis-py `RedisCluster.from_url`). */
export function cacheClusterUrl(args: { password: string; host: string; port: number }): string {
  return `redis://:${encodeURIComponent(args.password)}@${args.host}:${args.port}/0`;
}
