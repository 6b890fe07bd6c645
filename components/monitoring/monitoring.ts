import * as pulumi from "@pulumi/pulumi";
import type { MonitoringConfig } from "../config/monitoring";
import type { ClusterPlacement, NetworkPeer, SecretKeyRef } from "../lib/k8s";
import { Alertmanager, ALERTMANAGER_PORT } from "./alertmanager";
import { alertGroups, PostgresBackupAlertOptions, renderAlertRules } from "./alert-rules";
import { renderAlertmanagerConfig } from "./alertmanager-config";
import { CeleryExporter } from "./celery-exporter";
import { Grafana, GRAFANA_PORT, type GrafanaIngress } from "./grafana";
import { KubeStateMetrics } from "./kube-state-metrics";
import { LogAgent } from "./log-agent";
import { Loki, LOKI_PORT } from "./loki";
import { NodeExporter } from "./node-exporter";
import { Prometheus } from "./prometheus";
import { METRICS_PORTS, platformScrapeTargets } from "./prometheus-config";

/** Notification endpoints from secret stack config; any may be unset (that channel is dropped). */
export interface AlertEndpoints {
  slackApiUrl?: pulumi.Input<string>;
  pagerWebhookUrl?: pulumi.Input<string>;
  webhookUrl?: pulumi.Input<string>;
  smtpPassword?: pulumi.Input<string>;
}

export interface MonitoringArgs extends ClusterPlacement {
  /** Plain namespace name: discovery, RBAC and dashboards are scoped to it. */
  namespaceName: string;
  /** app.kubernetes.io/instance: the stack name. */
  instance: string;
  config: MonitoringConfig;
  alertEndpoints: AlertEndpoints;
  /** API port, for its explicit scrape job. Default 8000. */
  apiPort?: number;
  /** Streaming replicas the PostgreSQL primary should have (0: no replica-missing alert). */
  postgresReplicas: number;
  /** PostgreSQL backups when enabled: WAL-archiving and verification alerts. */
  postgresBackup?: PostgresBackupAlertOptions;
  /** The ingress-nginx controller: scraped for TLS expiry, and Grafana's optional entry. */
  ingress?: GrafanaIngress & { metricsPort?: number };
  /** Celery broker URL Secret; without it no Celery exporter is deployed. */
  celery?: { brokerUrl: SecretKeyRef; queues: string[]; broker: NetworkPeer };
}

/**
 * The monitoring stack of the platform: Prometheus with its rules, kube-state-metrics,
 * node-exporter, the Celery exporter, Alertmanager, Grafana, Loki and the log agent. Everything
 * is reachable under stable Service names: prometheus, alertmanager, grafana, loki. All of it runs
 * in the platform namespace except node-exporter, which gets its own privileged namespace.
 */
export class Monitoring extends pulumi.ComponentResource {
  public readonly prometheusUrl: pulumi.Output<string>;
  public readonly alertmanagerUrl: pulumi.Output<string>;
  public readonly grafanaUrl: pulumi.Output<string>;
  public readonly lokiUrl: pulumi.Output<string>;
  /** Secret with Grafana's admin `user` and `password`. */
  public readonly grafanaAdminSecret: pulumi.Output<string>;
  /** Public Grafana URL when published through the ingress. */
  public readonly grafanaPublicUrl?: string;

