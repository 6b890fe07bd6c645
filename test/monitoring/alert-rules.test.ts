/**
 * Alert rules against the real `promtool`: syntax (`check rules`) and behaviour (`test rules`).
 *
 * CONTRACT below is the specification (the manual's and siblings' names, thresholds, `for` and
 * labels, plus ours). For every entry a `promtool test rules` case is generated: input series are
 * produced by a per-metric fixture for a value just past the threshold (must fire exactly when `for`
 * has elapsed, not a minute earlier) and for a value on the safe side (must stay silent). Mutating
 * a threshold, `for`, severity or team in the rendered rules must make those cases fail, which is
 * checked too, so the cases cannot pass vacuously.
 */
import assert from "node:assert/strict";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parse, stringify } from "yaml";
import {
  alertGroups,
  RECORDING_GROUPS,
  renderAlertRules,
} from "../../components/monitoring/alert-rules";
import { knownMetricNames } from "../../components/monitoring/catalogue";
import { metricNames } from "../helpers/monitoring-promql";
import { run, tempDir, tool } from "../helpers/monitoring-daemons";
import { RULE_OPTIONS, writeRules } from "../helpers/monitoring-fixtures";

type Op = ">" | "<" | ">=" | "==";
interface Contract {
  alert: string;
  severity: "critical" | "warning";
  team: "backend" | "dba" | "devops";
  forMin: number;
  threshold: number;
  op: Op;
  /** Integer-valued metric: step by 1 instead of ±5 %. */
  integer?: boolean;
}

const NS = RULE_OPTIONS.namespace;
const CONTRACT: Contract[] = [
  // The manual (000): names, thresholds, `for`, severity.
  // The manual's API error-rate objective (< 1 %), as a ratio of 5xx to all requests.
  {
    alert: "HighErrorRate",
    severity: "critical",
    team: "backend",
    forMin: 5,
    threshold: 0.01,
    op: ">",
  },
  {
    alert: "HighResponseTime",
    severity: "warning",
    team: "backend",
    forMin: 5,
    threshold: 2,
    op: ">",
  },
  {
    alert: "DatabaseConnectionHigh",
    severity: "warning",
    team: "dba",
    forMin: 2,
    threshold: 80,
    op: ">",
    integer: true,
  },
  {
    alert: "RedisMemoryHigh",
    severity: "critical",
    team: "dba",
    forMin: 5,
    threshold: 0.9,
    op: ">",
  },
  {
    alert: "CeleryQueueHigh",
    severity: "warning",
    team: "backend",
    forMin: 5,
    threshold: 1000,
    op: ">",
    integer: true,
  },
  // Siblings (003/004).
  {
    alert: "ServiceDown",
    severity: "critical",
    team: "backend",
    forMin: 1,
    threshold: 0,
    op: "==",
  },
  { alert: "ServiceDown", severity: "critical", team: "dba", forMin: 1, threshold: 0, op: "==" },
  { alert: "ServiceDown", severity: "critical", team: "devops", forMin: 1, threshold: 0, op: "==" },
  { alert: "PostgreSQLDown", severity: "critical", team: "dba", forMin: 1, threshold: 0, op: "==" },
  { alert: "RedisDown", severity: "critical", team: "dba", forMin: 1, threshold: 0, op: "==" },
  {
    alert: "HighCPUUsage",
    severity: "warning",
    team: "devops",
    forMin: 10,
    threshold: 80,
    op: ">",
  },
  {
    alert: "HighMemoryUsage",
    severity: "warning",
    team: "devops",
    forMin: 5,
    threshold: 85,
    op: ">",
  },
  // Platform needs.
  {
    alert: "PostgreSQLReplicationLag",
    severity: "warning",
    team: "dba",
    forMin: 5,
    threshold: 134217728,
    op: ">",
    integer: true,
  },
  {
    alert: "PostgreSQLReplicaMissing",
    severity: "critical",
    team: "dba",
    forMin: 5,
    threshold: RULE_OPTIONS.postgresReplicas,
    op: "<",
    integer: true,
  },
  {
    alert: "RedisClusterNotOk",
    severity: "critical",
    team: "dba",
    forMin: 2,
    threshold: 0,
    op: "==",
  },
  {
    alert: "PodCrashLooping",
    severity: "warning",
    team: "devops",
    forMin: 15,
    threshold: 1,
    op: ">=",
    integer: true,
  },
  {
    alert: "PVCFillingUp",
    severity: "warning",
    team: "devops",
    forMin: 10,
    threshold: 0.15,
    op: "<",
  },
  {
    alert: "PVCFillingUp",
    severity: "critical",
    team: "devops",
    forMin: 5,
    threshold: 0.05,
    op: "<",
  },
  {
    alert: "BackupJobFailed",
    severity: "critical",
    team: "dba",
    forMin: 1,
    threshold: 0,
    op: ">",
    integer: true,
  },
  {
    alert: "BackupTooOld",
    severity: "critical",
    team: "dba",
    forMin: 10,
    threshold: 26 * 3600,
    op: ">",
  },
  {
    alert: "PostgreSQLWALArchivingFailing",
    severity: "critical",
    team: "dba",
    forMin: 5,
    threshold: 0,
    op: ">",
    integer: true,
  },
  {
    // The recovery-point goal: archive_timeout from config.
    alert: "PostgreSQLWALArchiveLag",
    severity: "warning",
    team: "dba",
    forMin: 1,
    threshold: RULE_OPTIONS.postgresBackup!.archiveTimeoutSeconds,
    op: ">",
  },
  {
    alert: "BackupVerificationFailed",
    severity: "critical",
    team: "dba",
    forMin: 1,
    threshold: 0,
    op: ">",
    integer: true,
  },
  {
    alert: "BackupVerificationMissing",
    severity: "warning",
    team: "dba",
    forMin: 10,
    threshold: 26 * 3600,
    op: ">",
  },
  {
    alert: "RedisCacheEvictionPressure",
    severity: "warning",
    team: "dba",
    forMin: 15,
    threshold: 0.5,
    op: "<",
  },
  {
    alert: "MaintenanceJobFailed",
    severity: "warning",
    team: "dba",
    forMin: 1,
    threshold: 0,
    op: ">",
    integer: true,
  },
  {
    alert: "NodeDiskSpaceLow",
    severity: "warning",
    team: "devops",
    forMin: 10,
    threshold: 0.15,
    op: "<",
  },
  {
    alert: "NodeDiskSpaceLow",
    severity: "critical",
    team: "devops",
    forMin: 5,
    threshold: 0.05,
    op: "<",
  },
  {
    alert: "TLSCertificateExpiring",
    severity: "warning",
    team: "devops",
    forMin: 60,
    threshold: 14,
    op: "<",
  },
  {
    alert: "TLSCertificateExpiring",
    severity: "critical",
    team: "devops",
    forMin: 10,
    threshold: 3,
    op: "<",
  },
];

