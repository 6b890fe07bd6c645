import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { MonitoringConfig } from "../config/monitoring";
import {
  restrictedContainerSecurity,
  restrictedPodSecurity,
  selectorLabels,
  toResourceRequirements,
  workloadLabels,
} from "../lib/k8s";
import { monitoringIdentity } from "./k8s";

export interface NodeExporterArgs {
  provider: k8s.Provider;
  instance: string;
  /** Image, resources and `namespace` (default "stock-analysis-node-exporter"), created here. */
  config: MonitoringConfig["nodeExporter"];
  port: number;
  /** Plain name of the namespace Prometheus runs in: the only peer allowed to scrape. */
  prometheusNamespace: string;
}

const NAME = "node-exporter";

/**
 * node_exporter on every node. It needs the host's /proc, /sys and root filesystem (read-only)
 * and the host network namespace for NIC statistics; it still runs as nobody with no
 * capabilities. Tolerates every taint so control-plane nodes are covered too.
 *
 * The platform namespace enforces the "restricted" Pod Security Standard, which rejects host
 * access, so node-exporter gets a namespace of its own enforcing "privileged" and holding nothing
 * else, closed by its own default-deny NetworkPolicy.
 */
export class NodeExporter extends pulumi.ComponentResource {
  /** The node-exporter namespace (resolves once it exists, so dependants wait for it). */
  public readonly namespace: pulumi.Output<string>;

  constructor(name: string, args: NodeExporterArgs, opts?: pulumi.ComponentResourceOptions) {
    super("stock-analysis:monitoring:NodeExporter", name, {}, opts);
    const child = { parent: this, provider: args.provider };
    const labels = workloadLabels(NAME, "monitoring", args.instance);
    const selector = selectorLabels(NAME);

    const ns = new k8s.core.v1.Namespace(
      `${NAME}-namespace`,
      {
        metadata: {
          name: args.config.namespace,
          labels: {
            ...labels,
            "pod-security.kubernetes.io/enforce": "privileged",
            "pod-security.kubernetes.io/enforce-version": "latest",
          },
        },
      },
      child,
    );
    this.namespace = ns.metadata.name;
    const meta = { name: NAME, namespace: this.namespace, labels };

    new k8s.networking.v1.NetworkPolicy(
      `${NAME}-default-deny`,
      {
        metadata: { name: "default-deny-all", namespace: this.namespace, labels },
        spec: { podSelector: {}, policyTypes: ["Ingress", "Egress"] },
      },
      child,
    );
    const sa = monitoringIdentity(this, args.provider, {
      name: NAME,
      namespace: this.namespace,
      labels,
      selector,
      access: {
        ingressFrom: [
          {
            namespace: args.prometheusNamespace,
            podLabels: { app: "prometheus" },
            ports: [args.port],
          },
        ],
      },
      noToken: true,
    });
    const host = (n: string, path: string) => ({ name: n, hostPath: { path } });
    new k8s.apps.v1.DaemonSet(
      NAME,
      {
        metadata: meta,
        spec: {
          selector: { matchLabels: selector },
          updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } },
          template: {
            metadata: { labels },
            spec: {
              serviceAccountName: sa.metadata.name,
              automountServiceAccountToken: false,
              hostNetwork: true,
              hostPID: false,
              dnsPolicy: "ClusterFirstWithHostNet",
              securityContext: restrictedPodSecurity(65534),
              tolerations: [{ operator: "Exists" }],
              containers: [
                {
                  name: NAME,
                  image: args.config.image,
                  args: [
                    `--web.listen-address=:${args.port}`,
                    "--path.procfs=/host/proc",
                    "--path.sysfs=/host/sys",
                    "--path.rootfs=/host/root",
                    "--collector.filesystem.mount-points-exclude=^/(dev|proc|sys|run|var/lib/kubelet/.+)($|/)",
                  ],
                  ports: [{ name: "http", containerPort: args.port, hostPort: args.port }],
                  readinessProbe: { httpGet: { path: "/", port: "http" }, periodSeconds: 10 },
                  livenessProbe: {
                    httpGet: { path: "/", port: "http" },
                    periodSeconds: 30,
                    timeoutSeconds: 5,
                    failureThreshold: 3,
                  },
                  resources: toResourceRequirements(args.config.resources),
                  securityContext: restrictedContainerSecurity(true),
                  volumeMounts: [
                    { name: "proc", mountPath: "/host/proc", readOnly: true },
                    { name: "sys", mountPath: "/host/sys", readOnly: true },
                    {
                      name: "root",
                      mountPath: "/host/root",
                      readOnly: true,
                      mountPropagation: "HostToContainer",
                    },
                  ],
                },
              ],
              volumes: [host("proc", "/proc"), host("sys", "/sys"), host("root", "/")],
            },
          },
        },
      },
      child,
    );
    // No effect on host-network pods, but states the intended peers (and applies if hostNetwork
    // is ever dropped): only Prometheus scrapes, nothing is reached.
    this.registerOutputs({ namespace: this.namespace });
  }
}
