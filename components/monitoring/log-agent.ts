import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { MonitoringConfig } from "../config/monitoring";
import {
  ClusterPlacement,
  restrictedContainerSecurity,
  restrictedPodSecurity,
  selectorLabels,
  toResourceRequirements,
  workloadLabels,
} from "../lib/k8s";
import { CLUSTER_API_PORTS, checksum, monitoringIdentity } from "./k8s";
import { renderAlloyConfig } from "./logging";

export interface LogAgentArgs extends ClusterPlacement {
  namespaceName: string;
  instance: string;
  config: MonitoringConfig["logAgent"];
  /** Loki push endpoint. */
  lokiPushUrl: string;
}

const NAME = "log-agent";
const HTTP_PORT = 12345;

/**
 * Grafana Alloy shipping the namespace's pod logs to Loki. It tails logs through the Kubernetes
 * API, so it needs only read access to pods and pods/log in this namespace: no hostPath, no root.
 */
export class LogAgent extends pulumi.ComponentResource {
  constructor(name: string, args: LogAgentArgs, opts?: pulumi.ComponentResourceOptions) {
    super("stock-analysis:monitoring:LogAgent", name, {}, opts);
    const child = { parent: this, provider: args.provider };
    const labels = workloadLabels(NAME, "monitoring", args.instance);
    const selector = selectorLabels(NAME);
    const meta = (n: string) => ({ name: n, namespace: args.namespace, labels });

    const alloy = renderAlloyConfig({
      namespace: args.namespaceName,
      lokiPushUrl: args.lokiPushUrl,
    });
    const config = new k8s.core.v1.ConfigMap(
      `${NAME}-config`,
      { metadata: meta(`${NAME}-config`), data: { "config.alloy": alloy } },
      child,
    );
    const sa = monitoringIdentity(this, args.provider, {
      name: NAME,
      namespace: args.namespace,
      labels,
      selector,
      access: { egressTo: [{ podLabels: { app: "loki" }, ports: [3100] }] },
      hostPorts: CLUSTER_API_PORTS,
      rules: [
        { apiGroups: [""], resources: ["pods", "pods/log"], verbs: ["get", "list", "watch"] },
      ],
    });
    new k8s.apps.v1.Deployment(
      NAME,
      {
        metadata: meta(NAME),
        spec: {
          // One tailer: two would ship every line twice.
          replicas: 1,
          strategy: { type: "Recreate" },
          selector: { matchLabels: selector },
          template: {
            metadata: { labels, annotations: { "checksum/config": checksum(alloy) } },
            spec: {
              serviceAccountName: sa.metadata.name,
              securityContext: restrictedPodSecurity(473),
              containers: [
                {
                  name: NAME,
                  image: args.config.image,
                  args: [
                    "run",
                    "/etc/alloy/config.alloy",
                    "--storage.path=/var/lib/alloy",
                    `--server.http.listen-addr=0.0.0.0:${HTTP_PORT}`,
                    "--disable-reporting",
                  ],
                  ports: [{ name: "http", containerPort: HTTP_PORT }],
                  readinessProbe: {
                    httpGet: { path: "/-/ready", port: "http" },
                    periodSeconds: 10,
                  },
                  livenessProbe: {
                    httpGet: { path: "/-/healthy", port: "http" },
                    periodSeconds: 30,
                    timeoutSeconds: 5,
                    failureThreshold: 5,
                  },
                  resources: toResourceRequirements(args.config.resources),
                  securityContext: restrictedContainerSecurity(true),
                  volumeMounts: [
                    { name: "config", mountPath: "/etc/alloy", readOnly: true },
                    // Read positions; losing them on restart re-reads recent lines only.
                    { name: "data", mountPath: "/var/lib/alloy" },
                    { name: "tmp", mountPath: "/tmp" },
                  ],
                },
              ],
              volumes: [
                { name: "config", configMap: { name: config.metadata.name } },
                { name: "data", emptyDir: { sizeLimit: "256Mi" } },
                { name: "tmp", emptyDir: { sizeLimit: "64Mi" } },
              ],
            },
          },
        },
      },
      child,
    );
    this.registerOutputs({});
  }
}
