/**
 * pgBackRest content (pure, no Pulumi resources): pgbackrest.conf for the members and the backup
 * and verify pods, and the PostgreSQL parameters Patroni sets so that WAL archiving follows the
 * current primary. Object-store credentials never appear here: pgBackRest reads them from
 * PGBACKREST_REPO<n>_S3_KEY / _KEY_SECRET, which the pods take from a Secret.
 */

/** One S3-compatible repository. */
export interface BackrestRepo {
  /** Host name of the S3 endpoint (no scheme, no port). */
  endpoint: string;
  /** HTTPS port. Default 443. */
  port?: number;
  bucket: string;
  region: string;
  uriStyle: "path" | "host";
  /** Prefix inside the bucket. */
  path: string;
  /** CA file that signed the endpoint's certificate; unset: the system CAs. */
  caFile?: string;
}

export interface BackrestConfig {
  stanza: string;
  /** PGDATA of the local member. */
  pgPath: string;
  pgPort?: number;
  /** Unix socket directory of the local member. */
  pgSocketPath?: string;
  /** Database user pgBackRest connects as over the socket. Default `postgres`. */
  pgUser?: string;
  repos: BackrestRepo[];
  /** Full backups kept by pgBackRest's own expire (count); see pg-backrest.sh for time retention. */
  retentionFull: number;
  compressType: "zstd" | "lz4" | "gz" | "none";
  compressLevel: number;
  processMax: number;
  /** Asynchronous archive-push/archive-get through this spool directory. Unset: synchronous. */
  spoolPath?: string;
  /** Directory for pgBackRest's logs (console logging only when unset). */
  logPath?: string;
  /** Lock directory. Default /tmp/pgbackrest. */
  lockPath?: string;
  /** Take backups from a standby (needs the primary as a second pg host). */
  backupStandby?: boolean;
  /** Seconds a backup/check waits for a WAL segment to reach the archive. Default 120. */
  archiveTimeoutSeconds?: number;
}

const SAFE = /^[^\n\r=]+$/;

function value(key: string, v: string | number | boolean): string {
  const s = typeof v === "boolean" ? (v ? "y" : "n") : String(v);
  if (!SAFE.test(s) || s.trim() !== s)
    throw new Error(`pgbackrest.conf: ${key} has an unsafe value ${JSON.stringify(s)}`);
  return `${key}=${s}`;
}

/** pgbackrest.conf text: a [global] section (repositories, compression, archiving) and the stanza. */
export function pgbackrestConf(c: BackrestConfig): string {
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(c.stanza))
    throw new Error(`pgbackrest: stanza must be lowercase letters, digits, _ or -: ${c.stanza}`);
  if (c.repos.length < 1 || c.repos.length > 4)
    throw new Error(`pgbackrest: 1 to 4 repositories, got ${c.repos.length}`);
  if (!Number.isInteger(c.retentionFull) || c.retentionFull < 1)
    throw new Error(`pgbackrest: retentionFull must be a whole number >= 1`);
  const g: [string, string | number | boolean][] = [];
  c.repos.forEach((r, i) => {
    const n = `repo${i + 1}`;
    if (!r.path.startsWith("/")) throw new Error(`pgbackrest: ${n} path must be absolute`);
    g.push(
      [`${n}-type`, "s3"],
      [`${n}-path`, r.path],
      [`${n}-s3-endpoint`, r.endpoint],
      [`${n}-s3-bucket`, r.bucket],
      [`${n}-s3-region`, r.region],
      [`${n}-s3-uri-style`, r.uriStyle],
      [`${n}-storage-port`, r.port ?? 443],
      [`${n}-storage-verify-tls`, true],
    );
    if (r.caFile) g.push([`${n}-storage-ca-file`, r.caFile]);
    // Small files (most of a database with many tables: every table and index is a file) go
    // into bundles, one object per ~20 MiB instead of one request each way per file: measured
    // with scripts/bench/pg-backup (README, backup bench) on the many-table set.
    g.push([`${n}-bundle`, true]);
    // Retention is by count here; pg-backrest.sh turns the configured days + minimum into the
    // count each expire keeps. WAL is kept for every backup still kept (archive retention default).
    g.push([`${n}-retention-full-type`, "count"], [`${n}-retention-full`, c.retentionFull]);
  });
  g.push(
    ["compress-type", c.compressType],
    ["compress-level", c.compressLevel],
    ["process-max", c.processMax],
    ["start-fast", true],
    ["delta", true],
    ["archive-timeout", c.archiveTimeoutSeconds ?? 120],
    ["lock-path", c.lockPath ?? "/tmp/pgbackrest"],
    ["log-level-console", "info"],
    ["log-level-stderr", "off"],
  );
  if (c.logPath) g.push(["log-path", c.logPath], ["log-level-file", "detail"]);
  else g.push(["log-level-file", "off"]);
  if (c.spoolPath)
    g.push(
      ["archive-async", true],
      ["spool-path", c.spoolPath],
      // WAL prefetched for replicas / recovery; bounded so a long catch-up cannot fill the volume.
      ["archive-get-queue-max", "256MiB"],
      // A push backlog beyond this drops WAL from the archive rather than filling pg_wal and
      // stopping the primary; the archive then has a gap that only a new backup heals (alerted).
      ["archive-push-queue-max", "8GiB"],
    );
  if (c.backupStandby) g.push(["backup-standby", true]);
  const s: [string, string | number | boolean][] = [["pg1-path", c.pgPath]];
  if (c.pgPort) s.push(["pg1-port", c.pgPort]);
  if (c.pgSocketPath) s.push(["pg1-socket-path", c.pgSocketPath]);
  if (c.pgUser) s.push(["pg1-user", c.pgUser]);
  const lines = [
    "# Written by components/postgres/backrest.ts. Credentials come from the environment",
    "# (PGBACKREST_REPO<n>_S3_KEY, PGBACKREST_REPO<n>_S3_KEY_SECRET), never from this file.",
    "[global]",
    ...g.map(([k, v]) => value(k, v)),
    "",
    `[${c.stanza}]`,
    ...s.map(([k, v]) => value(k, v)),
    "",
  ];
  return lines.join("\n");
}