const holds = (c: Contract, v: number) =>
  c.op === ">"
    ? v > c.threshold
    : c.op === "<"
      ? v < c.threshold
      : c.op === ">="
        ? v >= c.threshold
        : v === c.threshold;

/** A value that must trip the rule, and one on the safe side of the threshold. */
function probeValues(c: Contract): { fire: number; quiet: number } {
  const t = c.threshold;
  switch (c.op) {
    case ">":
      return c.integer ? { fire: t + 1, quiet: t } : { fire: t * 1.05, quiet: t * 0.95 };
    case "<":
      return c.integer ? { fire: t - 1, quiet: t } : { fire: t * 0.95, quiet: t * 1.05 };
    case ">=":
      return { fire: t, quiet: t - 1 };
    case "==":
      return { fire: t, quiet: t + 1 };
  }
}

interface Series {
  series: string;
  values: string;
}
interface Fixture {
  /** Input series (1-minute samples, `n` of them) that make the rule's left-hand side equal `v`. */
  series(v: number, n: number): Series[];
  /** Labels the resulting alert carries besides alertname/severity/team. */
  labels: Record<string, string>;
  /** Minutes until the expression has a (full) value, e.g. rate() needs its window. */
  warmupMin: number;
}

const sel = (name: string, labels: Record<string, string>) =>
  `${name}{${Object.entries(labels)
    .map(([k, val]) => `${k}="${val}"`)
    .join(",")}}`;
const constant = (v: number, n: number) => `${v}+0x${n}`;
const counter = (perMin: number, n: number) => `0+${perMin}x${n}`;

const apiPod = { namespace: NS, app: "stock-analysis-api", job: "stock-analysis-api" };
const pgPod = {
  namespace: NS,
  app: "postgresql",
  pod: "postgresql-0",
  instance: "10.1.0.7:9187",
  job: "postgres-exporter",
};
const pgReplicaPod = { ...pgPod, pod: "postgresql-1", instance: "10.1.0.8:9187" };
const redisPod = {
  namespace: NS,
  app: "redis",
  pod: "redis-0",
  instance: "10.1.0.9:9121",
  job: "redis-exporter",
};
const node = { instance: "node-1", job: "node-exporter" };
const brokerPod = {
  namespace: NS,
  app: "redis-broker",
  pod: "redis-broker-0",
  instance: "10.1.0.11:9121",
  job: "redis-exporter",
};
const rootFs = { ...node, device: "/dev/sda1", mountpoint: "/", fstype: "ext4" };

/** A service with 5 requests/s and no errors: its ratio is 0 whatever the API's. */
const errorFreeService = (n: number): Series[] => [
  {
    series: sel("http_requests_total", {
      namespace: NS,
      app: "stock-analysis-web",
      job: "stock-analysis-web",
      pod: "web-1",
      handler: "/",
      method: "GET",
      status: "2xx",
    }),
    values: counter(300, n),
  },
];

/**
 * Keyspace counters of cache pods with hit ratio `ratio` at `lookups`/s in all and `evictedPerMin`
 * evictions per pod; plus a broker pod missing every lookup, which is not the cache.
 */
function cacheSeries(
  pods: string[],
  ratio: number,
  lookups: number,
  evictedPerMin: number,
  n: number,
): Series[] {
  const per = (lookups * 60) / pods.length;
  const out: Series[] = pods.flatMap((pod) => {
    const labels = { ...redisPod, pod };
    return [
      { series: sel("redis_keyspace_hits_total", labels), values: counter(per * ratio, n) },
      { series: sel("redis_keyspace_misses_total", labels), values: counter(per * (1 - ratio), n) },
      { series: sel("redis_evicted_keys_total", labels), values: counter(evictedPerMin, n) },
    ];
  });
  out.push(
    { series: sel("redis_keyspace_hits_total", brokerPod), values: counter(0, n) },
    { series: sel("redis_keyspace_misses_total", brokerPod), values: counter(600, n) },
    { series: sel("redis_evicted_keys_total", brokerPod), values: counter(60, n) },
  );
  return out;
}

/** kube-state-metrics series of a Job: Failed condition `failed`, owned by `cronjob` if given. */
function jobSeries(
  jobName: string,
  cronjob: string | undefined,
  failed: number,
  n: number,
): Series[] {
  const job = { namespace: NS, job_name: jobName, job: "kube-state-metrics" };
  return [
    { series: sel("kube_job_failed", { ...job, condition: "true" }), values: constant(failed, n) },
    {
      series: sel("kube_job_failed", { ...job, condition: "false" }),
      values: constant(1 - failed, n),
    },
    {
      series: sel("kube_job_owner", {
        ...job,
        owner_kind: cronjob ? "CronJob" : "<none>",
        owner_name: cronjob ?? "<none>",
        owner_is_controller: cronjob ? "true" : "<none>",
      }),
      values: constant(1, n),
    },
  ];
}

/**
 * kube-state-metrics series of the verify CronJob; times are seconds relative to the test's start
 * (promtool's time() is 0 there), constant over the `n` samples.
 */
