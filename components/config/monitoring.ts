import { z } from "zod";
import { resourcesSchema } from "./app";
import { dnsLabel, hostname, memoryQuantity, pinnedImage, secretOf } from "./validators";

const resources = (cpu: string, memory: string, limit: string) =>
  resourcesSchema.default({ requests: { cpu, memory }, limits: { memory: limit } });

/** Prometheus-style duration with one unit, e.g. "30d", "12h". */
const retention = z
  .string()
  .regex(/^[1-9][0-9]*[hdwy]$/, { message: 'must be a duration such as "30d" or "12h"' });

const teamSchema = z.strictObject({
  email: z.email(),
  slackChannel: z.string().regex(/^#[a-z0-9_-]+$/, { message: 'must be a channel such as "#ops"' }),
});

/**
 * Monitoring stack: Prometheus (+ kube-state-metrics, node-exporter, Celery exporter),
 * Alertmanager, Grafana, Loki and the Alloy log agent. Defaults are sized for dev (the whole
 * stack requests ~0.3 CPU / 0.75Gi); prod overrides retention, storage and replicas.
 */
export const monitoringSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** Where operators read docs/RUNBOOK.md; every alert links `<runbookUrl>#<alert>`. */
  runbookUrl: z.url().default("https://github.com/stock-analysis/infra/blob/main/docs/RUNBOOK.md"),
  prometheus: z
    .strictObject({
      image: pinnedImage.default("quay.io/prometheus/prometheus:v2.53.4"),
      /** TSDB retention (prod: 30d). */
      retention: retention.default("2d"),
      storage: memoryQuantity.default("2Gi"),
      /** Storage class of the TSDB volume; the cluster default when unset. */
      storageClass: z.string().min(1).optional(),
      resources: resources("100m", "256Mi", "512Mi"),
    })
    .prefault({}),
  alertmanager: z
    .strictObject({
      image: pinnedImage.default("quay.io/prometheus/alertmanager:v0.27.0"),
      /** 2+ forms a gossip cluster that deduplicates notifications (prod: 2). */
      replicas: z.number().int().min(1).max(5).default(1),
      resources: resources("10m", "32Mi", "64Mi"),
    })
    .prefault({}),
  grafana: z
    .strictObject({
      image: pinnedImage.default("docker.io/grafana/grafana:11.4.0"),
      adminUser: z.string().min(1).default("admin"),
      /** Publish Grafana through the platform's ingress-nginx on this host; unset: port-forward only. */
      ingressHost: hostname.optional(),
      resources: resources("50m", "128Mi", "256Mi"),
    })
    .prefault({}),
  loki: z
    .strictObject({
      image: pinnedImage.default("docker.io/grafana/loki:3.3.2"),
      /** Log retention in days (prod: 7). */
      retentionDays: z.number().int().min(1).max(365).default(2),
      storage: memoryQuantity.default("2Gi"),
      storageClass: z.string().min(1).optional(),
      resources: resources("50m", "128Mi", "256Mi"),
    })
    .prefault({}),
  logAgent: z
    .strictObject({
      image: pinnedImage.default("docker.io/grafana/alloy:v1.5.1"),
      resources: resources("20m", "64Mi", "128Mi"),
    })
    .prefault({}),
  kubeStateMetrics: z
    .strictObject({
      image: pinnedImage.default("registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.13.0"),
      resources: resources("10m", "32Mi", "64Mi"),
    })
    .prefault({}),
  nodeExporter: z
    .strictObject({
      image: pinnedImage.default("quay.io/prometheus/node-exporter:v1.8.2"),
      /**
       * Namespace of its own, labelled with the privileged Pod Security Standard: the platform
       * namespace enforces "restricted", which rejects host network/paths/ports.
       */
      namespace: dnsLabel.default("stock-analysis-node-exporter"),
      resources: resources("10m", "24Mi", "48Mi"),
    })
    .prefault({}),
  celeryExporter: z
    .strictObject({
      image: pinnedImage.default("ghcr.io/danihodovic/celery-exporter:0.12.2"),
      /**
       * Secret key holding Celery's broker URL (with its password). Default: the Redis broker's
       * own `celery-broker` Secret when the broker is standalone; a Sentinel broker needs this set
       * (the exporter cannot pass Sentinel's password), otherwise no exporter is deployed.
       */
      brokerUrlSecret: z.strictObject({ name: dnsLabel, key: z.string().min(1) }).optional(),
      resources: resources("10m", "64Mi", "128Mi"),
    })
    .prefault({}),
  /** Non-secret notification settings; URLs and passwords are the `alert*` secret keys. */
  alerting: z
    .strictObject({
      smtpSmarthost: z
        .string()
        .regex(/^[^:\s]+:\d+$/, { message: "must be host:port" })
        .default("smtp.company.com:587"),
      smtpFrom: z.email().default("alertmanager@company.com"),
      smtpUsername: z.string().min(1).optional(),
      /** Mailbox for alerts that no team owns. */
      defaultEmail: z.email().default("ops@company.com"),
      /**
       * Let a severity reach no one: warnings without `alertSlackWebhookUrl` (their only channel),
       * critical alerts without `alertPagerWebhookUrl` (nobody is paged). Accepted only with
       * cluster.mode "kind" (a laptop stack nobody is on call for), where the render summary says
       * which severity is unnotified; every other stack must set the secrets. Default: false.
       */
      allowUnnotified: z.boolean().default(false),
      teams: z.strictObject({ backend: teamSchema, dba: teamSchema, devops: teamSchema }).default({
        backend: { email: "dev@company.com", slackChannel: "#backend-alerts" },
        dba: { email: "dba@company.com", slackChannel: "#dba-alerts" },
        devops: { email: "admin@company.com", slackChannel: "#devops-alerts" },
      }),
    })
    .prefault({}),
});
export type MonitoringConfig = z.output<typeof monitoringSchema>;

