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
import { CLUSTER_API_PORTS, monitoringIdentity } from "./k8s";

export interface KubeStateMetricsArgs extends ClusterPlacement {
  namespaceName: string;
  instance: string;
  config: MonitoringConfig["kubeStateMetrics"];
  port: number;
}

const NAME = "kube-state-metrics";
/** Namespaced resources we alert and chart on (pods, workloads, backup Jobs/CronJobs, volumes). */
const NAMESPACED = [
  { apiGroup: "", resource: "pods", flag: "pods" },
  { apiGroup: "", resource: "persistentvolumeclaims", flag: "persistentvolumeclaims" },
  { apiGroup: "apps", resource: "deployments", flag: "deployments" },
  { apiGroup: "apps", resource: "statefulsets", flag: "statefulsets" },
  { apiGroup: "batch", resource: "jobs", flag: "jobs" },
  { apiGroup: "batch", resource: "cronjobs", flag: "cronjobs" },
];

/**
 * kube-state-metrics limited to the platform namespace (plus nodes for capacity), so its RBAC is
 * a namespaced Role for workloads and a ClusterRole for nodes only.
 */
export class KubeStateMetrics extends pulumi.ComponentResource {
  constructor(name: string, args: KubeStateMetricsArgs, opts?: pulumi.ComponentResourceOptions) {
    super("stock-analysis:monitoring:KubeStateMetrics", name, {}, opts);
    const child = { parent: this, provider: args.provider };
    const labels = workloadLabels(NAME, "monitoring", args.instance);
    const selector = selectorLabels(NAME);
    const meta = (n: string) => ({ name: n, namespace: args.namespace, labels });
    const subjects = (sa: k8s.core.v1.ServiceAccount) => [
      { kind: "ServiceAccount", name: sa.metadata.name, namespace: args.namespace },
    ];

    const groups = [...new Set(NAMESPACED.map((r) => r.apiGroup))];
    const sa = monitoringIdentity(this, args.provider, {
      name: NAME,
      namespace: args.namespace,
      labels,
      selector,
      access: { ingressFrom: [{ podLabels: { app: "prometheus" }, ports: [args.port] }] },
      hostPorts: CLUSTER_API_PORTS,
      rules: groups.map((g) => ({
        apiGroups: [g],
        resources: NAMESPACED.filter((r) => r.apiGroup === g).map((r) => r.resource),
        verbs: ["list", "watch"],
      })),
    });
    const nodeRole = new k8s.rbac.v1.ClusterRole(
      `${NAME}-nodes`,
      {
        metadata: { name: `${args.namespaceName}-${NAME}-nodes`, labels },
        rules: [{ apiGroups: [""], resources: ["nodes"], verbs: ["list", "watch"] }],
      },
      child,
    );
    new k8s.rbac.v1.ClusterRoleBinding(
      `${NAME}-nodes`,
      {
        metadata: { name: `${args.namespaceName}-${NAME}-nodes`, labels },
        roleRef: {
          apiGroup: "rbac.authorization.k8s.io",
          kind: "ClusterRole",
          name: nodeRole.metadata.name,
        },
        subjects: subjects(sa),
      },
      child,
    );

    new k8s.core.v1.Service(
      `${NAME}-svc`,
      {
        metadata: meta(NAME),
        spec: { selector, ports: [{ name: "http", port: args.port, targetPort: "http" }] },
      },
      child,
    );
    new k8s.apps.v1.Deployment(
      NAME,
      {
        metadata: meta(NAME),
        spec: {
          replicas: 1,
          selector: { matchLabels: selector },
          template: {
            metadata: { labels },
            spec: {
              serviceAccountName: sa.metadata.name,
              securityContext: restrictedPodSecurity(65534),
              containers: [
                {
                  name: NAME,
                  image: args.config.image,
                  args: [
                    `--port=${args.port}`,
                    `--namespaces=${args.namespaceName}`,
                    `--resources=${[...NAMESPACED.map((r) => r.flag), "nodes"].join(",")}`,
                  ],
                  ports: [{ name: "http", containerPort: args.port }],
                  readinessProbe: { httpGet: { path: "/readyz", port: 8081 }, periodSeconds: 10 },
                  livenessProbe: { httpGet: { path: "/livez", port: "http" }, periodSeconds: 30 },
                  resources: toResourceRequirements(args.config.resources),
                  securityContext: restrictedContainerSecurity(true),
                },
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
