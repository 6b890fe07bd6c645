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
import { spreadOverNodes } from "../lib/workload";
import { checksum, monitoringIdentity } from "./k8s";

export interface AlertmanagerArgs extends ClusterPlacement {
  instance: string;
  config: MonitoringConfig["alertmanager"];
  /** The rendered alertmanager.yml; it embeds credentials, so it only ever goes into a Secret. */
  configYaml: pulumi.Input<string>;
}

const NAME = "alertmanager";
export const ALERTMANAGER_PORT = 9093;
const CLUSTER_PORT = 9094;

/**
 * Alertmanager as a StatefulSet; with 2+ replicas the pods gossip over a headless Service
 * (stable peer names) so silences are shared and each notification is sent once. Prometheus
 * sends every alert to every replica.
 */
export class Alertmanager extends pulumi.ComponentResource {
  public readonly serviceName: pulumi.Output<string>;
  public readonly configSecretName: pulumi.Output<string>;

  constructor(name: string, args: AlertmanagerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("stock-analysis:monitoring:Alertmanager", name, {}, opts);
    const child = { parent: this, provider: args.provider };
    const labels = workloadLabels(NAME, "monitoring", args.instance);
    const selector = selectorLabels(NAME);
    const meta = (n: string) => ({ name: n, namespace: args.namespace, labels });
    const replicas = args.config.replicas;
    const headless = `${NAME}-headless`;

    const secret = new k8s.core.v1.Secret(
      `${NAME}-config`,
      {
        metadata: meta(`${NAME}-config`),
        type: "Opaque",
        stringData: { "alertmanager.yml": pulumi.secret(args.configYaml) },
      },
      child,
    );
    const sa = monitoringIdentity(this, args.provider, {
      name: NAME,
      namespace: args.namespace,
      labels,
      selector,
      access: {
        ingressFrom: [
          { podLabels: { app: "prometheus" }, ports: [ALERTMANAGER_PORT] },
          { podLabels: { app: "grafana" }, ports: [ALERTMANAGER_PORT] },
          { podLabels: { app: NAME }, ports: [CLUSTER_PORT] },
        ],
        egressTo: [{ podLabels: { app: NAME }, ports: [CLUSTER_PORT] }],
      },
      // Notifications leave the cluster: SMTP, HTTPS webhooks (Slack, pager).
      hostPorts: [25, 465, 587, 443],
      noToken: true,
    });
    new k8s.core.v1.Service(
      `${NAME}-headless`,
      {
        metadata: meta(headless),
        spec: {
          clusterIP: "None",
          // Peers must find each other before they are ready (readiness needs the cluster).
          publishNotReadyAddresses: true,
          selector,
          ports: [
            { name: "http", port: ALERTMANAGER_PORT, targetPort: "http" },
            { name: "cluster", port: CLUSTER_PORT, targetPort: "cluster" },
          ],
        },
      },
      child,
    );
    const service = new k8s.core.v1.Service(
      `${NAME}-svc`,
      {
        metadata: meta(NAME),
        spec: { selector, ports: [{ name: "http", port: ALERTMANAGER_PORT, targetPort: "http" }] },
      },
      child,
    );

    const clusterArgs =
      replicas > 1
        ? [
            `--cluster.listen-address=0.0.0.0:${CLUSTER_PORT}`,
            `--cluster.advertise-address=$(POD_IP):${CLUSTER_PORT}`,
            ...Array.from(
              { length: replicas },
              (_, i) => `--cluster.peer=${NAME}-${i}.${headless}:${CLUSTER_PORT}`,
            ),
          ]
        : ["--cluster.listen-address="];

    new k8s.apps.v1.StatefulSet(
      NAME,
      {
        metadata: meta(NAME),
        spec: {
          serviceName: headless,
          replicas,
          podManagementPolicy: "Parallel",
          selector: { matchLabels: selector },
          template: {
            metadata: {
              labels,
              annotations: {
                // Rolls the pods when the config changes. A truncated hash of a file that embeds
                // high-entropy tokens (webhook URLs) reveals nothing, so it need not stay secret.
                "checksum/config": pulumi.unsecret(
                  pulumi.output(args.configYaml).apply((c) => checksum(c)),
                ),
              },
            },
            spec: {
              serviceAccountName: sa.metadata.name,
              automountServiceAccountToken: false,
              securityContext: restrictedPodSecurity(65534),
              topologySpreadConstraints: spreadOverNodes(selector),
              containers: [
                {
                  name: NAME,
                  image: args.config.image,
                  args: [
                    "--config.file=/etc/alertmanager/alertmanager.yml",
                    "--storage.path=/alertmanager",
                    `--web.listen-address=:${ALERTMANAGER_PORT}`,
                    ...clusterArgs,
                  ],
                  env: [{ name: "POD_IP", valueFrom: { fieldRef: { fieldPath: "status.podIP" } } }],
                  ports: [
                    { name: "http", containerPort: ALERTMANAGER_PORT },
                    { name: "cluster", containerPort: CLUSTER_PORT },
                  ],
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
                    { name: "config", mountPath: "/etc/alertmanager", readOnly: true },
                    // Silences and notification log; peers replicate them in HA mode.
                    { name: "data", mountPath: "/alertmanager" },
                  ],
                },
              ],
              volumes: [
                { name: "config", secret: { secretName: secret.metadata.name } },
                { name: "data", emptyDir: { sizeLimit: "256Mi" } },
              ],
            },
          },
        },
      },
      child,
    );

    if (replicas > 1) {
      new k8s.policy.v1.PodDisruptionBudget(
        `${NAME}-pdb`,
        { metadata: meta(NAME), spec: { maxUnavailable: 1, selector: { matchLabels: selector } } },
        child,
      );
    }

    this.serviceName = service.metadata.name;
    this.configSecretName = secret.metadata.name;
    this.registerOutputs({
      serviceName: this.serviceName,
      configSecretName: this.configSecretName,
    });
  }
}
