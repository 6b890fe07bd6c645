/**
 * The manual's three Grafana dashboards (system overview, API performance, infrastructure) as code.
 * Panels are declared as small typed specs and expanded into Grafana's JSON model.
 */

export const PROMETHEUS_DS_UID = "prometheus";
export const LOKI_DS_UID = "loki";

export type PanelKind = "timeseries" | "stat" | "table" | "bargauge" | "piechart" | "logs";

export interface PanelTarget {
  /** PromQL (Prometheus panels) or LogQL (logs panels). */
  readonly expr: string;
  readonly legend?: string;
}

export interface PanelSpec {
  readonly title: string;
  readonly kind: PanelKind;
  readonly targets: readonly PanelTarget[];
  /** Grafana unit id (percentunit, s, bytes, reqps, ...). */
  readonly unit?: string;
  /** Grid width in 24ths; default 12. */
  readonly width?: number;
  readonly description?: string;
}

export interface DashboardSpec {
  readonly uid: string;
  readonly title: string;
  readonly tags: readonly string[];
  readonly panels: readonly PanelSpec[];
}

/** The dashboards, parameterised by the namespace the platform runs in. */
export function dashboardSpecs(namespace: string): DashboardSpec[] {
  const ns = `namespace="${namespace}"`;
  const api = `app="stock-analysis-api"`;
  const httpRate = (filter = "") => `rate(http_requests_total{${api}${filter}}[5m])`;
  const latency = (q: number, by = "le") =>
    `histogram_quantile(${q}, sum by (${by}) (rate(http_request_duration_seconds_bucket{${api}}[5m])))`;
  return [
    {
      uid: "stock-analysis-overview",
      title: "Stock Analysis / System overview",
      tags: ["stock-analysis", "overview"],
      panels: [
        {
          title: "Service health (1 = up)",
          kind: "stat",
          targets: [{ expr: `min by (app) (up{${ns}})`, legend: "{{app}}" }],
          width: 24,
        },
        {
          title: "Firing alerts",
          kind: "stat",
          targets: [{ expr: 'sum(ALERTS{alertstate="firing"}) or vector(0)' }],
          width: 6,
        },
        {
          title: "API requests/s",
          kind: "stat",
          unit: "reqps",
          targets: [{ expr: `sum(${httpRate()})` }],
          width: 6,
        },
        {
          title: "API error ratio (5xx)",
          kind: "stat",
          unit: "percentunit",
          targets: [{ expr: `sum(${httpRate(', status=~"5.."')}) / sum(${httpRate()})` }],
          width: 6,
        },
        {
          title: "API p95 response time",
          kind: "stat",
          unit: "s",
          targets: [{ expr: latency(0.95) }],
          width: 6,
        },
        {
          title: "Error rate trend (5xx/s by service)",
          kind: "timeseries",
          unit: "reqps",
          targets: [
            {
              expr: `sum by (app) (rate(http_requests_total{${ns}, status=~"5.."}[5m]))`,
              legend: "{{app}}",
            },
          ],
        },
        {
          title: "User activity (API requests/min, probes excluded)",
          kind: "timeseries",
          description:
            "The API exports no user metric; request volume without probes is the proxy.",
          targets: [
            {
              expr: `sum(${httpRate(', handler!~"/health|/metrics"')}) * 60`,
              legend: "requests/min",
            },
          ],
        },
        {
          title: "Celery queue length",
          kind: "timeseries",
          targets: [
            { expr: "sum by (queue_name) (celery_queue_length)", legend: "{{queue_name}}" },
          ],
        },
        {
          title: "Analysis task success ratio",
          kind: "timeseries",
          unit: "percentunit",
          targets: [
            {
              expr:
                "sum(rate(celery_task_succeeded_total[5m])) / " +
                "(sum(rate(celery_task_succeeded_total[5m])) + sum(rate(celery_task_failed_total[5m])))",
              legend: "success ratio",
            },
          ],
        },
        {
          title: "Database connections",
          kind: "timeseries",
          targets: [
            { expr: "sum by (server) (pg_stat_activity_count)", legend: "{{server}}" },
            { expr: "max(pg_settings_max_connections)", legend: "max_connections" },
          ],
        },
        {
          title: "Redis cache hit ratio",
          kind: "timeseries",
          unit: "percentunit",
          targets: [
            {
              expr:
                "sum(rate(redis_keyspace_hits_total[5m])) / " +
                "(sum(rate(redis_keyspace_hits_total[5m])) + sum(rate(redis_keyspace_misses_total[5m])))",
              legend: "hit ratio",
            },
          ],
        },
        {
          title: "Error logs",
          kind: "logs",
          targets: [{ expr: `{${ns}} |~ "(?i)(error|exception|traceback)"` }],
          width: 24,
        },
      ],
    },
    {
      uid: "stock-analysis-api",
      title: "Stock Analysis / API performance",
      tags: ["stock-analysis", "api"],
      panels: [
        {
          title: "Requests/s by status",
          kind: "timeseries",
          unit: "reqps",
          targets: [{ expr: `sum by (status) (${httpRate()})`, legend: "{{status}}" }],
        },
        {
          title: "Response time percentiles",
          kind: "timeseries",
          unit: "s",
          targets: [
            { expr: latency(0.5), legend: "p50" },
            { expr: latency(0.95), legend: "p95" },
            { expr: latency(0.99), legend: "p99" },
          ],
        },
        {
          title: "Error ratio by endpoint",
          kind: "timeseries",
          unit: "percentunit",
          targets: [
            {
              expr:
                `sum by (handler) (${httpRate(', status=~"5.."')}) / ` +
                `sum by (handler) (${httpRate()})`,
              legend: "{{handler}}",
            },
          ],
        },
        {
          title: "Status code distribution (last hour)",
          kind: "piechart",
          targets: [
            {
              expr: `sum by (status) (increase(http_requests_total{${api}}[1h]))`,
              legend: "{{status}}",
            },
          ],
        },
        {
          title: "Slowest endpoints (p95)",
          kind: "table",
          unit: "s",
          targets: [{ expr: `topk(10, ${latency(0.95, "handler, le")})`, legend: "{{handler}}" }],
        },
        {
          title: "Busiest endpoints",
          kind: "table",
          unit: "reqps",
          targets: [{ expr: `topk(10, sum by (handler) (${httpRate()}))`, legend: "{{handler}}" }],
        },
        {
          title: "API CPU by pod",
          kind: "timeseries",
          targets: [
            {
              expr: `sum by (pod) (rate(container_cpu_usage_seconds_total{${ns}, container="stock-analysis-api"}[5m]))`,
              legend: "{{pod}}",
            },
          ],
        },
        {
          title: "API memory by pod",
          kind: "timeseries",
          unit: "bytes",
          targets: [
            {
              expr: `sum by (pod) (container_memory_working_set_bytes{${ns}, container="stock-analysis-api"})`,
              legend: "{{pod}}",
            },
          ],
        },
      ],
    },
    {
      uid: "stock-analysis-infra",
      title: "Stock Analysis / Infrastructure",
      tags: ["stock-analysis", "infrastructure"],
      panels: [
        {
          title: "Node CPU usage",
          kind: "timeseries",
          unit: "percent",
          targets: [
            {
              expr: '100 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m])) * 100',
              legend: "{{instance}}",
            },
          ],
        },
        {
          title: "Node memory usage",
          kind: "timeseries",
          unit: "percent",
          targets: [
            {
              expr: "(1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes) * 100",
              legend: "{{instance}}",
            },
          ],
        },
        {
          title: "Node disk usage",
          kind: "timeseries",
          unit: "percent",
          targets: [
            {
              expr:
                '100 * (1 - node_filesystem_avail_bytes{fstype!~"tmpfs|overlay"} / ' +
                'node_filesystem_size_bytes{fstype!~"tmpfs|overlay"})',
              legend: "{{instance}} {{mountpoint}}",
            },
          ],
        },
        {
          title: "Node load (1m)",
          kind: "timeseries",
          targets: [{ expr: "node_load1", legend: "{{instance}}" }],
        },
        {
          title: "Network I/O",
          kind: "timeseries",
          unit: "Bps",
          targets: [
            {
              expr: 'sum by (instance) (rate(node_network_receive_bytes_total{device!="lo"}[5m]))',
              legend: "{{instance}} rx",
            },
            {
              expr: 'sum by (instance) (rate(node_network_transmit_bytes_total{device!="lo"}[5m]))',
              legend: "{{instance}} tx",
            },
          ],
        },
        {
          title: "Disk I/O",
          kind: "timeseries",
          unit: "Bps",
          targets: [
            {
              expr: "sum by (instance) (rate(node_disk_read_bytes_total[5m]))",
              legend: "{{instance}} read",
            },
            {
              expr: "sum by (instance) (rate(node_disk_written_bytes_total[5m]))",
              legend: "{{instance}} write",
            },
          ],
        },
        {
          title: "Pods by phase",
          kind: "bargauge",
          targets: [{ expr: `sum by (phase) (kube_pod_status_phase{${ns}})`, legend: "{{phase}}" }],
        },
        {
          title: "Container restarts (last hour)",
          kind: "table",
          targets: [
            {
              expr: `topk(10, sum by (pod) (increase(kube_pod_container_status_restarts_total{${ns}}[1h])))`,
              legend: "{{pod}}",
            },
          ],
        },
        {
          title: "Workload replicas available / desired",
          kind: "table",
          targets: [
            {
              expr: `kube_deployment_status_replicas_available{${ns}} / kube_deployment_spec_replicas{${ns}}`,
              legend: "{{deployment}}",
            },
            {
              expr: `kube_statefulset_status_replicas_ready{${ns}} / kube_statefulset_replicas{${ns}}`,
              legend: "{{statefulset}}",
            },
          ],
        },
        {
          title: "Volume usage",
          kind: "bargauge",
          unit: "percentunit",
          targets: [
            {
              expr:
                `1 - kubelet_volume_stats_available_bytes{${ns}} / ` +
                `kubelet_volume_stats_capacity_bytes{${ns}}`,
              legend: "{{persistentvolumeclaim}}",
            },
          ],
        },
        {
          title: "Platform requests / node allocatable",
          description:
            "kube-state-metrics watches this namespace only: the platform's share of the nodes.",
          kind: "timeseries",
          unit: "percentunit",
          targets: [
            {
              expr:
                'sum(kube_pod_container_resource_requests{resource="cpu"}) / ' +
                'sum(kube_node_status_allocatable{resource="cpu"})',
              legend: "cpu",
            },
            {
              expr:
                'sum(kube_pod_container_resource_requests{resource="memory"}) / ' +
                'sum(kube_node_status_allocatable{resource="memory"})',
              legend: "memory",
            },
          ],
        },
        {
          title: "Data stores",
          kind: "timeseries",
          unit: "bytes",
          targets: [
            { expr: "sum by (datname) (pg_database_size_bytes)", legend: "pg {{datname}}" },
            { expr: "sum by (pod) (redis_memory_used_bytes)", legend: "redis {{pod}}" },
            {
              expr: "max by (application_name) (pg_stat_replication_pg_wal_lsn_diff)",
              legend: "replication lag {{application_name}}",
            },
          ],
        },
        {
          title: "Redis cluster slots ok",
          kind: "stat",
          targets: [{ expr: "min(redis_cluster_slots_ok)" }],
        },
      ],
    },
  ];
}

