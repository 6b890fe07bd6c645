import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { WorkerConfig } from "../config/app";
import {
  plainEnv,
  restrictedContainerSecurity,
  restrictedPodSecurity,
  secretEnv,
  toResourceRequirements,
  writableVolumes,
} from "../lib/k8s";
import { AppWorkloadArgs, appWorkloadCompanions, spreadOverNodes } from "../lib/workload";

/** `name` is e.g. `stock-analysis-celery`; the broker and database come as secretEnv + network. */
export interface CeleryWorkerArgs extends AppWorkloadArgs {
  config: WorkerConfig;
}

/**
 * The worker's liveness command. `celery inspect ping` addressed to this pod's own node name
 * travels through the broker and is answered by the worker's consumer loop, so it fails when
 * the worker is hung or has lost the broker — a process check would not notice either.
 */
export function celeryPingCommand(app: string, timeoutSeconds: number): string[] {
  return [
    "sh",
    "-c",
    `exec celery -A ${app} inspect ping --destination "celery@$HOSTNAME" --timeout ${timeoutSeconds}`,
  ];
}

/** Celery workers as a Deployment with a broker round-trip liveness check. */
export class CeleryWorker extends pulumi.ComponentResource {
  public readonly deploymentName: pulumi.Output<string>;

  constructor(name: string, args: CeleryWorkerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("stock-analysis:app:CeleryWorker", name, {}, opts);
    const c = args.config;
    const writable = writableVolumes(["/tmp"]);
    const { labels, selector, serviceAccount } = appWorkloadCompanions(
      this,
      args,
      "worker",
      c.egress,
    );

    const deployment = new k8s.apps.v1.Deployment(
      args.name,
      {
        metadata: { name: args.name, namespace: args.namespace, labels },
        spec: {
          replicas: c.replicas,
          revisionHistoryLimit: 5,
          selector: { matchLabels: selector },
          strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
          template: {
            metadata: { labels },
            spec: {
              serviceAccountName: serviceAccount.metadata.name,
              automountServiceAccountToken: false,
              securityContext: restrictedPodSecurity(),
              imagePullSecrets: args.imagePullSecrets?.map((n) => ({ name: n })),
              // Celery's warm shutdown finishes running tasks on SIGTERM; give it time to.
              terminationGracePeriodSeconds: 120,
              topologySpreadConstraints: spreadOverNodes(selector),
              containers: [
                {
                  name: args.name,
                  image: args.image ?? c.image,
                  imagePullPolicy: "IfNotPresent",
                  command: ["celery"],
                  args: [
                    "-A",
                    c.app,
                    "worker",
                    "--loglevel=INFO",
                    `--concurrency=${c.concurrency}`,
                    `--queues=${c.queues.join(",")}`,
                    "--hostname=celery@%h",
                    "--without-gossip",
                    "--without-mingle",
                  ],
                  env: [...plainEnv(c.env), ...secretEnv(args.secretEnv ?? {})],
                  resources: toResourceRequirements(c.resources),
                  securityContext: restrictedContainerSecurity(true),
                  livenessProbe: {
                    exec: { command: celeryPingCommand(c.app, c.pingTimeoutSeconds) },
                    initialDelaySeconds: 30,
                    periodSeconds: 60,
                    timeoutSeconds: c.pingTimeoutSeconds + 10,
                    failureThreshold: 3,
                  },
                  volumeMounts: writable.mounts,
                },
              ],
              volumes: writable.volumes,
            },
          },
        },
      },
      { parent: this, provider: args.provider, dependsOn: args.rolloutAfter },
    );
    this.deploymentName = deployment.metadata.name;
    this.registerOutputs({ deploymentName: this.deploymentName });
  }
}
