/**
 * A small stack that satisfies every policy: namespace with default-deny, a stateless web tier
 * (Deployment, Service, ServiceAccount, PDB, allow policy), PostgreSQL as a 3-replica StatefulSet
 * with its PDB and backup CronJob, Prometheus and Loki (one replica each, exempt in prod.json).
 * Tests break one thing at a time.
 */
import { Obj, clone } from "../helpers/policy";

/** Objects under test are edited freely by path; typing every shape would only restate Kubernetes. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Loose = any;

export const NS = "stock-analysis";

export function labels(name: string, component: string): Record<string, string> {
  return {
    app: name,
    "app.kubernetes.io/name": name,
    "app.kubernetes.io/instance": "prod",
    "app.kubernetes.io/component": component,
    "app.kubernetes.io/part-of": "stock-analysis",
    "app.kubernetes.io/managed-by": "pulumi",
  };
}

const SHARED_LABELS = {
  "app.kubernetes.io/part-of": "stock-analysis",
  "app.kubernetes.io/managed-by": "pulumi",
};

export function container(name: string, image: string, extra: Record<string, unknown> = {}) {
  return {
    name,
    image,
    ports: [{ name: "http", containerPort: 8000 }],
    resources: {
      requests: { cpu: "250m", memory: "256Mi" },
      limits: { memory: "512Mi" },
    },
    securityContext: {
      allowPrivilegeEscalation: false,
      privileged: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    },
    livenessProbe: { httpGet: { path: "/health", port: "http" } },
    readinessProbe: { httpGet: { path: "/health", port: "http" } },
    ...extra,
  };
}

function podSpec(containers: unknown[], extra: Record<string, unknown> = {}) {
  return {
    automountServiceAccountToken: false,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: 10001,
      seccompProfile: { type: "RuntimeDefault" },
    },
    containers,
    ...extra,
  };
}

function meta(name: string, component: string, extra: Record<string, unknown> = {}) {
  return { name, namespace: NS, labels: labels(name, component), ...extra };
}

export function namespace(): Obj {
  return { apiVersion: "v1", kind: "Namespace", metadata: { name: NS, labels: SHARED_LABELS } };
}

export function defaultDeny(): Obj {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: { name: "default-deny-all", namespace: NS, labels: SHARED_LABELS },
    spec: { podSelector: {}, policyTypes: ["Ingress", "Egress"] },
  };
}

export function allowPolicy(app: string): Obj {
  return {
    apiVersion: "networking.k8s.io/v1",
    kind: "NetworkPolicy",
    metadata: meta(`${app}-allow`, "network"),
    spec: {
      podSelector: { matchLabels: { app } },
      policyTypes: ["Ingress", "Egress"],
      ingress: [{ from: [{ podSelector: { matchLabels: { app: "web" } } }] }],
      egress: [],
    },
  };
}

export function webDeployment(): Obj {
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: meta("web", "api"),
    spec: {
      replicas: 3,
      selector: { matchLabels: { app: "web" } },
      template: {
        metadata: { labels: labels("web", "api") },
        spec: podSpec(
          [
            container("web", "stock-analysis:1.0.0", {
              env: [
                { name: "PORT", value: "8000" },
                {
                  name: "SECRET_KEY",
                  valueFrom: { secretKeyRef: { name: "app", key: "secret-key" } },
                },
                {
                  name: "DATABASE_URL",
                  value: "postgresql://app:$(DB_PASSWORD)@postgresql:5432/app",
                },
                { name: "DB_PASSWORD_FILE", value: "/run/secrets/db/password" },
              ],
            }),
          ],
          {
            serviceAccountName: "web",
            topologySpreadConstraints: [
              {
                maxSkew: 1,
                topologyKey: "kubernetes.io/hostname",
                whenUnsatisfiable: "ScheduleAnyway",
                labelSelector: { matchLabels: { app: "web" } },
              },
            ],
            initContainers: [
              container("migrate", "stock-analysis:1.0.0", {
                ports: [],
                livenessProbe: undefined,
                readinessProbe: undefined,
              }),
            ],
          },
        ),
      },
    },
  };
}

export function webService(): Obj {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: meta("web", "api"),
    spec: {
      type: "ClusterIP",
      selector: { app: "web" },
      ports: [{ port: 8000, targetPort: "http" }],
    },
  };
}

export function webServiceAccount(): Obj {
  return {
    apiVersion: "v1",
    kind: "ServiceAccount",
    metadata: meta("web", "api"),
    automountServiceAccountToken: false,
  };
}

export function webPdb(): Obj {
  return {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: meta("web", "api"),
    spec: { maxUnavailable: 1, selector: { matchLabels: { app: "web" } } },
  };
}

export function postgres(): Obj {
  return {
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    metadata: meta("postgresql", "database"),
    spec: {
      replicas: 3,
      serviceName: "postgresql",
      selector: { matchLabels: { app: "postgresql" } },
      template: {
        metadata: { labels: labels("postgresql", "database") },
        spec: podSpec(
          [
            container("postgresql", "postgres:15.8", {
              ports: [{ name: "pg", containerPort: 5432 }],
              env: [
                {
                  name: "POSTGRES_PASSWORD",
                  valueFrom: { secretKeyRef: { name: "postgresql", key: "password" } },
                },
              ],
            }),
          ],
          {
            affinity: {
              podAntiAffinity: {
                preferredDuringSchedulingIgnoredDuringExecution: [
                  {
                    weight: 100,
                    podAffinityTerm: {
                      topologyKey: "kubernetes.io/hostname",
                      labelSelector: { matchLabels: { app: "postgresql" } },
                    },
                  },
                ],
              },
            },
          },
        ),
      },
    },
  };
}

export function postgresPdb(): Obj {
  return {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: meta("postgresql", "database"),
    spec: { maxUnavailable: 1, selector: { matchLabels: { app: "postgresql" } } },
  };
}

export function postgresBackup(days = 30): Obj {
  return {
    apiVersion: "batch/v1",
    kind: "CronJob",
    metadata: meta("postgresql-backup", "backup", {
      labels: {
        ...labels("postgresql-backup", "backup"),
        "backup.stock-analysis.io/target": "postgresql",
      },
      annotations: { "backup.stock-analysis.io/retention-days": String(days) },
    }),
    spec: {
      schedule: "0 2 * * *",
      concurrencyPolicy: "Forbid",
      successfulJobsHistoryLimit: 3,
      failedJobsHistoryLimit: 3,
      startingDeadlineSeconds: 300,
      jobTemplate: {
        spec: {
          activeDeadlineSeconds: 3600,
          backoffLimit: 1,
          template: {
            metadata: { labels: labels("postgresql-backup", "backup") },
            spec: podSpec(
              [
                container("backup", "postgres:15.8", {
                  ports: [],
                  livenessProbe: undefined,
                  readinessProbe: undefined,
                  env: [{ name: "BACKUP_RETENTION_DAYS", value: String(days) }],
                }),
              ],
              { restartPolicy: "Never" },
            ),
          },
        },
      },
    },
  };
}

export function prometheus(retention = "30d"): Obj {
  return {
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    metadata: meta("prometheus", "monitoring"),
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: "prometheus" } },
      template: {
        metadata: { labels: labels("prometheus", "monitoring") },
        spec: podSpec([
          container("prometheus", "quay.io/prometheus/prometheus:v2.53.0", {
            ports: [{ name: "web", containerPort: 9090 }],
            args: [
              "--config.file=/etc/prometheus/prometheus.yml",
              `--storage.tsdb.retention.time=${retention}`,
            ],
          }),
        ]),
      },
    },
  };
}

export function loki(days = "7"): Obj {
  return {
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    metadata: meta("loki", "monitoring", {
      annotations: { "logs.stock-analysis.io/retention-days": days },
    }),
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: "loki" } },
      template: {
        metadata: { labels: labels("loki", "monitoring") },
        spec: podSpec([
          container("loki", "grafana/loki:3.1.1", {
            ports: [{ name: "http", containerPort: 3100 }],
          }),
        ]),
      },
    },
  };
}

/** Monitoring data is rebuilt by scraping and shipping again; it is not backed up. */
export const MONITORING_EXEMPTIONS = {
  "backup-coverage": {
    exemptions: {
      "StatefulSet/prometheus": "metrics are re-scraped; TSDB loss is acceptable",
      "StatefulSet/loki": "logs are also kept by the cluster's node log rotation",
    },
  },
};