function verifyCronJob(
  t: { created: number; success?: number; schedule?: number; active?: number },
  n: number,
): Series[] {
  const cj = { namespace: NS, cronjob: "postgresql-backup-verify", job: "kube-state-metrics" };
  const out: Series[] = [
    { series: sel("kube_cronjob_created", cj), values: constant(t.created, n) },
  ];
  if (t.success !== undefined)
    out.push({
      series: sel("kube_cronjob_status_last_successful_time", cj),
      values: constant(t.success, n),
    });
  if (t.schedule !== undefined)
    out.push({
      series: sel("kube_cronjob_status_last_schedule_time", cj),
      values: constant(t.schedule, n),
    });
  out.push({ series: sel("kube_cronjob_status_active", cj), values: constant(t.active ?? 0, n) });
  return out;
}

/** node_exporter's filesystem series with `free` of 100 GB available. */
function filesystem(
  labels: Record<string, string>,
  free: number,
  n: number,
  readonly = 0,
): Series[] {
  return [
    { series: sel("node_filesystem_avail_bytes", labels), values: constant(free * 1e11, n) },
    { series: sel("node_filesystem_size_bytes", labels), values: constant(1e11, n) },
    { series: sel("node_filesystem_readonly", labels), values: constant(readonly, n) },
  ];
}

const upFixture = (labels: Record<string, string>): Fixture => ({
  series: (v, n) => [{ series: sel("up", labels), values: constant(v, n) }],
  labels,
  warmupMin: 0,
});

