import * as fs from "node:fs";
import * as path from "node:path";
import { stringify } from "yaml";

/**
 * kind cluster definition: one control plane (labelled ingress-ready, host ports 80/443 mapped
 * so the ingress answers on localhost) and `workers` worker nodes, all on the pinned node image.
 */
export function kindClusterConfig(nodeImage: string, workers: number): string {
  return stringify({
    kind: "Cluster",
    apiVersion: "kind.x-k8s.io/v1alpha4",
    nodes: [
      {
        role: "control-plane",
        image: nodeImage,
        kubeadmConfigPatches: [
          'kind: InitConfiguration\nnodeRegistration:\n  kubeletExtraArgs:\n    node-labels: "ingress-ready=true"\n',
        ],
        extraPortMappings: [
          { containerPort: 80, hostPort: 80, protocol: "TCP" },
          { containerPort: 443, hostPort: 443, protocol: "TCP" },
        ],
      },
      ...Array.from({ length: workers }, () => ({ role: "worker", image: nodeImage })),
    ],
  });
}

/** The script that installs ingress-nginx and metrics-server into a fresh kind cluster. */
export const kindAddonsScript: string = fs.readFileSync(
  path.join(__dirname, "scripts/kind-addons.sh"),
  "utf8",
);
