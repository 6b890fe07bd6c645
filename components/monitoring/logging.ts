import { stringify } from "yaml";

export interface LokiConfigOptions {
  /** How long logs are kept, in hours (prod: 7 days = 168). */
  readonly retentionHours: number;
  readonly httpPort: number;
  /** Data directory (the PVC mount). */
  readonly dataDir: string;
}

/** Single-binary Loki on a filesystem store with compactor-driven retention. */
export function renderLokiConfig(opts: LokiConfigOptions): string {
  const retention = `${opts.retentionHours}h`;
  return stringify({
    auth_enabled: false,
    server: { http_listen_port: opts.httpPort, grpc_listen_port: 9095, log_level: "info" },
    common: {
      path_prefix: opts.dataDir,
      instance_addr: "127.0.0.1",
      replication_factor: 1,
      ring: { kvstore: { store: "inmemory" } },
      storage: {
        filesystem: {
          chunks_directory: `${opts.dataDir}/chunks`,
          rules_directory: `${opts.dataDir}/rules`,
        },
      },
    },
    schema_config: {
      configs: [
        {
          from: "2024-01-01",
          store: "tsdb",
          object_store: "filesystem",
          schema: "v13",
          index: { prefix: "index_", period: "24h" },
        },
      ],
    },
    // Retention is enforced by the compactor; without retention_enabled Loki keeps logs forever.
    compactor: {
      working_directory: `${opts.dataDir}/compactor`,
      retention_enabled: true,
      retention_delete_delay: "2h",
      delete_request_store: "filesystem",
    },
    limits_config: {
      retention_period: retention,
      reject_old_samples: true,
      reject_old_samples_max_age: retention,
      allow_structured_metadata: true,
    },
    analytics: { reporting_enabled: false },
  });
}

export interface LogAgentOptions {
  /** Namespace whose pod logs are shipped. */
  readonly namespace: string;
  /** Loki push endpoint, e.g. `http://loki:3100/loki/api/v1/push`. */
  readonly lokiPushUrl: string;
}

/**
 * Grafana Alloy configuration. Logs are tailed through the Kubernetes API
 * (`loki.source.kubernetes`), so the agent is an unprivileged Deployment: no hostPath to
 * /var/log, no root. Labels match Prometheus' (`namespace`, `pod`, `app`, `container`).
 */
export function renderAlloyConfig(opts: LogAgentOptions): string {
  return `discovery.kubernetes "pods" {
  role = "pod"
  namespaces {
    names = [${JSON.stringify(opts.namespace)}]
  }
}

discovery.relabel "pods" {
  targets = discovery.kubernetes.pods.targets

  rule {
    source_labels = ["__meta_kubernetes_namespace"]
    target_label  = "namespace"
  }
  rule {
    source_labels = ["__meta_kubernetes_pod_name"]
    target_label  = "pod"
  }
  rule {
    source_labels = ["__meta_kubernetes_pod_container_name"]
    target_label  = "container"
  }
  rule {
    source_labels = ["__meta_kubernetes_pod_label_app"]
    target_label  = "app"
  }
}

loki.source.kubernetes "pods" {
  targets    = discovery.relabel.pods.output
  forward_to = [loki.write.default.receiver]
}

loki.write "default" {
  endpoint {
    url = ${JSON.stringify(opts.lokiPushUrl)}
  }
}
`;
}