const FIXTURES: Record<string, Fixture> = {
  HighErrorRate: {
    // 10 requests/s per service; the 5xx share `v` split over two pods (the rule sums per
    // service). The web service's errors are its own ratio and must not count for the API.
    series: (v, n) => [
      ...["api-1", "api-2"].map((pod) => ({
        series: sel("http_requests_total", {
          ...apiPod,
          pod,
          handler: "/api/v1/stocks",
          method: "GET",
          status: "5xx",
        }),
        values: counter((v * 600) / 2, n),
      })),
      {
        series: sel("http_requests_total", {
          ...apiPod,
          pod: "api-1",
          handler: "/api/v1/stocks",
          method: "GET",
          status: "2xx",
        }),
        values: counter((1 - v) * 600, n),
      },
      ...errorFreeService(n),
    ],
    labels: { namespace: NS, app: "stock-analysis-api" },
    // A ratio of two rates is exact as soon as rate() has two samples.
    warmupMin: 1,
  },
  HighResponseTime: {
    // All observations in the first bucket (0, v/0.95]: the interpolated p95 is exactly v.
    series: (v, n) =>
      [String(v / 0.95), "+Inf"].map((le) => ({
        series: sel("http_request_duration_seconds_bucket", {
          ...apiPod,
          pod: "api-1",
          handler: "/api/v1/stocks",
          le,
        }),
        values: counter(100, n),
      })),
    labels: { namespace: NS, app: "stock-analysis-api" },
    warmupMin: 1,
  },
  DatabaseConnectionHigh: {
    series: (v, n) => [
      {
        series: sel("pg_stat_activity_count", {
          ...pgPod,
          server: "postgresql-0:5432",
          datname: "stock_analysis",
          state: "active",
        }),
        values: constant(v - 10, n),
      },
      {
        series: sel("pg_stat_activity_count", {
          ...pgPod,
          server: "postgresql-0:5432",
          datname: "stock_analysis",
          state: "idle",
        }),
        values: constant(10, n),
      },
    ],
    labels: { namespace: NS, app: "postgresql", server: "postgresql-0:5432" },
    warmupMin: 0,
  },
  RedisMemoryHigh: {
    // The broker; the LRU cache at 100 % of maxmemory (by design) must not count.
    series: (v, n) => [
      { series: sel("redis_memory_used_bytes", brokerPod), values: constant(v * 1e9, n) },
      { series: sel("redis_memory_max_bytes", brokerPod), values: constant(1e9, n) },
      { series: sel("redis_memory_used_bytes", redisPod), values: constant(1e9, n) },
      { series: sel("redis_memory_max_bytes", redisPod), values: constant(1e9, n) },
    ],
    labels: brokerPod,
    warmupMin: 0,
  },
  RedisCacheEvictionPressure: {
    // Two cache pods, 10 lookups/s in all, hit ratio `v`, both evicting; a broker with a poor
    // hit ratio is not the cache.
    series: (v, n) => cacheSeries(["redis-0", "redis-1"], v, 10, 60, n),
    labels: { namespace: NS, app: "redis" },
    warmupMin: 1,
  },
  // Driven through the recording rule: key sizes of the broker pods (the max counts; a lagging
  // replica reports less) and a bigger same-named key on a cache pod that must be ignored.
  CeleryQueueHigh: {
    series: (v, n) => [
      ...[0, 1].map((i) => ({
        series: sel("redis_key_size", {
          namespace: NS,
          app: "redis-broker",
          pod: `redis-broker-${i}`,
          db: "db0",
          key: "celery",
        }),
        values: constant(i === 0 ? v : Math.max(0, v - 200), n),
      })),
      {
        series: sel("redis_key_size", {
          namespace: NS,
          app: "redis",
          pod: "redis-0",
          db: "db0",
          key: "celery",
        }),
        values: constant(5000, n),
      },
    ],
    labels: { namespace: NS, queue_name: "celery" },
    warmupMin: 0,
  },
  "ServiceDown/backend": upFixture({ ...apiPod, pod: "api-1", instance: "10.1.0.3:8000" }),
  "ServiceDown/dba": upFixture(pgPod),
  "ServiceDown/devops": upFixture({
    namespace: NS,
    app: "node-exporter",
    pod: "node-exporter-x1",
    instance: "node-1",
    job: "node-exporter",
  }),
  PostgreSQLDown: {
    series: (v, n) => [{ series: sel("pg_up", pgPod), values: constant(v, n) }],
    labels: pgPod,
    warmupMin: 0,
  },
  RedisDown: {
    series: (v, n) => [{ series: sel("redis_up", redisPod), values: constant(v, n) }],
    labels: redisPod,
    warmupMin: 0,
  },
  HighCPUUsage: {
    // Two CPUs idle (100 - v)% of the time; non-idle modes must not count. Before the 5m window
    // is full rate() under-reads idle time, so the expression is already true from minute 1.
    series: (v, n) => [
      ...["0", "1"].map((cpu) => ({
        series: sel("node_cpu_seconds_total", { ...node, cpu, mode: "idle" }),
        values: counter(60 * (1 - v / 100), n),
      })),
      {
        series: sel("node_cpu_seconds_total", { ...node, cpu: "0", mode: "user" }),
        values: counter(60 * (v / 100), n),
      },
    ],
    labels: { instance: "node-1" },
    warmupMin: 1,
  },
  HighMemoryUsage: {
    series: (v, n) => [
      { series: sel("node_memory_MemTotal_bytes", node), values: constant(8e9, n) },
      {
        series: sel("node_memory_MemAvailable_bytes", node),
        values: constant((1 - v / 100) * 8e9, n),
      },
    ],
    labels: node,
    warmupMin: 0,
  },
  PostgreSQLReplicationLag: {
    series: (v, n) => [
      {
        series: sel("pg_stat_replication_pg_wal_lsn_diff", {
          ...pgPod,
          application_name: "postgresql-1",
          state: "streaming",
        }),
        values: constant(v, n),
      },
      {
        series: sel("pg_stat_replication_pg_wal_lsn_diff", {
          ...pgPod,
          application_name: "postgresql-2",
          state: "streaming",
        }),
        values: constant(0, n),
      },
    ],
    labels: { namespace: NS, app: "postgresql", application_name: "postgresql-1" },
    warmupMin: 0,
  },
  PostgreSQLReplicaMissing: {
    // `v` replicas streaming, plus one still catching up that must not count.
    series: (v, n) => [
      ...Array.from({ length: v }, (_, i) => ({
        series: sel("pg_stat_replication_pg_wal_lsn_diff", {
          ...pgPod,
          application_name: `postgresql-${i + 1}`,
          state: "streaming",
        }),
        values: constant(0, n),
      })),
      {
        series: sel("pg_stat_replication_pg_wal_lsn_diff", {
          ...pgPod,
          application_name: "postgresql-9",
          state: "catchup",
        }),
        values: constant(0, n),
      },
    ],
    labels: { namespace: NS, app: "postgresql" },
    warmupMin: 0,
  },
  RedisClusterNotOk: {
    series: (v, n) => [{ series: sel("redis_cluster_state", redisPod), values: constant(v, n) }],
    labels: redisPod,
    warmupMin: 0,
  },
  PodCrashLooping: {
    series: (v, n) => [
      {
        series: sel("kube_pod_container_status_waiting_reason", {
          namespace: NS,
          pod: "stock-analysis-api-7d9f-abcde",
          container: "stock-analysis-api",
          reason: "CrashLoopBackOff",
          job: "kube-state-metrics",
        }),
        values: constant(v, n),
      },
      // Same state in another namespace is not ours.
      {
        series: sel("kube_pod_container_status_waiting_reason", {
          namespace: "kube-system",
          pod: "other",
          container: "other",
          reason: "CrashLoopBackOff",
          job: "kube-state-metrics",
        }),
        values: constant(1, n),
      },
    ],
    labels: {
      namespace: NS,
      pod: "stock-analysis-api-7d9f-abcde",
      container: "stock-analysis-api",
      reason: "CrashLoopBackOff",
      job: "kube-state-metrics",
    },
    warmupMin: 0,
  },
  PVCFillingUp: {
    series: (v, n) => {
      const pvc = {
        namespace: NS,
        persistentvolumeclaim: "data-postgresql-0",
        instance: "node-1",
        job: "kubelet",
      };
      return [
        { series: sel("kubelet_volume_stats_available_bytes", pvc), values: constant(v * 1e11, n) },
        { series: sel("kubelet_volume_stats_capacity_bytes", pvc), values: constant(1e11, n) },
      ];
    },
    labels: {
      namespace: NS,
      persistentvolumeclaim: "data-postgresql-0",
      instance: "node-1",
      job: "kubelet",
    },
    warmupMin: 0,
  },
  BackupJobFailed: {
    series: (v, n) => [
      {
        series: sel("kube_job_status_failed", {
          namespace: NS,
          job_name: "postgresql-backup-29000000",
          job: "kube-state-metrics",
        }),
        values: constant(v, n),
      },
      // A failed non-backup job is someone else's alert; so is a failed verification.
      ...["db-migrate-1", "postgresql-backup-verify-29000000"].map((job_name) => ({
        series: sel("kube_job_status_failed", {
          namespace: NS,
          job_name,
          job: "kube-state-metrics",
        }),
        values: constant(1, n),
      })),
    ],
    labels: { namespace: NS, job_name: "postgresql-backup-29000000" },
    warmupMin: 0,
  },
  MaintenanceJobFailed: {
    series: (v, n) => [
      ...jobSeries("postgresql-maintenance-29000000", "postgresql-maintenance", v, n),
      // A failed backup is BackupJobFailed's (critical), a Job no CronJob owns is not maintenance.
      ...jobSeries("postgresql-backup-29000000", "postgresql-backup", 1, n),
      ...jobSeries("db-migrate-1", undefined, 1, n),
    ],
    labels: {
      namespace: NS,
      job_name: "postgresql-maintenance-29000000",
      owner_name: "postgresql-maintenance",
    },
    warmupMin: 0,
  },
  NodeDiskSpaceLow: {
    series: (v, n) => [
      ...filesystem(rootFs, v, n),
      // Memory-backed and read-only filesystems are not node disks.
      ...filesystem({ ...node, device: "tmpfs", mountpoint: "/run", fstype: "tmpfs" }, 0.01, n),
      ...filesystem(
        { ...node, device: "/dev/sr0", mountpoint: "/media/cdrom", fstype: "iso9660" },
        0,
        n,
        1,
      ),
    ],
    labels: rootFs,
    warmupMin: 0,
  },
  BackupTooOld: {
    // last_successful_time = now - v at every sample, so the age is v throughout. The CronJob was
    // created 30 days ago: the rule must use the last success, not the creation, when both exist.
    series: (v, n) => {
      const cj = { namespace: NS, cronjob: "postgresql-backup", job: "kube-state-metrics" };
      return [
        { series: sel("kube_cronjob_status_last_successful_time", cj), values: `${-v}+60x${n}` },
        { series: sel("kube_cronjob_created", cj), values: `${-30 * 86400}+0x${n}` },
        // A verification that never succeeded is BackupVerificationMissing's, not a backup's age.
        ...verifyCronJob({ created: -30 * 86400 }, n),
      ];
    },
    labels: { namespace: NS, cronjob: "postgresql-backup" },
    warmupMin: 0,
  },
  BackupVerificationMissing: {
    // As BackupTooOld, for the verify CronJob; an old backup CronJob is not this alert's.
    series: (v, n) => [
      ...verifyCronJob({ created: -30 * 86400, success: -v, schedule: -v - 3600 }, n),
      {
        series: sel("kube_cronjob_status_last_successful_time", {
          namespace: NS,
          cronjob: "redis-backup",
          job: "kube-state-metrics",
        }),
        values: `${-30 * 86400}+0x${n}`,
      },
    ],
    labels: { namespace: NS, cronjob: "postgresql-backup-verify" },
    warmupMin: 0,
  },
  BackupVerificationFailed: {
    // The newest run was scheduled `v` s after the newest success and is over (no active Job).
    series: (v, n) => [
      ...verifyCronJob(
        { created: -30 * 86400, success: -86400, schedule: -86400 + v, active: 0 },
        n,
      ),
      // A backup CronJob whose last run failed is BackupJobFailed's, not a verification.
      ...["schedule", "success"].map((k) => ({
        series: sel(
          k === "schedule"
            ? "kube_cronjob_status_last_schedule_time"
            : "kube_cronjob_status_last_successful_time",
          { namespace: NS, cronjob: "postgresql-backup-full", job: "kube-state-metrics" },
        ),
        values: constant(k === "schedule" ? 0 : -86400, n),
      })),
    ],
    labels: { namespace: NS, cronjob: "postgresql-backup-verify" },
    warmupMin: 0,
  },
  PostgreSQLWALArchivingFailing: {
    // postgresql-0: newest attempt failed (`v`) while failures keep coming (2/min). postgresql-1,
    // a replica that failed when it was the primary, keeps failing = 1 with no new failures.
    series: (v, n) => [
      { series: sel("pg_wal_archive_failing", pgPod), values: constant(v, n) },
      { series: sel("pg_stat_archiver_failed_count", pgPod), values: counter(2, n) },
      { series: sel("pg_wal_archive_failing", pgReplicaPod), values: constant(1, n) },
      { series: sel("pg_stat_archiver_failed_count", pgReplicaPod), values: constant(40, n) },
    ],
    labels: { namespace: NS, app: "postgresql", pod: "postgresql-0" },
    // increase() needs two samples.
    warmupMin: 1,
  },
  PostgreSQLWALArchiveLag: {
    series: (v, n) => [
      { series: sel("pg_wal_archive_lag_seconds", pgPod), values: constant(v, n) },
      { series: sel("pg_wal_archive_lag_seconds", pgReplicaPod), values: constant(0, n) },
    ],
    labels: { namespace: NS, app: "postgresql", pod: "postgresql-0" },
    warmupMin: 0,
  },
  TLSCertificateExpiring: {
    series: (v, n) => [
      {
        series: sel("nginx_ingress_controller_ssl_expire_time_seconds", {
          namespace: NS,
          host: "stock.example.com",
          secret_name: "stock-analysis-tls",
          job: "ingress-nginx",
        }),
        values: `${v * 86400}+60x${n}`,
      },
    ],
    labels: {
      namespace: NS,
      host: "stock.example.com",
      secret_name: "stock-analysis-tls",
      job: "ingress-nginx",
    },
    warmupMin: 0,
  },
};

