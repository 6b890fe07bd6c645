import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { WebServiceConfig } from "../config/app";
import {
  plainEnv,
  restrictedContainerSecurity,
  restrictedPodSecurity,
  secretEnv,
  selectorLabels,
  toResourceRequirements,
  writableVolumes,
} from "../lib/k8s";
import { AppWorkloadArgs, appWorkloadCompanions, spreadOverNodes } from "../lib/workload";

/** `name` also names the Service. */
export interface WebServiceArgs extends AppWorkloadArgs {
  /** app.kubernetes.io/component, e.g. `api`. */
  component: string;
  /** Validated sizing, ports, probes path and autoscaling. */
  config: WebServiceConfig;
}

/**
 * A stateless HTTP service: Deployment with zero-downtime rolling updates and /health probes,
 * ClusterIP Service, optional HPA (autoscaling/v2), PDB, own ServiceAccount and NetworkPolicy.
 */
export class WebService extends pulumi.ComponentResource {
  /** Service name (also the Deployment name). */
  public readonly serviceName: pulumi.Output<string>;
  /** Cluster DNS name other services use: `<name>.<namespace>.svc.cluster.local`. */
  public readonly dnsName: pulumi.Output<string>;
  public readonly port: number;

  constructor(name: string, args: WebServiceArgs, opts?: pulumi.ComponentResourceOptions) {
    super("stock-analysis:app:WebService", name, {}, opts);
    const c = args.config;
    const child = { parent: this, provider: args.provider };
    const { labels, serviceAccount } = appWorkloadCompanions(this, args, args.component, c.egress);

    const deployment = new k8s.apps.v1.Deployment(
      args.name,
      {
        metadata: { name: args.name, namespace: args.namespace, labels },
        spec: deploymentSpec(args, labels, serviceAccount.metadata.name),
      },
      // The HPA scales through the scale subresource; sending or diffing the count would undo
      // it (and conflict with its field manager under server-side apply).
      {
        ...child,
        dependsOn: args.rolloutAfter,
        ...(c.autoscaling.enabled ? { ignoreChanges: ["spec.replicas"] } : {}),
      },
    );

    const service = new k8s.core.v1.Service(
      `${args.name}-svc`,
      {
        metadata: { name: args.name, namespace: args.namespace, labels },
        spec: {
          type: "ClusterIP",
          selector: selectorLabels(args.name),
          ports: [{ name: "http", port: c.port, targetPort: "http", protocol: "TCP" }],
        },
      },
      child,
    );

    if (c.autoscaling.enabled) {
      new k8s.autoscaling.v2.HorizontalPodAutoscaler(
        `${args.name}-hpa`,
        {
          metadata: { name: args.name, namespace: args.namespace, labels },
          spec: autoscalerSpec(deployment.metadata.name, c.autoscaling),
        },
        child,
      );
    }

    this.serviceName = service.metadata.name;
    this.port = c.port;
    this.dnsName = pulumi.interpolate`${service.metadata.name}.${service.metadata.namespace}.svc.cluster.local`;
    this.registerOutputs({ serviceName: this.serviceName, dnsName: this.dnsName });
  }
}

/**
 * Deployment spec: zero-downtime rolling updates, startup/readiness/liveness on the health path.
 * Carries no `replicas` while an HPA scales it.
 */
export function deploymentSpec(
  args: WebServiceArgs,
  labels: Record<string, string>,
  serviceAccountName: pulumi.Input<string>,
): k8s.types.input.apps.v1.DeploymentSpec {
  const c = args.config;
  const selector = selectorLabels(args.name);
  const writable = writableVolumes(c.writablePaths);
  const httpGet = { path: c.healthPath, port: "http" };
  const podAnnotations: Record<string, string> = c.metrics.enabled
    ? {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": String(c.port),
        "prometheus.io/path": c.metrics.path,
      }
    : {};
  return {
    ...(c.autoscaling.enabled ? {} : { replicas: c.replicas }),
    revisionHistoryLimit: 5,
    minReadySeconds: 5,
    progressDeadlineSeconds: 600,
    selector: { matchLabels: selector },
    // A new pod must be Ready before an old one goes: capacity never drops during a rollout.
    strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
    template: {
      metadata: { labels, annotations: podAnnotations },
      spec: {
        serviceAccountName,
        automountServiceAccountToken: false,
        securityContext: restrictedPodSecurity(),
        imagePullSecrets: args.imagePullSecrets?.map((n) => ({ name: n })),
        terminationGracePeriodSeconds: 30,
        topologySpreadConstraints: spreadOverNodes(selector),
        containers: [
          {
            name: args.name,
            image: args.image ?? c.image,
            imagePullPolicy: "IfNotPresent",
            ports: [{ name: "http", containerPort: c.port, protocol: "TCP" }],
            env: [
              { name: "PORT", value: String(c.port) },
              ...plainEnv(c.env),
              ...secretEnv(args.secretEnv ?? {}),
            ],
            resources: toResourceRequirements(c.resources),
            securityContext: restrictedContainerSecurity(true),
            // Slow first boot (migrations, warm caches) must not trip liveness.
            startupProbe: { httpGet, periodSeconds: 5, timeoutSeconds: 3, failureThreshold: 36 },
            readinessProbe: { httpGet, periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 3 },
            livenessProbe: { httpGet, periodSeconds: 20, timeoutSeconds: 5, failureThreshold: 3 },
            // Endpoints removal propagates asynchronously; keep serving while it does.
            lifecycle: { preStop: { sleep: { seconds: 5 } } },
            volumeMounts: writable.mounts,
          },
        ],
        volumes: writable.volumes,
      },
    },
  };
}

/** HPA on average CPU: up fast on load, down slowly so a short lull does not drop warm pods. */
export function autoscalerSpec(
  deploymentName: pulumi.Input<string>,
  a: WebServiceConfig["autoscaling"],
): k8s.types.input.autoscaling.v2.HorizontalPodAutoscalerSpec {
  return {
    scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: deploymentName },
    minReplicas: a.minReplicas,
    maxReplicas: a.maxReplicas,
    metrics: [
      {
        type: "Resource",
        resource: {
          name: "cpu",
          target: { type: "Utilization", averageUtilization: a.targetCpuUtilization },
        },
      },
    ],
    behavior: {
      scaleUp: { stabilizationWindowSeconds: 0 },
      scaleDown: {
        stabilizationWindowSeconds: 300,
        policies: [{ type: "Pods", value: 1, periodSeconds: 60 }],
      },
    },
  };
}