export interface ArchiveOptions {
  stanza: string;
  /** Seconds after which a partly filled WAL segment is switched and archived (recovery point). */
  archiveTimeout: number;
  /** Path of pgbackrest.conf when not the default /etc/pgbackrest/pgbackrest.conf. */
  configPath?: string;
}

/**
 * PostgreSQL parameters for continuous archiving (Patroni's bootstrap.dcs.postgresql.parameters
 * and recovery_conf): `archive_mode=on` archives on whichever member is primary only, so archiving
 * follows a failover; replicas and point-in-time restores fetch WAL with `restore_command`.
 */
export function archiveParameters(o: ArchiveOptions): {
  parameters: Record<string, string | number>;
  restoreCommand: string;
} {
  if (!Number.isInteger(o.archiveTimeout) || o.archiveTimeout < 1)
    throw new Error("archiveTimeout must be a whole number of seconds >= 1");
  const cfg = o.configPath ? ` --config=${o.configPath}` : "";
  const base = `pgbackrest${cfg} --stanza=${o.stanza}`;
  const restoreCommand = `${base} archive-get %f "%p"`;
  return {
    parameters: {
      archive_mode: "on",
      archive_command: `${base} archive-push "%p"`,
      archive_timeout: `${o.archiveTimeout}s`,
      restore_command: restoreCommand,
    },
    restoreCommand,
  };
}

/** The environment variable names pgBackRest reads repository n's S3 keys from. */
export function s3KeyEnv(repo: number): { key: string; secret: string } {
  return { key: `PGBACKREST_REPO${repo}_S3_KEY`, secret: `PGBACKREST_REPO${repo}_S3_KEY_SECRET` };
}

/**
 * How many full backups an expire keeps so that (a) every full taken within the last
 * `retentionDays`, plus the newest one before that window (it is the base of the window's oldest
 * restore point), survive and (b) never fewer than `minFull`. `fullStops` are the fulls' stop times
 * (epoch seconds). pg-backrest.sh computes the same with jq; the test compares both.
 */
export function fullBackupsToKeep(
  fullStops: number[],
  now: number,
  retentionDays: number,
  minFull: number,
): number {
  const cutoff = now - retentionDays * 86400;
  const recent = fullStops.filter((t) => t >= cutoff).length;
  const older = fullStops.length - recent;
  return Math.max(minFull, recent + (older > 0 ? 1 : 0));
}
