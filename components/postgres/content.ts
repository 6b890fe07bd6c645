import * as fs from "node:fs";
import * as path from "node:path";

/** Options for {@link postgresqlConf}. */
export interface PostgresConfOptions {
  /** Memory limit of the postgres container in bytes; buffer and cache sizes derive from it. */
  memoryBytes: number;
  /** Application names of every cluster member (`postgresql_0`, ...): the sync standby candidates. */
  members: string[];
  /** Synchronous replication: commits wait for ANY 1 standby to flush. */
  synchronous: boolean;
  /** TCP port. Default 5432. */
  port?: number;
  /** `listen_addresses`. Default `*`. */
  listenAddresses?: string;
  /** Unix socket directory. Default `/var/run/postgresql`. */
  socketDirectory?: string;
  /** Absolute path of the pg_hba.conf the server reads. Default `/etc/postgresql/pg_hba.conf`. */
  hbaFile?: string;
  /** `max_connections`. Default 200. */
  maxConnections?: number;
  /** Cap on WAL a lagging replication slot may pin. Default `10GB`. */
  maxSlotWalKeepSize?: string;
  /** WAL kept regardless of slots (lets a briefly disconnected replica resume). Default `256MB`. */
  walKeepSize?: string;
}

const MiB = 1024 * 1024;

/** Kubernetes quantity (`512Mi`, `4Gi`, `1G`, plain bytes) to bytes. */
export function quantityToBytes(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(q.trim());
  if (!m) throw new Error(`not a memory quantity: ${q}`);
  const factor: Record<string, number> = {
    "": 1,
    Ki: 1024,
    Mi: MiB,
    Gi: 1024 * MiB,
    Ti: 1024 * 1024 * MiB,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
  };
  return Math.floor(Number(m[1]) * factor[m[2] ?? ""]);
}

function mb(bytes: number): string {
  return `${Math.max(1, Math.floor(bytes / MiB))}MB`;
}

