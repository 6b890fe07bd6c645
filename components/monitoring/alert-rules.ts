import { stringify } from "yaml";
import { WAL_ARCHIVE_METRICS } from "../postgres/exporter-queries";
import { CELERY_BROKER_DB } from "../redis/content";

/** Alert severities; `critical` also pages (see alertmanager-config.ts). */
export type Severity = "critical" | "warning";

/**
 * Teams that own alerts, after the manual's contacts: devops (系统管理员/网络), backend
 * (开发负责人: API, frontend, Celery) and dba (数据库管理员: PostgreSQL, Redis, backups).
 */
export const TEAMS = ["backend", "dba", "devops"] as const;
export type Team = (typeof TEAMS)[number];

/**
 * Which scrape targets (by their `app` label) each team owns. ServiceDown is generated once per
 * team from this, so a down target pages the team that can fix it. devops owns everything else.
 */
const TEAM_APPS: Readonly<Record<Exclude<Team, "devops">, string>> = {
  backend: "stock-analysis-.*|celery-exporter",
  dba: "postgresql.*|redis.*",
};

/** One alerting rule as typed data; rendered to Prometheus rule YAML by {@link renderAlertRules}. */
export interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  /** Prometheus duration the condition must hold before the alert fires. */
  readonly for: string;
  readonly severity: Severity;
  readonly team: Team;
  readonly summary: string;
  readonly description: string;
  /** Anchor (without `#`) of the section in docs/RUNBOOK.md that says what to do. */
  readonly runbookAnchor: string;
  /** Further static labels (e.g. a fixed `app` for aggregated expressions). */
  readonly labels?: Readonly<Record<string, string>>;
}

export interface AlertGroup {
  readonly name: string;
  readonly rules: readonly AlertRule[];
}

export interface AlertRuleOptions {
  /** Namespace the platform runs in; backup and PVC alerts are scoped to it. */
  readonly namespace: string;
  /** URL of docs/RUNBOOK.md as operators open it (anchors are appended). */
  readonly runbookUrl: string;
  /** Streaming replicas the PostgreSQL primary must have; 0 disables the replica-missing alert. */
  readonly postgresReplicas: number;
  /** Regex (fully anchored by PromQL) matching backup CronJob names. Default `.*backup.*`. */
  readonly backupCronJobPattern?: string;
  /**
   * PostgreSQL continuous archiving and backups (pgBackRest), when enabled: the WAL-archiving and
   * backup-verification alerts. Unset: neither exists (nothing archives, no verify CronJob).
   */
  readonly postgresBackup?: PostgresBackupAlertOptions;
}

export interface PostgresBackupAlertOptions {
  /**
   * `archive_timeout` in seconds (config postgres.backup.archiveTimeout): PostgreSQL switches to a
   * new WAL segment at least this often, so it is the recovery-point goal under light load.
   */
  readonly archiveTimeoutSeconds: number;
  /** Name of the verification CronJob (components/postgres/backup-jobs.ts: `<set>-backup-verify`). */
  readonly verifyCronJob: string;
}

/** App label of the Celery broker's pods (components/redis/redis-broker.ts, `noeviction`). */
const BROKER_APP = "redis-broker";
/** App label of the Redis Cluster cache's pods (components/redis/redis-cluster.ts, `allkeys-lru`). */
const CACHE_APP = "redis";

const GIB = 1024 * 1024 * 1024;
/** Replication lag in WAL bytes that warrants a look (a replica this far behind serves stale reads). */
const REPLICATION_LAG_BYTES = GIB / 8;
/** The manual's API error-rate objective: under 1 % of requests. */
const MAX_ERROR_RATIO = 0.01;
/** Requests/s a service needs before its error ratio means something (5 min: 300 requests). */
const MIN_REQUEST_RATE = 1;
/** Cache lookups/s below which its hit ratio is not judged. */
const MIN_CACHE_LOOKUP_RATE = 1;
/** Hit ratio under which an evicting cache is too small for its working set. */
const MIN_CACHE_HIT_RATIO = 0.5;
/** 26 h: a daily backup plus two hours of slack. */
const BACKUP_MAX_AGE_SECONDS = 26 * 3600;

/**
 * `max by (namespace, cronjob)` of a CronJob series where `<set>-backup-full|diff|incr` count as
 * one CronJob `<set>-backup` (the newest of them).
 */