/** Grafana's JSON model for one dashboard (auto-laid-out grid). */
export function renderDashboard(spec: DashboardSpec): object {
  let x = 0;
  let y = 0;
  const height = 8;
  const panels = spec.panels.map((p, i) => {
    const w = p.width ?? 12;
    if (x + w > 24) {
      x = 0;
      y += height;
    }
    const gridPos = { x, y, w, h: height };
    x += w;
    const datasource =
      p.kind === "logs"
        ? { type: "loki", uid: LOKI_DS_UID }
        : { type: "prometheus", uid: PROMETHEUS_DS_UID };
    const instant = p.kind === "table" || p.kind === "piechart" || p.kind === "bargauge";
    return {
      id: i + 1,
      type: p.kind,
      title: p.title,
      ...(p.description ? { description: p.description } : {}),
      gridPos,
      datasource,
      targets: p.targets.map((t, j) => ({
        refId: String.fromCharCode(65 + j),
        datasource,
        expr: t.expr,
        ...(t.legend ? { legendFormat: t.legend } : {}),
        ...(instant ? { instant: true, format: "table" } : {}),
      })),
      fieldConfig: { defaults: p.unit ? { unit: p.unit } : {}, overrides: [] },
      options: {},
    };
  });
  return {
    uid: spec.uid,
    title: spec.title,
    tags: spec.tags,
    editable: false,
    timezone: "browser",
    schemaVersion: 39,
    version: 1,
    refresh: "30s",
    time: { from: "now-6h", to: "now" },
    panels,
  };
}