const key = (c: Contract) => `${c.alert}/${c.team}/${c.severity}`;
const fixtureFor = (c: Contract): Fixture => {
  const f = FIXTURES[`${c.alert}/${c.team}`] ?? FIXTURES[c.alert];
  assert.ok(f, `no fixture for ${key(c)}`);
  return f;
};
/** Entries one fixture can trip: same alert name and owning team (warning/critical pairs). */
const siblings = (c: Contract) => CONTRACT.filter((s) => s.alert === c.alert && s.team === c.team);

function expectedAlerts(c: Contract, v: number, evalMin: number) {
  const f = fixtureFor(c);
  return siblings(c)
    .filter((s) => holds(s, v) && evalMin >= f.warmupMin + s.forMin)
    .map((s) => ({ exp_labels: { ...f.labels, severity: s.severity, team: s.team } }));
}

const fileName = (c: Contract, kind: "fires" | "quiet") =>
  `${key(c).replace(/\//g, "_")}_${kind}.test.yml`;

interface CaseFile {
  name: string;
  kind: "fires" | "quiet";
  contract: Contract;
}

/** Writes one promtool test file per contract entry and case; returns them. */
function writeCases(dir: string, rulesFile: string): CaseFile[] {
  const cases: CaseFile[] = [];
  for (const c of CONTRACT) {
    const f = fixtureFor(c);
    const { fire, quiet } = probeValues(c);
    const firesAt = f.warmupMin + c.forMin;
    const lateAt = firesAt + 5;
    const n = lateAt + 2;
    const tests = [
      {
        kind: "fires" as const,
        test: {
          name: fileName(c, "fires"),
          interval: "1m",
          input_series: f.series(fire, n),
          alert_rule_test: [firesAt - 1, firesAt].map((t) => ({
            eval_time: `${t}m`,
            alertname: c.alert,
            exp_alerts: expectedAlerts(c, fire, t),
          })),
        },
      },
      {
        kind: "quiet" as const,
        test: {
          name: fileName(c, "quiet"),
          interval: "1m",
          input_series: f.series(quiet, n),
          alert_rule_test: [firesAt, lateAt].map((t) => ({
            eval_time: `${t}m`,
            alertname: c.alert,
            exp_alerts: expectedAlerts(c, quiet, t),
          })),
        },
      },
    ];
    for (const { kind, test: t } of tests) {
      const name = fileName(c, kind);
      writeFileSync(
        join(dir, name),
        stringify({ rule_files: [rulesFile], evaluation_interval: "1m", tests: [t] }),
      );
      cases.push({ name, kind, contract: c });
    }
  }
  return cases;
}