function sameSet(series: string): string {
  const set = `label_replace(${series}, "set", "$1", "cronjob", "(.+?)(?:-(?:full|diff|incr))?")`;
  return `label_replace(max by (namespace, set) (${set}), "cronjob", "$1", "set", "(.*)")`;
}

export function alertGroups(opts: AlertRuleOptions): AlertGroup[] {
  const ns = opts.namespace;
  const backups = opts.backupCronJobPattern ?? ".*backup.*";
  const verify = opts.postgresBackup?.verifyCronJob;
  // The verify CronJob is named like a backup but has its own alerts (BackupVerification*).
  const cronjobs = `namespace="${ns}", cronjob=~"${backups}"${verify ? `, cronjob!="${verify}"` : ""}`;
  const backupJobs = `namespace="${ns}", job_name=~"${backups}"${verify ? `, job_name!~"${verify}-.*"` : ""}`;
  const allOwned = Object.values(TEAM_APPS).join("|");

  const serviceDown = (team: Team, selector: string): AlertRule => ({
    alert: "ServiceDown",
    expr: `up{${selector}} == 0`,
    for: "1m",
    severity: "critical",
    team,
    summary: "Scrape target {{ $labels.app }} is down",
    description:
      "Prometheus cannot scrape {{ $labels.job }} target {{ $labels.instance }} " +
      "(pod {{ $labels.pod }}) for more than 1 minute.",
    runbookAnchor: "servicedown",
  });

  const groups: AlertGroup[] = [
    {
      // The manual's five rules: names, thresholds and `for` kept; expressions aggregated per service
      // so one incident is one alert, not one per pod/handler.
      name: "stock-analysis-alerts",
      rules: [
        {
          alert: "HighErrorRate",
          // The manual's SLO (API error rate < 1 %) as a ratio per service; below the minimum
          // request rate a handful of errors is not a rate (the denominator is dropped there).
          expr:
            `sum by (namespace, app) (rate(http_requests_total{status=~"5.."}[5m])) / ` +
            `(sum by (namespace, app) (rate(http_requests_total[5m])) >= ${MIN_REQUEST_RATE}) > ${MAX_ERROR_RATIO}`,
          for: "5m",
          severity: "critical",
          team: "backend",
          summary: "High error rate detected",
          description:
            "{{ $value | humanizePercentage }} of the requests to {{ $labels.app }} failed with 5xx over the last 5 minutes",
          runbookAnchor: "higherrorrate",
        },
        {
          alert: "HighResponseTime",
          expr:
            "histogram_quantile(0.95, sum by (namespace, app, le) " +
            "(rate(http_request_duration_seconds_bucket[5m]))) > 2",
          for: "5m",
          severity: "warning",
          team: "backend",
          summary: "High response time detected",
          description: "95th percentile response time of {{ $labels.app }} is {{ $value }}s",
          runbookAnchor: "highresponsetime",
        },
        {
          alert: "DatabaseConnectionHigh",
          expr: "sum by (namespace, app, server) (pg_stat_activity_count) > 80",
          for: "2m",
          severity: "warning",
          team: "dba",
          summary: "High database connections",
          description: "Database {{ $labels.server }} has {{ $value }} connections",
          runbookAnchor: "databaseconnectionhigh",
        },
        {
          alert: "RedisMemoryHigh",
          // The broker only: it runs `noeviction`, so a full broker refuses new tasks. The LRU
          // cache sits at maxmemory by design (RedisCacheEvictionPressure watches it instead).
          // Without maxmemory (0) the ratio is +Inf; such instances are excluded.
          expr:
            `redis_memory_used_bytes{app="${BROKER_APP}"} / ` +
            `(redis_memory_max_bytes{app="${BROKER_APP}"} > 0) > 0.9`,
          for: "5m",
          severity: "critical",
          team: "dba",
          summary: "Redis broker memory usage high",
          description:
            "Broker {{ $labels.pod }} memory usage is {{ $value | humanizePercentage }}; at 100 % it refuses new Celery tasks",
          runbookAnchor: "redismemoryhigh",
        },
        {
          alert: "CeleryQueueHigh",
          expr: "celery_queue_length > 1000",
          for: "5m",
          severity: "warning",
          team: "backend",
          summary: "Celery queue length high",
          description: "Celery queue {{ $labels.queue_name }} has {{ $value }} pending tasks",
          runbookAnchor: "celeryqueuehigh",
        },
      ],
    },
    {
      name: "service-availability",
      rules: [
        serviceDown("backend", `app=~"${TEAM_APPS.backend}"`),
        serviceDown("dba", `app=~"${TEAM_APPS.dba}"`),
        serviceDown("devops", `app!~"${allOwned}"`),
        {
          alert: "PostgreSQLDown",
          expr: "pg_up == 0",
          for: "1m",
          severity: "critical",
          team: "dba",
          summary: "PostgreSQL {{ $labels.pod }} is down",
          description:
            "postgres_exporter in {{ $labels.pod }} cannot reach PostgreSQL for 1 minute.",
          runbookAnchor: "postgresqldown",
        },
        {
          alert: "RedisDown",
          expr: "redis_up == 0",
          for: "1m",
          severity: "critical",
          team: "dba",
          summary: "Redis {{ $labels.pod }} is down",
          description: "redis_exporter in {{ $labels.pod }} cannot reach Redis for 1 minute.",
          runbookAnchor: "redisdown",
        },
      ],
    },
    {
      name: "nodes",
      rules: [
        {
          alert: "HighCPUUsage",
          expr: '100 - (avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m])) * 100) > 80',
          for: "10m",
          severity: "warning",
          team: "devops",
          summary: "High CPU usage on {{ $labels.instance }}",
          description: 'Node {{ $labels.instance }} CPU usage is {{ $value | printf "%.0f" }}%',
          runbookAnchor: "highcpuusage",
        },
        {
          alert: "HighMemoryUsage",
          expr: "(1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes) * 100 > 85",
          for: "5m",
          severity: "warning",
          team: "devops",
          summary: "High memory usage on {{ $labels.instance }}",
          description: 'Node {{ $labels.instance }} memory usage is {{ $value | printf "%.0f" }}%',
          runbookAnchor: "highmemoryusage",
        },
        nodeDiskSpaceLow("warning", 0.15, "10m"),
        nodeDiskSpaceLow("critical", 0.05, "5m"),
      ],
    },
    {
      name: "datastores",
      rules: [
        {
          alert: "PostgreSQLReplicationLag",
          expr:
            "max by (namespace, app, application_name) (pg_stat_replication_pg_wal_lsn_diff) > " +
            String(REPLICATION_LAG_BYTES),
          for: "5m",
          severity: "warning",
          team: "dba",
          summary: "Replica {{ $labels.application_name }} lags behind the primary",
          description:
            "Replica {{ $labels.application_name }} is {{ $value | humanize1024 }}B of WAL behind.",
          runbookAnchor: "postgresqlreplicationlag",
        },
        ...(opts.postgresReplicas > 0
          ? [
              {
                alert: "PostgreSQLReplicaMissing",
                // `or vector(0)` so that losing every replica (no rows at all) still fires.
                expr:
                  '(count(pg_stat_replication_pg_wal_lsn_diff{state="streaming"}) or vector(0)) < ' +
                  String(opts.postgresReplicas),
                for: "5m",
                severity: "critical" as const,
                team: "dba" as const,
                summary: "PostgreSQL has fewer streaming replicas than configured",
                description: `Only {{ $value }} of ${opts.postgresReplicas} replicas are streaming from the primary.`,
                runbookAnchor: "postgresqlreplicamissing",
                labels: { namespace: ns, app: "postgresql" },
              },
            ]
          : []),
        {
          alert: "RedisClusterNotOk",
          expr: "redis_cluster_state == 0",
          for: "2m",
          severity: "critical",
          team: "dba",
          summary: "Redis cluster state is not ok",
          description:
            "{{ $labels.pod }} reports cluster_state:fail; some hash slots are not served.",
          runbookAnchor: "redisclusternotok",
        },
        {
          alert: "RedisCacheEvictionPressure",
          // The cache evicts (it is full) and most lookups miss: it is too small for its working
          // set. Needs some traffic, so an idle cache with a cold keyspace stays silent.
          expr:
            `(sum by (namespace, app) (rate(redis_keyspace_hits_total{app="${CACHE_APP}"}[5m])) / ` +
            `(sum by (namespace, app) (rate(redis_keyspace_hits_total{app="${CACHE_APP}"}[5m]) + ` +
            `rate(redis_keyspace_misses_total{app="${CACHE_APP}"}[5m])) >= ${MIN_CACHE_LOOKUP_RATE}) ` +
            `and on (namespace, app) sum by (namespace, app) (rate(redis_evicted_keys_total{app="${CACHE_APP}"}[5m])) > 0) ` +
            `< ${MIN_CACHE_HIT_RATIO}`,
          for: "15m",
          severity: "warning",
          team: "dba",
          summary: "Redis cache evicts keys and misses most lookups",
          description:
            "The cache {{ $labels.app }} hits only {{ $value | humanizePercentage }} of lookups while evicting keys: its maxmemory is too small for the working set.",
          runbookAnchor: "rediscacheevictionpressure",
        },
      ],
    },
    {
      name: "kubernetes",
      rules: [
        {
          alert: "PodCrashLooping",
          expr:
            `max_over_time(kube_pod_container_status_waiting_reason{namespace="${ns}", ` +
            'reason="CrashLoopBackOff"}[5m]) >= 1',
          for: "15m",
          severity: "warning",
          team: "devops",
          summary: "Pod {{ $labels.pod }} is crash looping",
          description:
            "Container {{ $labels.container }} of {{ $labels.pod }} is in CrashLoopBackOff.",
          runbookAnchor: "podcrashlooping",
        },
        pvcFillingUp(ns, "warning", 0.15, "10m"),
        pvcFillingUp(ns, "critical", 0.05, "5m"),
      ],
    },
    {
      name: "backups",
      rules: [
        {
          alert: "BackupJobFailed",
          expr: `max by (namespace, job_name) (kube_job_status_failed{${backupJobs}}) > 0`,
          for: "1m",
          severity: "critical",
          team: "dba",
          summary: "Backup job {{ $labels.job_name }} failed",
          description:
            "Job {{ $labels.job_name }} has failed pods; the last backup did not complete.",
          runbookAnchor: "backupjobfailed",
        },
        {
          alert: "BackupTooOld",
          // Age of the last success; a CronJob that never succeeded counts from its creation.
          // The full and differential CronJobs of one data set (<set>-backup-full / -diff /
          // -incr) count as one: the weekly full alone is always older than 26 h.
          expr:
            `time() - (max by (namespace, cronjob) (${sameSet(`kube_cronjob_status_last_successful_time{${cronjobs}}`)}) ` +
            `or max by (namespace, cronjob) (${sameSet(`kube_cronjob_created{${cronjobs}}`)})) > ${BACKUP_MAX_AGE_SECONDS}`,
          for: "10m",
          severity: "critical",
          team: "dba",
          summary: "No successful backup from {{ $labels.cronjob }} in 26 hours",
          description:
            "CronJob {{ $labels.cronjob }} has not succeeded for {{ $value | humanizeDuration }}.",
          runbookAnchor: "backuptooold",
        },
        {
          alert: "MaintenanceJobFailed",
          // A Job of one of our CronJobs other than the backups (VACUUM/ANALYZE, restore drills,
          // runs created with `kubectl create job --from=cronjob/...`) that failed for good: its
          // Failed condition is set only once the retries are exhausted.
          expr:
            `(max by (namespace, job_name) (kube_job_failed{namespace="${ns}", condition="true"}) ` +
            `* on (namespace, job_name) group_left (owner_name) max by (namespace, job_name, owner_name) ` +
            `(kube_job_owner{namespace="${ns}", owner_kind="CronJob", owner_name!~"${backups}"})) > 0`,
          for: "1m",
          severity: "warning",
          team: "dba",
          summary: "Maintenance job {{ $labels.job_name }} failed",
          description:
            "Job {{ $labels.job_name }} of CronJob {{ $labels.owner_name }} failed after its retries.",
          runbookAnchor: "maintenancejobfailed",
        },
        ...(opts.postgresBackup ? postgresBackupAlerts(ns, opts.postgresBackup) : []),
      ],
    },
    {
      name: "tls",
      rules: [tlsExpiring("warning", 14, "1h"), tlsExpiring("critical", 3, "10m")],
    },
  ];
  return groups;
}

