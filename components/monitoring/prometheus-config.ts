import { stringify } from "yaml";

/** A workload whose pods Prometheus scrapes by an explicit job (selected by their `app` label). */
export interface ScrapeTarget {
  readonly job: string;
  /** Regex on the pod label `app` (PromQL/relabel regexes are fully anchored). */
  readonly app: string;
  readonly port: number;
  /** Namespace its pods run in; default the platform namespace. */
  readonly namespace?: string;
  /** Default `/metrics`. */
  readonly path?: string;
  /**
   * Keep the exporter's own `namespace`/`pod` labels and attach no pod labels of the target, for
   * exporters that describe other objects (kube-state-metrics).
   */
  readonly describesOthers?: boolean;
  /** Use the node name as `instance` (per-node exporters), so alerts name the node. */
  readonly instanceFromNode?: boolean;
  /** Metric names dropped at scrape time (another source owns the name). */
  readonly dropMetrics?: readonly string[];
}

export interface PrometheusConfigOptions {
  /** Namespace of the platform and the monitoring stack. */
  readonly namespace: string;
  /** Directory holding the rule files inside the Prometheus container. */
  readonly rulesDir: string;
  readonly alertmanagerPort: number;
  /**
   * Explicit jobs; pods they cover are excluded from annotation discovery to avoid double scrapes.
   * Prometheus needs pod discovery rights in each namespace they name.
   */
  readonly targets: readonly ScrapeTarget[];
  /** Namespace of the ingress-nginx controller, whose metrics carry TLS expiry; omit to skip. */
  readonly ingressNginx?: { readonly namespace: string; readonly port: number };
  /** Where the pod's service-account token and CA are mounted. Default: the Kubernetes path. */
  readonly serviceAccountDir?: string;
}

const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** Relabelling shared by pod jobs: address from the port, and stable `namespace`/`pod`/`app` labels. */
function podTargetLabels(): object[] {
  return [
    { source_labels: ["__meta_kubernetes_namespace"], target_label: "namespace" },
    { source_labels: ["__meta_kubernetes_pod_name"], target_label: "pod" },
    { source_labels: ["__meta_kubernetes_pod_label_app"], target_label: "app" },
    { source_labels: ["__meta_kubernetes_pod_node_name"], target_label: "node" },
  ];
}

/**
 * Scrape `<pod IP>:<port>` whether or not the container declares the port (sidecar exporters
 * often do not). Pod discovery yields one target per declared port; they collapse into one
 * because identical targets are deduplicated.
 */
function podAddress(port: number): object {
  return {
    source_labels: ["__meta_kubernetes_pod_ip"],
    regex: "(.+)",
    replacement: `$1:${port}`,
    target_label: "__address__",
  };
}

function podSd(namespace: string): object[] {
  return [{ role: "pod", namespaces: { names: [namespace] } }];
}

function explicitJob(namespace: string, t: ScrapeTarget): object {
  return {
    job_name: t.job,
    metrics_path: t.path ?? "/metrics",
    honor_labels: t.describesOthers ?? false,
    kubernetes_sd_configs: podSd(t.namespace ?? namespace),
    relabel_configs: [
      { source_labels: ["__meta_kubernetes_pod_label_app"], regex: t.app, action: "keep" },
      { source_labels: ["__meta_kubernetes_pod_phase"], regex: "Running", action: "keep" },
      podAddress(t.port),
      ...(t.describesOthers ? [] : podTargetLabels()),
      ...(t.instanceFromNode
        ? [{ source_labels: ["__meta_kubernetes_pod_node_name"], target_label: "instance" }]
        : []),
    ],
    ...(t.dropMetrics?.length
      ? {
          metric_relabel_configs: [
            {
              source_labels: ["__name__"],
              regex: t.dropMetrics.join("|"),
              action: "drop",
            },
          ],
        }
      : {}),
  };
}

function kubeletJob(jobName: string, path: string, saDir: string): object {
  return {
    job_name: jobName,
    scheme: "https",
    metrics_path: path,
    kubernetes_sd_configs: [{ role: "node" }],
    // Kubelet serving certificates are commonly self-signed per node; the bearer token still
    // authenticates us and RBAC (nodes/metrics) authorises the read.
    tls_config: {
      ca_file: `${saDir}/ca.crt`,
      insecure_skip_verify: true,
    },
    authorization: { credentials_file: `${saDir}/token` },
    relabel_configs: [{ source_labels: ["__meta_kubernetes_node_name"], target_label: "node" }],
  };
}