/** Runs promtool over all case files; returns the names of failing ones (and the raw output). */
function runCases(dir: string, cases: CaseFile[]) {
  const r = run(tool("promtool"), ["test", "rules", ...cases.map((c) => c.name)], { cwd: dir });
  // Failures are reported on stderr as "name: <test name>," and every test is named after its file.
  const failed = new Set([...r.output.matchAll(/^\s+name: (\S+),$/gm)].map((m) => m[1]));
  return { ...r, failed };
}

/** Rendered rule file with annotations dropped (their text embeds $value; behaviour is what we test). */
function behaviourRules(mutate?: (rule: Record<string, unknown>) => void): string {
  const doc = parse(renderAlertRules(alertGroups(RULE_OPTIONS), RULE_OPTIONS.runbookUrl)) as {
    groups: { rules: Record<string, unknown>[] }[];
  };
  for (const g of doc.groups)
    for (const r of g.rules) {
      // Recording rules have no `for`, labels or annotations to mutate.
      if (r.record) continue;
      delete r.annotations;
      mutate?.(r);
    }
  return stringify(doc, { lineWidth: 0 });
}

const nudge = (expr: string, f: (op: string, n: number) => string) =>
  expr.replace(/(>=|==|>|<)\s*([0-9.e+]+)\s*$/, (_m, op: string, n: string) => f(op, Number(n)));

/** Moves a threshold past the probe values: small integers by one, anything else by 10 %. */
const small = (n: number) => Number.isInteger(n) && n <= 3;
function stricter(op: string, n: number): string {
  if (op === "==") return `== ${n + 1}`;
  if (op === "<") return `< ${small(n) ? n - 1 : n * 0.9}`;
  return `${op} ${small(n) ? n + 1 : n * 1.1}`;
}
function looser(op: string, n: number): string {
  if (op === "==") return `>= ${n}`;
  if (op === "<") return `< ${small(n) ? n + 1 : n * 1.1}`;
  return `${op} ${small(n) ? n - 1 : n * 0.9}`;
}

let dir = "";
let cases: CaseFile[] = [];
const rulesFile = () => join(dir, "rules.yml");