/**
 * WAL archiving (the postgres_exporter sidecars' custom query, components/postgres/exporter-queries.ts)
 * and the verification CronJob (kube-state-metrics).
 */
function postgresBackupAlerts(ns: string, o: PostgresBackupAlertOptions): AlertRule[] {
  const by = "namespace, app, pod";
  const pg = `namespace="${ns}"`;
  const verify = `namespace="${ns}", cronjob="${o.verifyCronJob}"`;
  const newest = (m: string) => `max by (namespace, cronjob) (${m}{${verify}})`;
  return [
    {
      alert: "PostgreSQLWALArchivingFailing",
      // The newest archive_command attempt failed and attempts keep failing. New failures are
      // required because a replica keeps the pg_stat_archiver it had as a primary: an old primary
      // that failed before a failover would otherwise alert forever.
      expr:
        `(max by (${by}) (${WAL_ARCHIVE_METRICS.failing}{${pg}}) and on (${by}) ` +
        `max by (${by}) (increase(pg_stat_archiver_failed_count{${pg}}[10m])) > 0) > 0`,
      for: "5m",
      severity: "critical",
      team: "dba",
      summary: "WAL archiving fails on {{ $labels.pod }}",
      description:
        "archive_command has been failing on {{ $labels.pod }} for 5 minutes: no new WAL reaches the object store (the recovery point grows) and pg_wal fills up until the primary stops.",
      runbookAnchor: "postgresqlwalarchivingfailing",
    },
    {
      alert: "PostgreSQLWALArchiveLag",
      // Age of the oldest complete WAL file not yet archived. The recovery point is at least that
      // old (plus up to archive_timeout of WAL in the open segment), so beyond archive_timeout the
      // goal is missed for sure. An idle database has no complete unarchived WAL: 0, silent.
      expr: `max by (${by}) (${WAL_ARCHIVE_METRICS.lag}{${pg}}) > ${o.archiveTimeoutSeconds}`,
      for: "1m",
      severity: "warning",
      team: "dba",
      summary: "WAL archiving on {{ $labels.pod }} is behind the recovery-point goal",
      description: `The oldest complete WAL file on {{ $labels.pod }} has waited {{ $value | humanizeDuration }} for the archive (goal: archive_timeout ${o.archiveTimeoutSeconds}s); a restore now would lose at least that much.`,
      runbookAnchor: "postgresqlwalarchivelag",
    },
    {
      alert: "BackupVerificationFailed",
      // The verify pod's exit status is the verdict (pg-backrest-verify.sh exits non-zero on any
      // failed check) and kube-state-metrics, which we run and scrape anyway, exports it as the
      // CronJob's last schedule and last success: scheduled after its last success and no longer
      // running means the newest run failed. No Pushgateway, and the verify pod writes nothing to
      // the database it checks; its figures (backup age, row counts) stay in the Job's log (Loki).
      // Value: seconds between the newest success (or creation) and the failed run.
      expr:
        `(${newest("kube_cronjob_status_last_schedule_time")} - on (namespace, cronjob) ` +
        `(${newest("kube_cronjob_status_last_successful_time")} or ${newest("kube_cronjob_created")}) ` +
        `unless on (namespace, cronjob) ${newest("kube_cronjob_status_active")} > 0) > 0`,
      for: "1m",
      severity: "critical",
      team: "dba",
      summary: "Backup verification {{ $labels.cronjob }} failed",
      description:
        "The newest run of {{ $labels.cronjob }} failed: the newest backup could not be restored or failed its checks. Its log says which.",
      runbookAnchor: "backupverificationfailed",
    },
    {
      alert: "BackupVerificationMissing",
      // A daily verification plus two hours; counts from the CronJob's creation until it succeeds.
      expr:
        `time() - (${newest("kube_cronjob_status_last_successful_time")} ` +
        `or ${newest("kube_cronjob_created")}) > ${BACKUP_MAX_AGE_SECONDS}`,
      for: "10m",
      severity: "warning",
      team: "dba",
      summary: "No successful backup verification in 26 hours",
      description:
        "{{ $labels.cronjob }} has not succeeded for {{ $value | humanizeDuration }}: nobody knows whether the newest backup restores.",
      runbookAnchor: "backupverificationmissing",
    },
  ];
}

