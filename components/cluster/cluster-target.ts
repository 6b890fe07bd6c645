import * as command from "@pulumi/command";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { ClusterConfig } from "../config/platform";

export interface ClusterTargetArgs {
  config: ClusterConfig;
}

/** kind cluster definition: one control plane and `workers` worker nodes. */
export function kindClusterConfig(nodeImage: string, workers: number): string {
  const nodes = ["control-plane", ...Array.from({ length: workers }, () => "worker")]
    .map((role) => `  - role: ${role}\n    image: ${nodeImage}`)
    .join("\n");
  return `kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\nnodes:\n${nodes}\n`;
}

/**
 * Where the platform is deployed, as the one explicit Kubernetes provider every component gets.
 * mode=kind creates a local cluster with the kind CLI (and deletes it on destroy).
 */
export class ClusterTarget extends pulumi.ComponentResource {
  public readonly provider: k8s.Provider;

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
          { parent: this, dependsOn: [cluster] },
        );
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
