import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { MonitoringConfig } from "../config/monitoring";
import {
  dataClaim,
  ClusterPlacement,
  restrictedContainerSecurity,
  restrictedPodSecurity,
  selectorLabels,
  toResourceRequirements,
  workloadLabels,
} from "../lib/k8s";
import { PVC_RETAINED, checksum, monitoringIdentity, statefulSetServices } from "./k8s";
import { renderLokiConfig } from "./logging";

export interface LokiArgs extends ClusterPlacement {
  instance: string;
  config: MonitoringConfig["loki"];
}

const NAME = "loki";
const LOG_RETENTION_ANNOTATION = "logs.stock-analysis.io/retention-days";
export const LOKI_PORT = 3100;
const DATA_DIR = "/var/loki";

/** Single-binary Loki (StatefulSet, filesystem store on a PVC) with compactor retention. */
export class Loki extends pulumi.ComponentResource {
  public readonly serviceName: pulumi.Output<string>;

  constructor(name: string, args: LokiArgs, opts?: pulumi.ComponentResourceOptions) {
    super("stock-analysis:monitoring:Loki", name, {}, opts);
    const child = { parent: this, provider: args.provider };
    const labels = workloadLabels(NAME, "monitoring", args.instance);
    const selector = selectorLabels(NAME);
    const meta = (n: string) => ({ name: n, namespace: args.namespace, labels });

    const configYaml = renderLokiConfig({
      retentionHours: args.config.retentionDays * 24,
      httpPort: LOKI_PORT,
      dataDir: DATA_DIR,
    });
    const config = new k8s.core.v1.ConfigMap(
      `${NAME}-config`,
      { metadata: meta(`${NAME}-config`), data: { "loki.yaml": configYaml } },
      child,
    );
    const sa = monitoringIdentity(this, args.provider, {
      name: NAME,
      namespace: args.namespace,
      labels,
      selector,
      access: {
        ingressFrom: [
          { podLabels: { app: "log-agent" }, ports: [LOKI_PORT] },
          { podLabels: { app: "grafana" }, ports: [LOKI_PORT] },
          { podLabels: { app: "prometheus" }, ports: [LOKI_PORT] },
        ],
      },
      noToken: true,
    });
    const { service, headless } = statefulSetServices(this, args.provider, {
      name: NAME,
      namespace: args.namespace,
      labels,
      selector,
      port: LOKI_PORT,
    });
    new k8s.apps.v1.StatefulSet(
      NAME,
      {
        metadata: {
          ...meta(NAME),
          // Declares the retention for the policy pack's log-retention check (same setting).
          annotations: { [LOG_RETENTION_ANNOTATION]: String(args.config.retentionDays) },
        },
        spec: {
          serviceName: headless.metadata.name,
          replicas: 1,
          // The data volume outlives the StatefulSet (also its replacement, see below).
          persistentVolumeClaimRetentionPolicy: PVC_RETAINED,
          selector: { matchLabels: selector },
          template: {
            metadata: { labels, annotations: { "checksum/config": checksum(configYaml) } },
            spec: {
              serviceAccountName: sa.metadata.name,
              automountServiceAccountToken: false,
              securityContext: restrictedPodSecurity(10001),
              containers: [
                {
                  name: NAME,
                  image: args.config.image,
                  args: ["-config.file=/etc/loki/loki.yaml", "-target=all"],
                  ports: [{ name: "http", containerPort: LOKI_PORT }],
                  readinessProbe: {
                    httpGet: { path: "/ready", port: "http" },
                    initialDelaySeconds: 15,
                    periodSeconds: 10,
                  },
                  // /ready also fails while the ingester joins its ring and replays the WAL after a
                  // restart: wait long and tolerate minutes of not-ready before restarting.
                  livenessProbe: {
                    httpGet: { path: "/ready", port: "http" },
                    initialDelaySeconds: 120,
                    periodSeconds: 30,
                    timeoutSeconds: 5,
                    failureThreshold: 10,
                  },
                  resources: toResourceRequirements(args.config.resources),
                  securityContext: restrictedContainerSecurity(true),
                  volumeMounts: [
                    { name: "config", mountPath: "/etc/loki", readOnly: true },
                    { name: "data", mountPath: DATA_DIR },
                    { name: "tmp", mountPath: "/tmp" },
                  ],
                },
              ],
              volumes: [
                { name: "config", configMap: { name: config.metadata.name } },
                { name: "tmp", emptyDir: { sizeLimit: "64Mi" } },
              ],
            },
          },
          volumeClaimTemplates: [
            dataClaim(labels, {
              size: args.config.storage,
              storageClass: args.config.storageClass,
            }),
          ],
        },
      },
      // serviceName is immutable: a change replaces the StatefulSet. Same name, so delete first;
      // the PVC stays and the new pod mounts it (docs/RUNBOOK.md, one-time migration).
      { ...child, deleteBeforeReplace: true },
    );
    this.serviceName = service.metadata.name;
    this.registerOutputs({ serviceName: this.serviceName });
  }
}