function pvcFillingUp(
  namespace: string,
  severity: Severity,
  freeRatio: number,
  forDur: string,
): AlertRule {
  return {
    alert: "PVCFillingUp",
    expr:
      `kubelet_volume_stats_available_bytes{namespace="${namespace}"} / ` +
      `kubelet_volume_stats_capacity_bytes{namespace="${namespace}"} < ${freeRatio}`,
    for: forDur,
    severity,
    team: "devops",
    summary: "Volume {{ $labels.persistentvolumeclaim }} is filling up",
    description:
      "PVC {{ $labels.persistentvolumeclaim }} has only {{ $value | humanizePercentage }} free.",
    runbookAnchor: "pvcfillingup",
  };
}

/** Filesystems that are not node disks (memory-backed, images, per-container layers). */
const NODE_FS = 'fstype!~"tmpfs|ramfs|overlay|squashfs|nsfs|fuse.*"';

function nodeDiskSpaceLow(severity: Severity, freeRatio: number, forDur: string): AlertRule {
  return {
    alert: "NodeDiskSpaceLow",
    // Read-only filesystems (images, ISO mounts) are always full and never grow.
    expr:
      `(node_filesystem_avail_bytes{${NODE_FS}} / node_filesystem_size_bytes{${NODE_FS}} ` +
      `unless on (instance, device, mountpoint) node_filesystem_readonly == 1) < ${freeRatio}`,
    for: forDur,
    severity,
    team: "devops",
    summary: "Node {{ $labels.instance }} is running out of disk space",
    description:
      "Filesystem {{ $labels.mountpoint }} ({{ $labels.device }}) on {{ $labels.instance }} has only {{ $value | humanizePercentage }} free.",
    runbookAnchor: "nodediskspacelow",
  };
}

