/**
 * Declared catalogue of the metric names each scrape source of ours produces.
 *
 * Alert rules and dashboard panels may only reference names listed here (tests enforce it), so a
 * typo or a metric that no exporter emits is caught before it silently never fires. Where a Debian
 * package of the exporter exists, a test scrapes the real exporter and checks the names below.
 */

import { WAL_ARCHIVE_METRICS } from "../postgres/exporter-queries";

/** One scrape source: who produces the metrics and which names we rely on. */
export interface MetricSource {
  /** Short id, used in tests and docs. */
  readonly id: string;
  /** What produces the metrics (exporter and pinned version). */
  readonly producer: string;
  /** Metric names as they appear in the exposition (histograms list their `_bucket`/`_sum`/`_count`). */
  readonly metrics: readonly string[];
}

export const METRIC_SOURCES: readonly MetricSource[] = [
  {
    id: "prometheus",
    producer: "Prometheus itself (synthetic scrape and alert series)",
    metrics: ["up", "scrape_duration_seconds", "ALERTS"],
  },
  {
    id: "api",
    producer: "stock-analysis-api via prometheus-fastapi-instrumentator defaults",
    metrics: [
      "http_requests_total",
      "http_request_duration_seconds_bucket",
      "http_request_duration_seconds_sum",
      "http_request_duration_seconds_count",
    ],
  },
  {
    id: "node-exporter",
    producer: "prometheus node_exporter",
    metrics: [
      "node_cpu_seconds_total",
      "node_memory_MemAvailable_bytes",
      "node_memory_MemTotal_bytes",
      "node_filesystem_avail_bytes",
      "node_filesystem_size_bytes",
      "node_filesystem_readonly",
      "node_network_receive_bytes_total",
      "node_network_transmit_bytes_total",
      "node_disk_read_bytes_total",
      "node_disk_written_bytes_total",
      "node_load1",
    ],
  },
  {
    id: "kube-state-metrics",
    producer: "kube-state-metrics v2",
    metrics: [
      "kube_pod_status_phase",
      "kube_pod_container_status_restarts_total",
      "kube_pod_container_status_waiting_reason",
      "kube_pod_container_resource_requests",
      "kube_deployment_spec_replicas",
      "kube_deployment_status_replicas_available",
      "kube_statefulset_replicas",
      "kube_statefulset_status_replicas_ready",
      "kube_job_status_failed",
      "kube_job_failed",
      "kube_job_owner",
      "kube_cronjob_status_last_successful_time",
      "kube_cronjob_status_last_schedule_time",
      "kube_cronjob_status_active",
      "kube_cronjob_created",
      "kube_node_status_allocatable",
      "kube_node_status_condition",
    ],
  },
  {
    id: "kubelet",
    producer: "kubelet /metrics and /metrics/cadvisor",
    metrics: [
      "kubelet_volume_stats_available_bytes",
      "kubelet_volume_stats_capacity_bytes",
      "container_cpu_usage_seconds_total",
      "container_memory_working_set_bytes",
    ],
  },
  {
    id: "postgres-exporter",
    producer: "prometheus-community postgres_exporter (sidecar of the PostgreSQL component)",
    metrics: [
      "pg_up",
      "pg_stat_activity_count",
      "pg_settings_max_connections",
      "pg_stat_replication_pg_wal_lsn_diff",
      "pg_database_size_bytes",
      "pg_stat_database_xact_commit",
      "pg_stat_database_xact_rollback",
      "pg_stat_database_blks_hit",
      "pg_stat_database_blks_read",
      "pg_stat_archiver_failed_count",
      "pg_stat_archiver_archived_count",
    ],
  },
  {
    id: "postgres-exporter-queries",
    producer:
      "the postgres_exporter sidecars' custom queries (components/postgres/exporter-queries.ts)",
    metrics: Object.values(WAL_ARCHIVE_METRICS),
  },
  {
    id: "redis-exporter",
    producer: "oliver006 redis_exporter (sidecar of the Redis component)",
    metrics: [
      "redis_up",
      "redis_memory_used_bytes",
      "redis_memory_max_bytes",
      "redis_cluster_state",
      "redis_cluster_slots_ok",
      "redis_cluster_slots_fail",
      "redis_connected_clients",
      "redis_connected_slaves",
      "redis_keyspace_hits_total",
      "redis_keyspace_misses_total",
      "redis_evicted_keys_total",
      "redis_commands_processed_total",
    ],
  },
  {
    id: "redis-exporter-broker",
    producer:
      "redis_exporter sidecars of the Celery broker with REDIS_EXPORTER_CHECK_SINGLE_KEYS = the queues",
    metrics: ["redis_key_size"],
  },
  {
    id: "recording-rules",
    producer: "our recording rules (alert-rules.ts RECORDING_GROUPS)",
    metrics: ["celery_queue_length"],
  },
  {
    // Its own celery_queue_length is dropped at scrape time: the recording rule owns the name.
    id: "celery-exporter",
    producer: "danihodovic/celery-exporter",
    metrics: [
      "celery_worker_up",
      "celery_active_worker_count",
      "celery_task_succeeded_total",
      "celery_task_failed_total",
      "celery_task_runtime_bucket",
    ],
  },
  {
    id: "ingress-nginx",
    producer: "ingress-nginx controller metrics endpoint",
    metrics: [
      "nginx_ingress_controller_ssl_expire_time_seconds",
      "nginx_ingress_controller_requests",
    ],
  },
  {
    id: "alertmanager",
    producer: "Alertmanager /metrics",
    metrics: ["alertmanager_notifications_total", "alertmanager_notifications_failed_total"],
  },
];

/** Every metric name some source of ours produces. */
export function knownMetricNames(): Set<string> {
  return new Set(METRIC_SOURCES.flatMap((s) => s.metrics));
}

export function metricSource(id: string): MetricSource {
  const source = METRIC_SOURCES.find((s) => s.id === id);
  if (!source) throw new Error(`unknown metric source ${id}`);
  return source;
}
