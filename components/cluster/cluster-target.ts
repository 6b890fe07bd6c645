import * as command from "@pulumi/command";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { ClusterConfig } from "../config/platform";
import { kindAddonsScript, kindClusterConfig } from "./kind";

/**
 * Options of the provider for a live cluster.
 * - Server-side apply: field ownership lets the HPA (scale subresource) and us share a Deployment.
 * - Mutable ConfigMaps and Secrets: by default the provider replaces them on any data change,
 *   which leaves every consumer's reference unknown during preview and so replaces whole
 *   StatefulSets (all PostgreSQL or Redis members deleted at once). Updated in place, a content
 *   change rolls consumers one pod at a time through the `checksum/config` annotation their pod
 *   templates carry; the primary-selection ConfigMap changes without a roll, as designed.
 */
export const LIVE_PROVIDER_OPTIONS = {
  enableServerSideApply: true,
  enableConfigMapMutable: true,
  enableSecretMutable: true,
} as const;

export interface ClusterTargetArgs {
  config: ClusterConfig;
}

/**
 * Where the platform is deployed, as the one explicit Kubernetes provider every component gets.
 * mode=kind creates a local cluster with the kind CLI (and deletes it on destroy).
 */
export class ClusterTarget extends pulumi.ComponentResource {
  public readonly provider: k8s.Provider;
  /** What must exist before cluster add-ons are used (the ingress controller's webhook). */
  public readonly addonsReady: pulumi.Resource[] = [];
  /** kind: the cluster's name and its creation, for loading locally built images. */
  private kindCluster?: { name: string; created: pulumi.Resource };

  constructor(name: string, args: ClusterTargetArgs, opts?: pulumi.ComponentResourceOptions) {
    super("stock-analysis:cluster:ClusterTarget", name, {}, opts);
    const c = args.config;
    switch (c.mode) {
      case "existing":
        this.provider = new k8s.Provider(
          `${name}-k8s`,
          { context: c.context, kubeconfig: c.kubeconfig, ...LIVE_PROVIDER_OPTIONS },
          { parent: this },
        );
        break;
      case "kind": {
        const clusterName = c.kind.name;
        const cluster = new command.local.Command(
          `${name}-kind`,
          {
            create: `kind create cluster --name ${clusterName} --wait 180s --config -`,
            stdin: kindClusterConfig(c.kind.nodeImage, c.kind.workers),
            delete: `kind delete cluster --name ${clusterName}`,
            triggers: [clusterName, c.kind.nodeImage, c.kind.workers],
          },
          { parent: this },
        );
        const kubeconfig = new command.local.Command(
          `${name}-kind-kubeconfig`,
          { create: `kind get kubeconfig --name ${clusterName}`, triggers: [clusterName] },
          // The kubeconfig holds client credentials: keep it encrypted in state.
          { parent: this, dependsOn: [cluster], additionalSecretOutputs: ["stdout"] },
        );
        const addons = new command.local.Command(
          `${name}-kind-addons`,
          {
            create: kindAddonsScript,
            interpreter: ["bash", "-c"],
            environment: {
              KUBE_CONTEXT: `kind-${clusterName}`,
              INGRESS_NGINX_VERSION: c.kind.ingressNginxVersion,
              METRICS_SERVER_VERSION: c.kind.metricsServerVersion,
            },
            triggers: [clusterName, c.kind.ingressNginxVersion, c.kind.metricsServerVersion],
          },
          { parent: this, dependsOn: [cluster] },
        );
        this.addonsReady.push(addons);
        this.kindCluster = { name: clusterName, created: cluster };
        this.provider = new k8s.Provider(
          `${name}-k8s`,
          { kubeconfig: pulumi.secret(kubeconfig.stdout), ...LIVE_PROVIDER_OPTIONS },
          { parent: this },
        );
        break;
      }
      case "yaml":
        this.provider = new k8s.Provider(
          `${name}-k8s`,
          { renderYamlToDirectory: c.renderDir },
          { parent: this },
        );
        break;
    }
    this.registerOutputs({});
  }

  /**
   * Makes an image built into the local Docker engine (no registry) runnable: kind nodes get it
   * with `kind load docker-image`; elsewhere the name is returned unchanged (it must be pullable).
   */
  public localImage(name: string, image: pulumi.Output<string>): pulumi.Output<string> {
    const kind = this.kindCluster;
    if (!kind) return image;
    const load = new command.local.Command(
      `${name}-kind-load`,
      {
        create: pulumi.interpolate`kind load docker-image ${image} --name ${kind.name}`,
        triggers: [image],
      },
      { parent: this, dependsOn: [kind.created] },
    );
    return pulumi.all([image, load.stdout]).apply(([i]) => i);
  }
}
