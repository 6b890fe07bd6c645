/**
 * Custom queries of the postgres_exporter sidecar (pure content): the WAL-archiving state the
 * backup alerts read (components/monitoring/alert-rules.ts, group `backups`).
 *
 * Why a queries file: the pinned exporter (postgres-exporter v0.15.0, `exporterImage`) exports
 * `pg_stat_archiver_archived_count`, `_failed_count` and `_last_archive_age` only (its built-in
 * pg_stat_archiver map drops the timestamps). `last_archive_age` grows on an idle database, where
 * nothing waits to be archived, so it cannot tell a stuck archive from a quiet one. The query below
 * adds what the alerts need. `--extend.query-path` (env PG_EXPORTER_EXTEND_QUERY_PATH) exists in
 * v0.11 (the Debian package the tests run) and v0.15 alike, with the same file format and the same
 * built-in pg_stat_archiver map; v0.15 logs that the flag is deprecated, it still reads the file on
 * every scrape. The `monitoring` role may run it: pg_ls_archive_statusdir() is granted to
 * pg_monitor (pg-roles.sh grants that role).
 */
import { stringify } from "yaml";

/** Namespace (metric name prefix) of the custom query. */
export const WAL_ARCHIVE_NAMESPACE = "pg_wal_archive";

/** The metric names the query produces, as scraped. */
export const WAL_ARCHIVE_METRICS = {
  /** 1 while the newest archive attempt failed (pg_stat_archiver.last_failed_time > last_archived_time). */
  failing: `${WAL_ARCHIVE_NAMESPACE}_failing`,
  /** Completed WAL files (segments, history and backup-label files) waiting for archive_command. */
  pending: `${WAL_ARCHIVE_NAMESPACE}_pending_files`,
  /** Seconds the oldest of them has waited (0 when none waits: an idle database is not behind). */
  lag: `${WAL_ARCHIVE_NAMESPACE}_lag_seconds`,
} as const;

/**
 * One row on every member. PostgreSQL marks a WAL file `<name>.ready` in pg_wal/archive_status when
 * it is complete (filled, or switched by archive_timeout) and renames it `.done` once
 * archive_command succeeded; the `.ready` file's modification time is when it became due. The
 * oldest `.ready` is therefore the oldest WAL not yet in the archive but already complete: its age
 * is a lower bound of the recovery point (the open segment adds at most archive_timeout). A replica
 * marks streamed WAL `.done` right away (archive_mode=on archives on the primary only), so it reads
 * 0 pending; its pg_stat_archiver keeps what it saw as a primary, which is why "failing" alone is
 * not an alert (the rule also asks for new failures).
 */
export const WAL_ARCHIVE_QUERY = `
SELECT
  CASE WHEN a.last_failed_time IS NOT NULL
        AND a.last_failed_time > coalesce(a.last_archived_time, '-infinity'::timestamptz)
       THEN 1 ELSE 0 END AS failing,
  r.pending AS pending_files,
  coalesce(extract(epoch FROM clock_timestamp() - r.oldest), 0)::float8 AS lag_seconds
FROM pg_stat_archiver a
CROSS JOIN (
  SELECT count(*) AS pending, min(modification) AS oldest
  FROM pg_ls_archive_statusdir()
  WHERE name LIKE '%.ready'
) r`.trim();

/** The queries.yaml the exporter reads (`--extend.query-path`). */
export function postgresExporterQueries(): string {
  return stringify(
    {
      [WAL_ARCHIVE_NAMESPACE]: {
        query: WAL_ARCHIVE_QUERY,
        // Against the database of the connection only (once, not per discovered database).
        master: true,
        metrics: [
          {
            failing: {
              usage: "GAUGE",
              description:
                "1 while the newest archive_command attempt failed (last_failed_time after last_archived_time)",
            },
          },
          {
            pending_files: {
              usage: "GAUGE",
              description: "Completed WAL files waiting for archive_command (.ready)",
            },
          },
          {
            lag_seconds: {
              usage: "GAUGE",
              description:
                "Seconds the oldest completed WAL file has waited for archiving; 0 when none waits",
            },
          },
        ],
      },
    },
    { lineWidth: 0 },
  );
}