describe("alert rules (promtool)", () => {
  before(() => {
    dir = tempDir("rules-");
    writeFileSync(rulesFile(), behaviourRules());
    cases = writeCases(dir, "rules.yml");
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("promtool check rules accepts the shipped rule file (annotations included)", () => {
    const file = writeRules(dir);
    const r = run(tool("promtool"), ["check", "rules", file]);
    assert.equal(r.status, 0, r.output);
    assert.match(r.output, /SUCCESS: \d+ rules found/);
  });

  test("the shipped rules are exactly the contract: same alerts, severities and teams", () => {
    const shipped = alertGroups(RULE_OPTIONS)
      .flatMap((g) => g.rules)
      .map((r) => `${r.alert}/${r.team}/${r.severity}`)
      .sort();
    assert.deepEqual(shipped, CONTRACT.map(key).sort());
  });

  test("every alerting rule has severity, team, summary, description and a runbook_url into RUNBOOK.md", () => {
    const doc = parse(readFileSync(writeRules(dir), "utf8")) as {
      groups: {
        rules: {
          alert: string;
          labels: Record<string, string>;
          annotations: Record<string, string>;
        }[];
      }[];
    };
    const runbook = readFileSync(join(__dirname, "../../docs/RUNBOOK.md"), "utf8");
    // GitHub heading anchors, ignoring `#` comment lines inside fenced code blocks.
    const prose = runbook.replace(/^```[\s\S]*?^```/gm, "");
    const anchors = new Set(
      [...prose.matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) =>
        m[1]
          .trim()
          .toLowerCase()
          .replace(/[^\w\- ]/g, "")
          .replace(/ /g, "-"),
      ),
    );
    const alerting = doc.groups.flatMap((g) => g.rules).filter((r) => r.alert);
    assert.equal(alerting.length, CONTRACT.length);
    for (const r of alerting) {
      assert.ok(["critical", "warning"].includes(r.labels.severity), r.alert);
      assert.ok(["backend", "dba", "devops"].includes(r.labels.team), r.alert);
      assert.ok(r.annotations.summary.length > 10, r.alert);
      assert.ok(r.annotations.description.length > 10, r.alert);
      const [base, anchor] = r.annotations.runbook_url.split("#");
      assert.equal(base, RULE_OPTIONS.runbookUrl);
      assert.ok(anchors.has(anchor), `${r.alert}: RUNBOOK.md has no heading for #${anchor}`);
      // The section says what to do: it has at least one command block.
      const section = runbookSection(runbook, anchor);
      assert.match(
        section,
        /```bash\n[^`]*kubectl|```bash\n[^`]*amtool/,
        `#${anchor} has no commands`,
      );
    }
  });

  test("rules read only metrics that an exporter of ours produces", () => {
    const known = knownMetricNames();
    for (const r of alertGroups(RULE_OPTIONS).flatMap((g) => g.rules)) {
      for (const m of metricNames(r.expr))
        assert.ok(known.has(m), `${r.alert} reads unknown metric ${m}`);
    }
    for (const r of RECORDING_GROUPS.flatMap((g) => g.rules)) {
      assert.ok(known.has(r.record), `${r.record} is not in the catalogue`);
      for (const m of metricNames(r.expr))
        assert.ok(known.has(m), `${r.record} reads unknown metric ${m}`);
    }
  });

  test("without configured replicas there is no replica-missing alert", () => {
    const names = alertGroups({ ...RULE_OPTIONS, postgresReplicas: 0 }).flatMap((g) =>
      g.rules.map((r) => r.alert),
    );
    assert.ok(!names.includes("PostgreSQLReplicaMissing"));
    assert.ok(names.includes("PostgreSQLReplicationLag"));
  });

  test("promtool test rules: every alert fires after its `for` and stays silent below threshold", () => {
    const r = runCases(dir, cases);
    assert.equal(r.failed.size, 0, r.output);
    assert.equal(r.status, 0, r.output);
    assert.equal(cases.length, CONTRACT.length * 2);
  });

  test("a backup CronJob that never succeeded alerts 26 h after its creation", () => {
    const c = CONTRACT.find((x) => x.alert === "BackupTooOld")!;
    const { fire, quiet } = probeValues(c);
    const cj = { namespace: NS, cronjob: "redis-backup", job: "kube-state-metrics" };
    const cases = [
      {
        age: fire,
        exp: [
          {
            exp_labels: {
              namespace: NS,
              cronjob: "redis-backup",
              severity: c.severity,
              team: c.team,
            },
          },
        ],
      },
      { age: quiet, exp: [] },
    ];
    writeFileSync(
      join(dir, "never.test.yml"),
      stringify({
        rule_files: ["rules.yml"],
        evaluation_interval: "1m",
        tests: cases.map((k, i) => ({
          name: `never-succeeded-${i}`,
          interval: "1m",
          // Only the creation time exists: kube-state-metrics omits last_successful_time until a success.
          input_series: [
            { series: sel("kube_cronjob_created", cj), values: `${-k.age}+0x${c.forMin + 2}` },
          ],
          alert_rule_test: [{ eval_time: `${c.forMin}m`, alertname: c.alert, exp_alerts: k.exp }],
        })),
      }),
    );
    const r = run(tool("promtool"), ["test", "rules", "never.test.yml"], { cwd: dir });
    assert.equal(r.status, 0, r.output);
  });

  /** Runs one promtool case: `alert` over `input` evaluated at `evalMin`, expecting `exp`. */
  function promtoolCase(
    name: string,
    alert: string,
    input: Series[],
    evalMin: number,
    exp: Record<string, string>[],
  ) {
    writeFileSync(
      join(dir, `${name}.test.yml`),
      stringify({
        rule_files: ["rules.yml"],
        evaluation_interval: "1m",
        tests: [
          {
            name,
            interval: "1m",
            input_series: input,
            alert_rule_test: [
              {
                eval_time: `${evalMin}m`,
                alertname: alert,
                exp_alerts: exp.map((l) => ({ exp_labels: l })),
              },
            ],
          },
        ],
      }),
    );
    const r = run(tool("promtool"), ["test", "rules", `${name}.test.yml`], { cwd: dir });
    assert.equal(r.status, 0, r.output);
  }

  test("HighErrorRate judges services with at least 1 request/s only", () => {
    const c = CONTRACT.find((x) => x.alert === "HighErrorRate")!;
    // Once the 5-minute window is full (a starting counter's rate under-reads until then).
    const at = 5 + c.forMin + 1;
    const api = (status: string, perMin: number): Series => ({
      series: sel("http_requests_total", { ...apiPod, pod: "api-1", status }),
      values: counter(perMin, at + 2),
    });
    // Every request fails, at 0.5/s: a few errors, not a rate.
    promtoolCase("error-rate-idle", c.alert, [api("5xx", 30)], at, []);
    // Every request fails at 2/s: that is an outage.
    promtoolCase("error-rate-busy", c.alert, [api("5xx", 120)], at, [
      { namespace: NS, app: "stock-analysis-api", severity: c.severity, team: c.team },
    ]);
  });

  test("RedisCacheEvictionPressure needs evictions and traffic; the broker is not the cache", () => {
    const c = CONTRACT.find((x) => x.alert === "RedisCacheEvictionPressure")!;
    const at = 5 + c.forMin + 1;
    const pods = ["redis-0", "redis-1"];
    const expected = [{ namespace: NS, app: "redis", severity: c.severity, team: c.team }];
    // A cold cache that is not full (no evictions) misses, and that is fine.
    promtoolCase("cache-cold", c.alert, cacheSeries(pods, 0.1, 10, 0, at + 2), at, []);
    // Almost idle (0.5 lookups/s): the ratio means nothing.
    promtoolCase("cache-idle", c.alert, cacheSeries(pods, 0.1, 0.5, 60, at + 2), at, []);
    promtoolCase("cache-thrashing", c.alert, cacheSeries(pods, 0.1, 10, 60, at + 2), at, expected);
  });

  test("BackupVerificationFailed: a run that is still going or succeeded is quiet, a first run that failed alerts", () => {
    const c = CONTRACT.find((x) => x.alert === "BackupVerificationFailed")!;
    const at = c.forMin + 1;
    const n = at + 2;
    const day = -86400;
    const fired = [
      { namespace: NS, cronjob: "postgresql-backup-verify", severity: c.severity, team: c.team },
    ];
    // Scheduled an hour ago, still running.
    promtoolCase(
      "verify-running",
      c.alert,
      verifyCronJob({ created: 30 * day, success: day, schedule: -3600, active: 1 }, n),
      at,
      [],
    );
    // Scheduled an hour ago, succeeded ten minutes ago.
    promtoolCase(
      "verify-succeeded",
      c.alert,
      verifyCronJob({ created: 30 * day, success: -600, schedule: -3600, active: 0 }, n),
      at,
      [],
    );
    // Its first run failed: no success yet, counted from the creation.
    promtoolCase(
      "verify-first-run-failed",
      c.alert,
      verifyCronJob({ created: day, schedule: -3600, active: 0 }, n),
      at,
      fired,
    );
  });

  test("a weekly full plus daily differential backup CronJob count as one data set", () => {
    const c = CONTRACT.find((x) => x.alert === "BackupTooOld")!;
    const { fire, quiet } = probeValues(c);
    const full = { namespace: NS, cronjob: "postgresql-backup-full", job: "kube-state-metrics" };
    const diff = { namespace: NS, cronjob: "postgresql-backup-diff", job: "kube-state-metrics" };
    const exp = [
      {
        exp_labels: {
          namespace: NS,
          cronjob: "postgresql-backup",
          severity: c.severity,
          team: c.team,
        },
      },
    ];
    // The full is always days old; only when the differential is old too is the set stale.
    const cases = [
      { diffAge: quiet, exp: [] },
      { diffAge: fire, exp },
    ];
    writeFileSync(
      join(dir, "fulldiff.test.yml"),
      stringify({
        rule_files: ["rules.yml"],
        evaluation_interval: "1m",
        tests: cases.map((k, i) => ({
          name: `full-diff-${i}`,
          interval: "1m",
          input_series: [
            {
              series: sel("kube_cronjob_status_last_successful_time", full),
              values: `${-5 * 86400}+0x${c.forMin + 2}`,
            },
            {
              series: sel("kube_cronjob_created", full),
              values: `${-30 * 86400}+0x${c.forMin + 2}`,
            },
            {
              series: sel("kube_cronjob_status_last_successful_time", diff),
              values: `${-k.diffAge}+0x${c.forMin + 2}`,
            },
            {
              series: sel("kube_cronjob_created", diff),
              values: `${-30 * 86400}+0x${c.forMin + 2}`,
            },
          ],
          alert_rule_test: [{ eval_time: `${c.forMin}m`, alertname: c.alert, exp_alerts: k.exp }],
        })),
      }),
    );
    const r = run(tool("promtool"), ["test", "rules", "fulldiff.test.yml"], { cwd: dir });
    assert.equal(r.status, 0, r.output);
  });

  test("celery_queue_length is recorded per queue as the max over broker pods, cache pods ignored", () => {
    const key = (app: string, pod: string, k: string) =>
      sel("redis_key_size", { namespace: NS, app, pod, db: "db0", key: k });
    writeFileSync(
      join(dir, "recorded.test.yml"),
      stringify({
        rule_files: ["rules.yml"],
        evaluation_interval: "1m",
        tests: [
          {
            name: "recorded",
            interval: "1m",
            input_series: [
              { series: key("redis-broker", "redis-broker-0", "celery"), values: "7+0x3" },
              { series: key("redis-broker", "redis-broker-1", "celery"), values: "5+0x3" },
              { series: key("redis-broker", "redis-broker-0", "reports"), values: "0+0x3" },
              { series: key("redis", "redis-0", "celery"), values: "900+0x3" },
            ],
            promql_expr_test: [
              {
                expr: "celery_queue_length",
                eval_time: "2m",
                exp_samples: [
                  {
                    labels: sel("celery_queue_length", { namespace: NS, queue_name: "celery" }),
                    value: 7,
                  },
                  {
                    labels: sel("celery_queue_length", { namespace: NS, queue_name: "reports" }),
                    value: 0,
                  },
                ],
              },
            ],
          },
        ],
      }),
    );
    const r = run(tool("promtool"), ["test", "rules", "recorded.test.yml"], { cwd: dir });
    assert.equal(r.status, 0, r.output);
  });

  // Each mutation of the shipped rules must be caught by the cases of every rule.
  const mutations: {
    name: string;
    kind: CaseFile["kind"];
    skip?: (c: Contract) => boolean;
    mutate: (r: Record<string, unknown>) => void;
  }[] = [
    {
      name: "stricter threshold",
      kind: "fires",
      mutate: (r) => (r.expr = nudge(String(r.expr), stricter)),
    },
    {
      name: "looser threshold",
      kind: "quiet",
      mutate: (r) => (r.expr = nudge(String(r.expr), looser)),
    },
    {
      name: "longer for",
      kind: "fires",
      mutate: (r) => (r.for = `${parseDurationMin(String(r.for)) + 1}m`),
    },
    {
      name: "shorter for",
      kind: "fires",
      mutate: (r) => (r.for = `${parseDurationMin(String(r.for)) - 1}m`),
    },
    {
      name: "other severity",
      kind: "fires",
      mutate: (r) => {
        const l = r.labels as Record<string, string>;
        l.severity = l.severity === "critical" ? "warning" : "critical";
      },
    },
    {
      name: "other team",
      kind: "fires",
      mutate: (r) => {
        const l = r.labels as Record<string, string>;
        l.team = l.team === "devops" ? "backend" : "devops";
      },
    },
  ];
  for (const m of mutations) {
    test(`mutation "${m.name}" in the rules is caught for every alert`, () => {
      const mutatedDir = tempDir("rules-mut-");
      try {
        writeFileSync(join(mutatedDir, "rules.yml"), behaviourRules(m.mutate));
        const mutatedCases = writeCases(mutatedDir, "rules.yml");
        const r = runCases(mutatedDir, mutatedCases);
        const uncaught = mutatedCases
          .filter((c) => c.kind === m.kind && !r.failed.has(c.name))
          .map((c) => c.name);
        assert.deepEqual(uncaught, [], `not caught:\n${r.output.slice(0, 3000)}`);
      } finally {
        rmSync(mutatedDir, { recursive: true, force: true });
      }
    });
  }
});

/** Text of the runbook section whose heading slugs to `anchor`, up to the next heading of any level. */
function runbookSection(runbook: string, anchor: string): string {
  const lines = runbook.split("\n");
  let inFence = false;
  let start = -1;
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].startsWith("```")) inFence = !inFence;
    const m = !inFence && /^#{1,6}\s+(.+)$/.exec(lines[i]);
    if (!m) continue;
    const slug = m[1]
      .trim()
      .toLowerCase()
      .replace(/[^\w\- ]/g, "")
      .replace(/ /g, "-");
    if (start >= 0) return lines.slice(start, i).join("\n");
    if (slug === anchor) start = i;
  }
  return start >= 0 ? lines.slice(start).join("\n") : "";
}

function parseDurationMin(d: string): number {
  const m = /^(\d+)([mh])$/.exec(d);
  assert.ok(m, `unexpected duration ${d}`);
  return Number(m[1]) * (m[2] === "h" ? 60 : 1);
}