function tlsExpiring(severity: Severity, days: number, forDur: string): AlertRule {
  return {
    alert: "TLSCertificateExpiring",
    expr: `(nginx_ingress_controller_ssl_expire_time_seconds - time()) / 86400 < ${days}`,
    for: forDur,
    severity,
    team: "devops",
    summary: "TLS certificate for {{ $labels.host }} expires soon",
    description:
      'The certificate served for {{ $labels.host }} expires in {{ $value | printf "%.1f" }} days.',
    runbookAnchor: "tlscertificateexpiring",
  };
}

/** One recording rule: `record` is the series name `expr` produces. */
export interface RecordingRule {
  readonly record: string;
  readonly expr: string;
}

/**
 * Recording rules the alerts and dashboards read. `celery_queue_length{queue_name}` comes from the
 * broker pods' redis_exporter sidecars (`redis_key_size` of each queue's list in the broker db): every stack
 * has them, whatever broker mode, and they need no broker URL. Primary and replicas hold the same
 * list, so the max over pods is the length (a lagging replica can only under-report).
 * A recording group named like an alert group is evaluated first inside it: groups run
 * independently, rules within a group in order, so an alert never reads a one-interval-old value.
 */
export const RECORDING_GROUPS: readonly { name: string; rules: readonly RecordingRule[] }[] = [
  {
    name: "stock-analysis-alerts",
    rules: [
      {
        record: "celery_queue_length",
        expr:
          "max by (namespace, queue_name) (label_replace(" +
          `redis_key_size{app="${BROKER_APP}", db="db${CELERY_BROKER_DB}"}, "queue_name", "$1", "key", "(.+)"))`,
      },
    ],
  },
];

/** The Prometheus rule file (YAML): the recording rules, then the given alert groups. */
export function renderAlertRules(groups: readonly AlertGroup[], runbookUrl: string): string {
  return stringify(
    {
      groups: [
        ...RECORDING_GROUPS.filter((rg) => !groups.some((g) => g.name === rg.name)).map((g) => ({
          name: g.name,
          rules: g.rules.map((r) => ({ ...r })),
        })),
        ...groups.map((g) => ({
          name: g.name,
          rules: [
            ...(RECORDING_GROUPS.find((rg) => rg.name === g.name)?.rules ?? []).map((r) => ({
              ...r,
            })),
            ...g.rules.map((r) => ({
              alert: r.alert,
              expr: r.expr,
              for: r.for,
              labels: { severity: r.severity, team: r.team, ...r.labels },
              annotations: {
                summary: r.summary,
                description: r.description,
                runbook_url: `${runbookUrl}#${r.runbookAnchor}`,
              },
            })),
          ],
        })),
      ],
    },
    { lineWidth: 0 },
  );
}
