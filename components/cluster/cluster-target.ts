import * as command from "@pulumi/command";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { ClusterConfig } from "../config/platform";
import { kindAddonsScript, kindClusterConfig } from "./kind";

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

  constructor(name: string, args: ClusterTargetArgs, opts?: pulumi.ComponentResourceOptions) {
    super("stock-analysis:cluster:ClusterTarget", name, {}, opts);
    const c = args.config;
    switch (c.mode) {
      case "existing":
        this.provider = new k8s.Provider(
          `${name}-k8s`,
          { context: c.context, kubeconfig: c.kubeconfig, enableServerSideApply: true },
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
        this.provider = new k8s.Provider(
          `${name}-k8s`,
          { kubeconfig: pulumi.secret(kubeconfig.stdout), enableServerSideApply: true },
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
}
