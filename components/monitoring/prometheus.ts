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
import {
  CLUSTER_API_PORTS,
  PVC_RETAINED,
  checksum,
  monitoringIdentity,
  statefulSetServices,
} from "./k8s";
import { renderPrometheusConfig, type ScrapeTarget } from "./prometheus-config";

export interface PrometheusArgs extends ClusterPlacement {
  /** Plain namespace name (scrape discovery and RBAC need it before apply). */
  namespaceName: string;
  /** app.kubernetes.io/instance: the stack name. */
  instance: string;
  config: MonitoringConfig["prometheus"];
  /** The alert rule file (YAML), mounted from a ConfigMap. */
  rulesYaml: string;
  targets: ScrapeTarget[];
  alertmanagerPort: number;
  /**
   * node-exporter's own namespace (`namespace` an Output of the Namespace resource, so the
   * discovery Role waits for it) and port. It runs on the host network, so egress to it is also
   * allowed by port: NetworkPolicy pod selectors do not match host-network pods.
   */
  nodeExporter: { namespace: pulumi.Input<string>; namespaceName: string; port: number };
  /** ingress-nginx controller to scrape for TLS expiry; omitted when the platform has no ingress. */
  ingressNginx?: { namespace: string; port: number };
}

const NAME = "prometheus";
const PORT = 9090;
const RULES_DIR = "/etc/prometheus/rules";

/**
 * Prometheus as a single-replica StatefulSet with its TSDB on a PVC, config and rules from
 * ConfigMaps (a content checksum rolls the pod on change), and RBAC limited to discovery: pods in
 * the platform, node-exporter (and ingress-nginx) namespaces, nodes and node metrics cluster-wide.
 */
export class Prometheus extends pulumi.ComponentResource {
  public readonly serviceName: pulumi.Output<string>;
  /** `http://prometheus.<ns>.svc:9090` */
  public readonly url: pulumi.Output<string>;