/** prometheus.yml: the manual's global settings, annotation discovery, explicit jobs, alerting. */
export function renderPrometheusConfig(opts: PrometheusConfigOptions): string {
  const explicitApps = opts.targets.map((t) => t.app).join("|");
  const saDir = opts.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  const config = {
    global: {
      scrape_interval: "15s",
      evaluation_interval: "15s",
      external_labels: { cluster: opts.namespace },
    },
    rule_files: [`${opts.rulesDir}/*.yml`],
    alerting: {
      alertmanagers: [
        {
          // Every Alertmanager replica gets every alert (HA pairs deduplicate among themselves);
          // a Service in between would deliver to one only.
          kubernetes_sd_configs: podSd(opts.namespace),
          relabel_configs: [
            {
              source_labels: ["__meta_kubernetes_pod_label_app"],
              regex: "alertmanager",
              action: "keep",
            },
            {
              source_labels: ["__meta_kubernetes_pod_container_port_number"],
              regex: String(opts.alertmanagerPort),
              action: "keep",
            },
          ],
        },
      ],
    },
    scrape_configs: [
      { job_name: "prometheus", static_configs: [{ targets: ["localhost:9090"] }] },
      {
        // The manual's annotation-driven discovery: prometheus.io/scrape, /path and /port.
        job_name: "kubernetes-pods",
        kubernetes_sd_configs: podSd(opts.namespace),
        relabel_configs: [
          {
            source_labels: ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
            regex: "true",
            action: "keep",
          },
          {
            source_labels: ["__meta_kubernetes_pod_label_app"],
            regex: explicitApps,
            action: "drop",
          },
          { source_labels: ["__meta_kubernetes_pod_phase"], regex: "Running", action: "keep" },
          {
            source_labels: ["__meta_kubernetes_pod_annotation_prometheus_io_path"],
            regex: "(.+)",
            target_label: "__metrics_path__",
          },
          {
            source_labels: ["__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port"],
            regex: "([^:]+)(?::\\d+)?;(\\d+)",
            replacement: "$1:$2",
            target_label: "__address__",
          },
          ...podTargetLabels(),
        ],
      },
      ...opts.targets.map((t) => explicitJob(opts.namespace, t)),
      kubeletJob("kubelet", "/metrics", saDir),
      kubeletJob("kubernetes-cadvisor", "/metrics/cadvisor", saDir),
      ...(opts.ingressNginx
        ? [
            {
              job_name: "ingress-nginx",
              kubernetes_sd_configs: podSd(opts.ingressNginx.namespace),
              relabel_configs: [
                {
                  source_labels: ["__meta_kubernetes_pod_label_app_kubernetes_io_name"],
                  regex: "ingress-nginx",
                  action: "keep",
                },
                podAddress(opts.ingressNginx.port),
                // The controller's metrics carry the Ingress' own `namespace`; keep ours apart.
                {
                  source_labels: ["__meta_kubernetes_namespace"],
                  target_label: "controller_namespace",
                },
                { source_labels: ["__meta_kubernetes_pod_name"], target_label: "pod" },
                { replacement: "ingress-nginx", target_label: "app" },
              ],
            },
          ]
        : []),
    ],
  };
  return stringify(config, { lineWidth: 0 });
}

/** Ports of the workloads Prometheus scrapes explicitly. */
export const METRICS_PORTS = {
  api: 8000,
  kubeStateMetrics: 8080,
  nodeExporter: 9100,
  postgresExporter: 9187,
  redisExporter: 9121,
  celeryExporter: 9808,
  alertmanager: 9093,
  grafana: 3000,
  loki: 3100,
} as const;

/**
 * The explicit jobs of the platform: the API, the exporters (PostgreSQL and Redis ones run as
 * sidecars of their components) and the monitoring stack itself. node-exporter runs in a
 * namespace of its own (host access is not allowed in the platform's).
 */
export function platformScrapeTargets(
  nodeExporterNamespace: string,
  apiPort: number = METRICS_PORTS.api,
): ScrapeTarget[] {
  return [
    { job: "stock-analysis-api", app: "stock-analysis-api", port: apiPort },
    {
      job: "kube-state-metrics",
      app: "kube-state-metrics",
      port: METRICS_PORTS.kubeStateMetrics,
      describesOthers: true,
    },
    {
      job: "node-exporter",
      app: "node-exporter",
      namespace: nodeExporterNamespace,
      port: METRICS_PORTS.nodeExporter,
      instanceFromNode: true,
    },
    // Exact names: backup/maintenance Job pods (e.g. app=postgresql-backup) run no exporter.
    { job: "postgres-exporter", app: "postgresql", port: METRICS_PORTS.postgresExporter },
    { job: "redis-exporter", app: "redis|redis-broker", port: METRICS_PORTS.redisExporter },
    {
      job: "celery-exporter",
      app: "celery-exporter",
      port: METRICS_PORTS.celeryExporter,
      // celery_queue_length is recorded from the broker's redis_key_size in every stack (see
      // alert-rules.ts); the exporter's own copy would double every queue's series.
      dropMetrics: ["celery_queue_length"],
    },
    { job: "alertmanager", app: "alertmanager", port: METRICS_PORTS.alertmanager },
    { job: "grafana", app: "grafana", port: METRICS_PORTS.grafana },
    { job: "loki", app: "loki", port: METRICS_PORTS.loki },
  ];
}