/** Single-quoted postgresql.conf string literal. */
function quote(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/**
 * postgresql.conf for every member. The same file serves primary and replicas: role is decided by
 * standby.signal, which the entrypoint manages, so a promotion needs no config change.
 */
export function postgresqlConf(o: PostgresConfOptions): string {
  const mem = o.memoryBytes;
  const maxConnections = o.maxConnections ?? 200;
  const members = o.members.length;
  // Leave headroom for the page cache and per-backend memory: 25% shared buffers is the usual
  // starting point; work_mem is bounded so that all connections sorting at once stay within 25%.
  const sharedBuffers = Math.max(32 * MiB, Math.floor(mem / 4));
  const lines: [string, string | number][] = [
    ["listen_addresses", quote(o.listenAddresses ?? "*")],
    ["port", o.port ?? 5432],
    ["unix_socket_directories", quote(o.socketDirectory ?? "/var/run/postgresql")],
    ["hba_file", quote(o.hbaFile ?? "/etc/postgresql/pg_hba.conf")],
    ["max_connections", maxConnections],
    ["password_encryption", quote("scram-sha-256")],
    ["shared_buffers", mb(sharedBuffers)],
    ["effective_cache_size", mb(Math.floor((mem * 3) / 4))],
    ["maintenance_work_mem", mb(Math.min(1024 * MiB, Math.floor(mem / 16)))],
    ["work_mem", mb(Math.max(4 * MiB, Math.floor(mem / 4 / maxConnections)))],
    ["wal_level", "replica"],
    // pg_rewind needs hint-bit changes WAL-logged to rejoin a failed primary.
    ["wal_log_hints", "on"],
    ["max_wal_senders", members + 4],
    ["max_replication_slots", members + 4],
    ["max_slot_wal_keep_size", quote(o.maxSlotWalKeepSize ?? "10GB")],
    ["wal_keep_size", quote(o.walKeepSize ?? "256MB")],
    ["max_wal_size", quote("2GB")],
    ["hot_standby", "on"],
    ["hot_standby_feedback", "on"],
    ["wal_receiver_timeout", quote("30s")],
    ["wal_sender_timeout", quote("30s")],
    // A replica retries its upstream every second (default 5 s): with synchronous replication the
    // first commit after a failover waits for a replica to reconnect.
    ["wal_retrieve_retry_interval", quote("1s")],
    [
      "synchronous_standby_names",
      quote(o.synchronous && members > 1 ? `ANY 1 (${o.members.join(", ")})` : ""),
    ],
    ["shared_preload_libraries", quote("pg_stat_statements")],
    ["pg_stat_statements.track", "all"],
    ["log_destination", quote("stderr")],
    ["logging_collector", "off"],
    ["log_line_prefix", quote("%m [%p] %q%u@%d ")],
    ["log_min_duration_statement", quote("1s")],
    ["log_checkpoints", "on"],
    ["log_connections", "off"],
    ["log_lock_waits", "on"],
    ["timezone", quote("UTC")],
  ];
  return (
    "# Rendered by components/postgres/content.ts; identical on every member.\n" +
    lines.map(([k, v]) => `${k} = ${v}`).join("\n") +
    "\n"
  );
}

/** Options for {@link pgHbaConf}. */
export interface PgHbaOptions {
  /** Role used by replicas for streaming replication. Default `replicator`. */
  replicationUser?: string;
  /** Client networks allowed over TCP. Default everything (NetworkPolicy narrows it in-cluster). */
  clientCidrs?: string[];
}

/**
 * pg_hba.conf: scram-sha-256 for every TCP connection, including replication. The unix socket uses
 * peer auth, so only processes inside the container running as OS user `postgres` (kubectl exec,
 * the entrypoint) connect without a password: that keeps the runbook's `psql -U postgres` working.
 */
export function pgHbaConf(o: PgHbaOptions = {}): string {
  const repl = o.replicationUser ?? "replicator";
  const cidrs = o.clientCidrs ?? ["0.0.0.0/0", "::/0"];
  const rows = [
    "# TYPE  DATABASE     USER        ADDRESS   METHOD",
    "local   all          postgres              peer",
    "local   all          all                   scram-sha-256",
    ...cidrs.map((c) => `host    replication  ${repl}  ${c}  scram-sha-256`),
    ...cidrs.map((c) => `host    all          all         ${c}  scram-sha-256`),
  ];
  return rows.join("\n") + "\n";
}

/** Shell scripts the pods run, keyed by file name (mounted as a ConfigMap at /scripts). */
export const SCRIPT_NAMES = [
  "pg-entrypoint.sh",
  "pg-common.sh",
  "pg-failover.sh",
  "pg-backup.sh",
  "pg-backup-lib.sh",
  "pg-backup-prune.sh",
  "pg-verify.sh",
  "pg-restore.sh",
  "pg-maintenance.sh",
  "pg-liveness.sh",
  "pg-backrest.sh",
  "pg-backrest-restore.sh",
  "pg-backrest-verify.sh",
  "pg-backup-exec.sh",
] as const;

export type PostgresScriptName = (typeof SCRIPT_NAMES)[number];

/** Absolute path of a script file in this repository (tests run this very file). */
export function scriptPath(name: PostgresScriptName): string {
  return path.join(__dirname, "scripts", name);
}

/** Contents of every pod script, for the scripts ConfigMap. */
export function postgresScripts(): Record<PostgresScriptName, string> {
  return Object.fromEntries(
    SCRIPT_NAMES.map((n) => [n, fs.readFileSync(scriptPath(n), "utf8")]),
  ) as Record<PostgresScriptName, string>;
}

/** Slot and application name of member `ordinal` (slot names allow only [a-z0-9_]). */
export function memberName(prefix: string, ordinal: number): string {
  return `${prefix.replace(/[^a-z0-9_]/g, "_")}_${ordinal}`;
}