/** A severity whose route reaches no one, and the secret key that would make it reach someone. */
export interface UnnotifiedSeverity {
  readonly severity: "warning" | "critical";
  readonly secretKey: keyof typeof alertSecretSchemas;
  /** What goes wrong, in a few words, for messages and the render summary. */
  readonly problem: string;
}

/**
 * Severities that would notify no one with these endpoints (components/monitoring/
 * alertmanager-config.ts routes them): team warning receivers notify only through Slack, and
 * critical alerts page only through the pager webhook (team email alone wakes no one).
 */
export function unnotifiedSeverities(c: {
  monitoring: { enabled: boolean };
  alertSlackWebhookUrl?: unknown;
  alertPagerWebhookUrl?: unknown;
}): UnnotifiedSeverity[] {
  if (!c.monitoring.enabled) return [];
  const out: UnnotifiedSeverity[] = [];
  if (c.alertSlackWebhookUrl === undefined)
    out.push({
      severity: "warning",
      secretKey: "alertSlackWebhookUrl",
      problem: "warning alerts reach no one (Slack is the team warning receivers' only channel)",
    });
  if (c.alertPagerWebhookUrl === undefined)
    out.push({
      severity: "critical",
      secretKey: "alertPagerWebhookUrl",
      problem: "critical alerts page no one (team email alone wakes nobody)",
    });
  return out;
}

/** Secret top-level keys holding notification endpoints (`pulumi config set --secret …`). */
export const alertSecretSchemas = {
  /** Slack incoming-webhook URL. */
  alertSlackWebhookUrl: secretOf(z.string().min(1)).optional(),
  /** Paging service webhook (PagerDuty/Opsgenie events endpoint or on-call bridge) for critical alerts. */
  alertPagerWebhookUrl: secretOf(z.string().min(1)).optional(),
  /** Extra webhook that receives every team's critical alerts (chat-ops bot, ticketing). */
  alertWebhookUrl: secretOf(z.string().min(1)).optional(),
  /** Password of `monitoring.alerting.smtpUsername`. */
  alertSmtpPassword: secretOf(z.string().min(1)).optional(),
};