  constructor(name: string, args: MonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    super("stock-analysis:monitoring:Monitoring", name, {}, opts);
    const c = args.config;
    const placement = { provider: args.provider, namespace: args.namespace };
    const base = { ...placement, instance: args.instance };
    const child = { parent: this };
    const svc = (n: string, port: number) => `http://${n}.${args.namespaceName}.svc:${port}`;

    const rulesYaml = renderAlertRules(
      alertGroups({
        namespace: args.namespaceName,
        runbookUrl: c.runbookUrl,
        postgresReplicas: args.postgresReplicas,
        postgresBackup: args.postgresBackup,
      }),
      c.runbookUrl,
    );
    const ingressMetricsPort = args.ingress?.metricsPort ?? 10254;
    // Before Prometheus: its discovery Role lives in node-exporter's namespace.
    const nodeExporter = new NodeExporter(
      `${name}-node-exporter`,
      {
        provider: args.provider,
        instance: args.instance,
        config: c.nodeExporter,
        port: METRICS_PORTS.nodeExporter,
        prometheusNamespace: args.namespaceName,
      },
      child,
    );
    const prometheus = new Prometheus(
      `${name}-prometheus`,
      {
        ...base,
        namespaceName: args.namespaceName,
        config: c.prometheus,
        rulesYaml,
        targets: platformScrapeTargets(c.nodeExporter.namespace, args.apiPort),
        alertmanagerPort: ALERTMANAGER_PORT,
        nodeExporter: {
          namespace: nodeExporter.namespace,
          namespaceName: c.nodeExporter.namespace,
          port: METRICS_PORTS.nodeExporter,
        },
        ingressNginx: args.ingress
          ? { namespace: args.ingress.controllerNamespace, port: ingressMetricsPort }
          : undefined,
      },
      child,
    );

    const e = args.alertEndpoints;
    const amConfig = pulumi
      .all([e.slackApiUrl, e.pagerWebhookUrl, e.webhookUrl, e.smtpPassword])
      .apply(([slackApiUrl, pagerWebhookUrl, webhookUrl, smtpPassword]) =>
        renderAlertmanagerConfig({
          smtp: {
            smarthost: c.alerting.smtpSmarthost,
            from: c.alerting.smtpFrom,
            authUsername: c.alerting.smtpUsername,
            authPassword: smtpPassword,
          },
          slackApiUrl,
          pagerWebhookUrl,
          webhookUrl,
          defaultEmail: c.alerting.defaultEmail,
          teams: c.alerting.teams,
        }),
      );
    const alertmanager = new Alertmanager(
      `${name}-alertmanager`,
      { ...base, config: c.alertmanager, configYaml: pulumi.secret(amConfig) },
      child,
    );

    const loki = new Loki(`${name}-loki`, { ...base, config: c.loki }, child);
    new LogAgent(
      `${name}-log-agent`,
      {
        ...base,
        namespaceName: args.namespaceName,
        config: c.logAgent,
        lokiPushUrl: `${svc("loki", LOKI_PORT)}/loki/api/v1/push`,
      },
      child,
    );
    const grafana = new Grafana(
      `${name}-grafana`,
      {
        ...base,
        namespaceName: args.namespaceName,
        config: c.grafana,
        prometheusUrl: svc("prometheus", 9090),
        lokiUrl: svc("loki", LOKI_PORT),
        ingress: args.ingress,
      },
      child,
    );
    new KubeStateMetrics(
      `${name}-kube-state-metrics`,
      {
        ...base,
        namespaceName: args.namespaceName,
        config: c.kubeStateMetrics,
        port: METRICS_PORTS.kubeStateMetrics,
      },
      child,
    );
    if (args.celery) {
      new CeleryExporter(
        `${name}-celery-exporter`,
        {
          ...base,
          config: c.celeryExporter,
          port: METRICS_PORTS.celeryExporter,
          brokerUrl: args.celery.brokerUrl,
          queues: args.celery.queues,
          broker: args.celery.broker,
        },
        child,
      );
    }

    this.prometheusUrl = prometheus.url;
    this.alertmanagerUrl = pulumi.interpolate`http://${alertmanager.serviceName}.${args.namespaceName}.svc:${ALERTMANAGER_PORT}`;
    this.grafanaUrl = pulumi.interpolate`http://${grafana.serviceName}.${args.namespaceName}.svc:${GRAFANA_PORT}`;
    this.lokiUrl = pulumi.interpolate`http://${loki.serviceName}.${args.namespaceName}.svc:${LOKI_PORT}`;
    this.grafanaAdminSecret = grafana.adminSecretName;
    this.grafanaPublicUrl = grafana.url;
    this.registerOutputs({
      prometheusUrl: this.prometheusUrl,
      alertmanagerUrl: this.alertmanagerUrl,
      grafanaUrl: this.grafanaUrl,
      lokiUrl: this.lokiUrl,
      grafanaAdminSecret: this.grafanaAdminSecret,
    });
  }
}
