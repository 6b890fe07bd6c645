import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { MonitoringConfig } from "../config/monitoring";
import {
  ClusterPlacement,
  NetworkPeer,
  SecretKeyRef,
  restrictedContainerSecurity,
  restrictedPodSecurity,
  secretEnv,
  selectorLabels,
  toResourceRequirements,
  workloadLabels,
} from "../lib/k8s";
import { monitoringIdentity } from "./k8s";

export interface CeleryExporterArgs extends ClusterPlacement {
  instance: string;
  config: MonitoringConfig["celeryExporter"];
  port: number;
  /** Celery's broker URL (it carries the password), from the broker's Secret. */
  brokerUrl: SecretKeyRef;
  /** Queues reported even before a worker has consumed from them. */
  queues: string[];
  /** The broker pods the exporter may reach. */
  broker: NetworkPeer;
}

const NAME = "celery-exporter";

/** danihodovic/celery-exporter: queue lengths and task/worker events as Prometheus metrics. */
export class CeleryExporter extends pulumi.ComponentResource {
  constructor(name: string, args: CeleryExporterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("stock-analysis:monitoring:CeleryExporter", name, {}, opts);
    const child = { parent: this, provider: args.provider };
    const labels = workloadLabels(NAME, "monitoring", args.instance);
    const selector = selectorLabels(NAME);
    const meta = { name: NAME, namespace: args.namespace, labels };

    const sa = monitoringIdentity(this, args.provider, {
      name: NAME,
      namespace: args.namespace,
      labels,
      selector,
      access: {
        ingressFrom: [{ podLabels: { app: "prometheus" }, ports: [args.port] }],
        egressTo: [args.broker],
      },
      noToken: true,
    });
    new k8s.apps.v1.Deployment(
      NAME,
      {
        metadata: meta,
        spec: {
          replicas: 1,
          selector: { matchLabels: selector },
          template: {
            metadata: { labels },
            spec: {
              serviceAccountName: sa.metadata.name,
              automountServiceAccountToken: false,
              securityContext: restrictedPodSecurity(10001),
              containers: [
                {
                  name: NAME,
                  image: args.config.image,
                  args: [
                    `--port=${args.port}`,
                    `--queues=${args.queues.join(",")}`,
                    "--retry-interval=5",
                  ],
                  env: secretEnv({ CE_BROKER_URL: args.brokerUrl }),
                  ports: [{ name: "http", containerPort: args.port }],
                  readinessProbe: { httpGet: { path: "/health", port: "http" }, periodSeconds: 15 },
                  livenessProbe: {
                    httpGet: { path: "/health", port: "http" },
                    periodSeconds: 30,
                    timeoutSeconds: 5,
                    failureThreshold: 4,
                  },
                  resources: toResourceRequirements(args.config.resources),
                  securityContext: restrictedContainerSecurity(true),
                  volumeMounts: [{ name: "tmp", mountPath: "/tmp" }],
                },
              ],
              volumes: [{ name: "tmp", emptyDir: { sizeLimit: "64Mi" } }],
            },
          },
        },
      },
      child,
    );
    this.registerOutputs({});
  }
}
