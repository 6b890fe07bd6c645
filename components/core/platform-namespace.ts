import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { PART_OF } from "../lib/k8s";

export interface PlatformNamespaceArgs {
  provider: k8s.Provider;
  /** Namespace name. The manual's runbooks use `stock-analysis`. */
  name: string;
  /** Stack name, recorded as the environment label. */
  environment: string;
  /**
   * Pod Security Standard enforced by admission. Default "restricted": every pod of the
   * platform runs non-root without privileges, so the strictest level costs nothing.
   */
  podSecurity?: "restricted" | "baseline" | "privileged";
}

/**
 * The platform's namespace. It starts closed: a default-deny NetworkPolicy for ingress and
 * egress, plus DNS egress (every pod resolves service names). Components add their own allows.
 */
export class PlatformNamespace extends pulumi.ComponentResource {
  /** The namespace name, for placing every other object. */
  public readonly name: pulumi.Output<string>;

  constructor(name: string, args: PlatformNamespaceArgs, opts?: pulumi.ComponentResourceOptions) {
    super("stock-analysis:core:PlatformNamespace", name, {}, opts);
    const child = { parent: this, provider: args.provider };
    const level = args.podSecurity ?? "restricted";

    const ns = new k8s.core.v1.Namespace(
      name,
      {
        metadata: {
          name: args.name,
          labels: {
            "app.kubernetes.io/part-of": PART_OF,
            "app.kubernetes.io/managed-by": "pulumi",
            "stock-analysis.io/environment": args.environment,
            "pod-security.kubernetes.io/enforce": level,
            "pod-security.kubernetes.io/enforce-version": "latest",
            "pod-security.kubernetes.io/warn": "restricted",
            "pod-security.kubernetes.io/audit": "restricted",
          },
        },
      },
      child,
    );
    this.name = ns.metadata.name;

    const common = {
      namespace: this.name,
      labels: { "app.kubernetes.io/part-of": PART_OF, "app.kubernetes.io/managed-by": "pulumi" },
    };
    new k8s.networking.v1.NetworkPolicy(
      `${name}-default-deny`,
      {
        metadata: { ...common, name: "default-deny-all" },
        spec: { podSelector: {}, policyTypes: ["Ingress", "Egress"] },
      },
      child,
    );
    new k8s.networking.v1.NetworkPolicy(
      `${name}-allow-dns`,
      {
        metadata: { ...common, name: "allow-dns-egress" },
        spec: {
          podSelector: {},
          policyTypes: ["Egress"],
          egress: [
            {
              to: [
                {
                  namespaceSelector: {
                    matchLabels: { "kubernetes.io/metadata.name": "kube-system" },
                  },
                  podSelector: { matchLabels: { "k8s-app": "kube-dns" } },
                },
              ],
              ports: [
                { protocol: "UDP", port: 53 },
                { protocol: "TCP", port: 53 },
              ],
            },
          ],
        },
      },
      child,
    );
    this.registerOutputs({ name: this.name });
  }
}
