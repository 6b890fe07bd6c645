import { stringify } from "yaml";
import { LOKI_DS_UID, PROMETHEUS_DS_UID } from "./dashboards";

export interface GrafanaProvisioningOptions {
  /** In-cluster URL of Prometheus, e.g. `http://prometheus:9090`. */
  readonly prometheusUrl: string;
  /** In-cluster URL of Loki, e.g. `http://loki:3100`. */
  readonly lokiUrl: string;
  /** Directory the dashboards ConfigMap is mounted at. */
  readonly dashboardsDir: string;
}

/** provisioning/datasources/datasources.yaml: Prometheus (default) and Loki with fixed uids. */
export function renderGrafanaDatasources(opts: GrafanaProvisioningOptions): string {
  return stringify({
    apiVersion: 1,
    datasources: [
      {
        name: "Prometheus",
        type: "prometheus",
        uid: PROMETHEUS_DS_UID,
        access: "proxy",
        url: opts.prometheusUrl,
        isDefault: true,
        editable: false,
        jsonData: { timeInterval: "15s" },
      },
      {
        name: "Loki",
        type: "loki",
        uid: LOKI_DS_UID,
        access: "proxy",
        url: opts.lokiUrl,
        editable: false,
      },
    ],
  });
}

/** provisioning/dashboards/provider.yaml: load the dashboards from files, read-only in the UI. */
export function renderGrafanaDashboardProvider(opts: GrafanaProvisioningOptions): string {
  return stringify({
    apiVersion: 1,
    providers: [
      {
        name: "stock-analysis",
        folder: "Stock Analysis",
        type: "file",
        disableDeletion: true,
        allowUiUpdates: false,
        options: { path: opts.dashboardsDir },
      },
    ],
  });
}