  constructor(name: string, args: PrometheusArgs, opts?: pulumi.ComponentResourceOptions) {
    super("stock-analysis:monitoring:Prometheus", name, {}, opts);
    const child = { parent: this, provider: args.provider };
    const labels = workloadLabels(NAME, "monitoring", args.instance);
    const selector = selectorLabels(NAME);
    const meta = (n: string) => ({ name: n, namespace: args.namespace, labels });

    const configYaml = renderPrometheusConfig({
      namespace: args.namespaceName,
      rulesDir: RULES_DIR,
      alertmanagerPort: args.alertmanagerPort,
      targets: args.targets,
      ingressNginx: args.ingressNginx,
    });
    const config = new k8s.core.v1.ConfigMap(
      `${NAME}-config`,
      { metadata: meta(`${NAME}-config`), data: { "prometheus.yml": configYaml } },
      child,
    );
    const rules = new k8s.core.v1.ConfigMap(
      `${NAME}-rules`,
      { metadata: meta(`${NAME}-rules`), data: { "alert_rules.yml": args.rulesYaml } },
      child,
    );

    const sa = monitoringIdentity(this, args.provider, {
      name: NAME,
      namespace: args.namespace,
      labels,
      selector,
      access: {
        ingressFrom: [{ podLabels: { app: "grafana" }, ports: [PORT] }],
        egressTo: [
          // Scrape targets and Alertmanager in the namespace, on whatever port they expose.
          { ports: [] },
          {
            namespace: args.nodeExporter.namespaceName,
            podLabels: { app: "node-exporter" },
            ports: [args.nodeExporter.port],
          },
          ...(args.ingressNginx
            ? [{ namespace: args.ingressNginx.namespace, ports: [args.ingressNginx.port] }]
            : []),
        ],
      },
      hostPorts: [...CLUSTER_API_PORTS, args.nodeExporter.port],
    });
    // Discovery reads pods only where we scrape: a Role per namespace, not a cluster-wide grant.
    const discoveryNamespaces: { name: string; namespace: pulumi.Input<string> }[] = [
      { name: args.namespaceName, namespace: args.namespace },
      { name: args.nodeExporter.namespaceName, namespace: args.nodeExporter.namespace },
      ...(args.ingressNginx
        ? [{ name: args.ingressNginx.namespace, namespace: args.ingressNginx.namespace }]
        : []),
    ];
    for (const { name: ns, namespace } of discoveryNamespaces) {
      const role = new k8s.rbac.v1.Role(
        `${NAME}-discovery-${ns}`,
        {
          metadata: { name: `${NAME}-discovery`, namespace, labels },
          rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] }],
        },
        child,
      );
      new k8s.rbac.v1.RoleBinding(
        `${NAME}-discovery-${ns}`,
        {
          metadata: { name: `${NAME}-discovery`, namespace, labels },
          roleRef: {
            apiGroup: "rbac.authorization.k8s.io",
            kind: "Role",
            name: role.metadata.name,
          },
          subjects: [{ kind: "ServiceAccount", name: sa.metadata.name, namespace: args.namespace }],
        },
        child,
      );
    }
    // Nodes are cluster-scoped: kubelet/cAdvisor discovery and their metrics endpoints.
    const nodeRole = new k8s.rbac.v1.ClusterRole(
      `${NAME}-nodes`,
      {
        metadata: { name: `${args.namespaceName}-${NAME}-nodes`, labels },
        rules: [
          { apiGroups: [""], resources: ["nodes"], verbs: ["get", "list", "watch"] },
          { apiGroups: [""], resources: ["nodes/metrics"], verbs: ["get"] },
        ],
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
        subjects: [{ kind: "ServiceAccount", name: sa.metadata.name, namespace: args.namespace }],
      },
      child,
    );

    const { service, headless } = statefulSetServices(this, args.provider, {
      name: NAME,
      namespace: args.namespace,
      labels,
      selector,
      port: PORT,
    });

    new k8s.apps.v1.StatefulSet(
      NAME,
      {
        metadata: meta(NAME),
        spec: {
          serviceName: headless.metadata.name,
          replicas: 1,
          // The data volume outlives the StatefulSet (also its replacement, see below).
          persistentVolumeClaimRetentionPolicy: PVC_RETAINED,
          selector: { matchLabels: selector },
          template: {
            metadata: {
              labels,
              annotations: { "checksum/config": checksum(configYaml, args.rulesYaml) },
            },
            spec: {
              serviceAccountName: sa.metadata.name,
              securityContext: restrictedPodSecurity(65534),
              containers: [
                {
                  name: NAME,
                  image: args.config.image,
                  args: [
                    "--config.file=/etc/prometheus/prometheus.yml",
                    "--storage.tsdb.path=/prometheus",
                    `--storage.tsdb.retention.time=${args.config.retention}`,
                    "--web.console.libraries=/usr/share/prometheus/console_libraries",
                    "--web.console.templates=/usr/share/prometheus/consoles",
                  ],
                  ports: [{ name: "http", containerPort: PORT }],
                  readinessProbe: {
                    httpGet: { path: "/-/ready", port: "http" },
                    periodSeconds: 10,
                  },
                  livenessProbe: {
                    httpGet: { path: "/-/healthy", port: "http" },
                    periodSeconds: 30,
                    failureThreshold: 5,
                  },
                  resources: toResourceRequirements(args.config.resources),
                  securityContext: restrictedContainerSecurity(true),
                  volumeMounts: [
                    {
                      name: "config",
                      mountPath: "/etc/prometheus/prometheus.yml",
                      subPath: "prometheus.yml",
                    },
                    { name: "rules", mountPath: RULES_DIR },
                    { name: "data", mountPath: "/prometheus" },
                  ],
                },
              ],
              volumes: [
                { name: "config", configMap: { name: config.metadata.name } },
                { name: "rules", configMap: { name: rules.metadata.name } },
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
    this.url = pulumi.interpolate`http://${service.metadata.name}.${args.namespace}.svc:${PORT}`;
    this.registerOutputs({ serviceName: this.serviceName, url: this.url });
  }
}