export function compliantStack(): Obj[] {
  return [
    namespace(),
    defaultDeny(),
    webDeployment(),
    webService(),
    webServiceAccount(),
    webPdb(),
    allowPolicy("web"),
    postgres(),
    postgresPdb(),
    allowPolicy("postgresql"),
    postgresBackup(),
    allowPolicy("postgresql-backup"),
    prometheus(),
    allowPolicy("prometheus"),
    loki(),
    allowPolicy("loki"),
  ];
}

/** The compliant stack with the object `kind/name` replaced by a copy changed by `edit`. */
export function withEdit(kind: string, name: string, edit: (o: Loose) => unknown): Obj[] {
  const out: Obj[] = [];
  let found = false;
  for (const o of compliantStack()) {
    if (o.kind !== kind || o.metadata.name !== name) {
      out.push(o);
      continue;
    }
    found = true;
    const c = clone(o);
    edit(c);
    out.push(c);
  }
  if (!found) throw new Error(`no ${kind}/${name} in the fixture stack`);
  return out;
}

/** The compliant stack without the object `kind/name`. */
export function without(kind: string, name: string): Obj[] {
  const out = compliantStack().filter((o) => o.kind !== kind || o.metadata.name !== name);
  if (out.length === compliantStack().length)
    throw new Error(`no ${kind}/${name} in the fixture stack`);
  return out;
}
