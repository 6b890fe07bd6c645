import * as fs from "node:fs";
import * as path from "node:path";
import type { HbaEntry } from "./patroni";

/** Options for {@link postgresqlParameters}. */
export interface PostgresParameterOptions {
  /** Memory limit of the postgres container in bytes; buffer and cache sizes derive from it. */
  memoryBytes: number;
  /** Members of the cluster: sizes the WAL sender and slot limits. */
  members: number;
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

/**
 * postgresql.conf parameters for every member, handed to Patroni (which owns listen addresses,
 * port, pg_hba.conf, primary_conninfo and synchronous_standby_names itself).
 */
export function postgresqlParameters(o: PostgresParameterOptions): Record<string, string | number> {
  const mem = o.memoryBytes;
  const maxConnections = o.maxConnections ?? 200;
  // Leave headroom for the page cache and per-backend memory: 25% shared buffers is the usual
  // starting point; work_mem is bounded so that all connections sorting at once stay within 25%.
  const sharedBuffers = Math.max(32 * MiB, Math.floor(mem / 4));
  return {
    max_connections: maxConnections,
    password_encryption: "scram-sha-256",
    shared_buffers: mb(sharedBuffers),
    effective_cache_size: mb(Math.floor((mem * 3) / 4)),
    maintenance_work_mem: mb(Math.min(1024 * MiB, Math.floor(mem / 16))),
    work_mem: mb(Math.max(4 * MiB, Math.floor(mem / 4 / maxConnections))),
    wal_level: "replica",
    // pg_rewind needs hint-bit changes WAL-logged to rejoin a failed primary.
    wal_log_hints: "on",
    max_wal_senders: o.members + 4,
    max_replication_slots: o.members + 4,
    max_slot_wal_keep_size: o.maxSlotWalKeepSize ?? "10GB",
    wal_keep_size: o.walKeepSize ?? "256MB",
    max_wal_size: "2GB",
    hot_standby: "on",
    hot_standby_feedback: "on",
    wal_receiver_timeout: "30s",
    wal_sender_timeout: "30s",
    // A replica retries its upstream every second (default 5 s): with synchronous replication the
    // first commit after a failover waits for a replica to reconnect.
    wal_retrieve_retry_interval: "1s",
    shared_preload_libraries: "pg_stat_statements",
    "pg_stat_statements.track": "all",
    log_destination: "stderr",
    logging_collector: "off",
    log_line_prefix: "%m [%p] %q%u@%d ",
    log_min_duration_statement: "1s",
    log_checkpoints: "on",
    log_connections: "off",
    log_lock_waits: "on",
    timezone: "UTC",
  };
}

/** Options for {@link pgHbaEntries}. */
export interface PgHbaOptions {
  /** Role used by replicas for streaming replication. Default `replicator`. */
  replicationUser?: string;
  /** Client networks allowed over TCP. Default everything (NetworkPolicy narrows it in-cluster). */
  clientCidrs?: string[];
}

/**
 * pg_hba.conf rows: scram-sha-256 for every TCP connection, including replication. The unix socket
 * uses peer auth for `postgres`, so only processes inside the container running as OS user
 * `postgres` (kubectl exec, Patroni) connect without a password: that keeps the runbook's
 * `psql -U postgres` working.
 */
export function pgHbaEntries(o: PgHbaOptions = {}): HbaEntry[] {
  const repl = o.replicationUser ?? "replicator";
  const cidrs = o.clientCidrs ?? ["0.0.0.0/0", "::/0"];
  return [
    { type: "local", database: "all", user: "postgres", method: "peer" },
    { type: "local", database: "all", user: "all", method: "scram-sha-256" },
    ...cidrs.map((c): HbaEntry => ({
      type: "host",
      database: "replication",
      user: repl,
      address: c,
      method: "scram-sha-256",
    })),
    ...cidrs.map((c): HbaEntry => ({
      type: "host",
      database: "all",
      user: "all",
      address: c,
      method: "scram-sha-256",
    })),
  ];
}

/** Shell scripts the pods run, keyed by file name (mounted as a ConfigMap at /scripts). */
export const SCRIPT_NAMES = [
  "pg-roles.sh",
  "pg-dcs-config.sh",
  "pg-switchover.sh",
  "patroni-rest.sh",
  "pg-maintenance.sh",
  "pg-liveness.sh",
  "pg-backrest.sh",
  "pg-backrest-restore.sh",
  "pg-backrest-verify.sh",
  "pg-backup-exec.sh",
  // scripts/lib/help.sh (linked): the scripts above source it for --help.
  "help.sh",
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
