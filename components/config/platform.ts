import { z } from "zod";
import { dnsLabel, hostname, pinnedImage, secretOf } from "./validators";

export const clusterSchema = z
  .strictObject({
    /**
     * existing: deploy into the cluster of a kubeconfig context.
     * kind: create a local kind cluster first (needs Docker and the kind CLI), deleted on destroy.
     * yaml: no cluster at all; the provider writes manifests to `renderDir` (GitOps, CI previews).
     */
    mode: z.enum(["existing", "kind", "yaml"]).default("existing"),
    /** kubeconfig context for mode=existing; the current context when unset. */
    context: z.string().min(1).optional(),
    /** Path of the kubeconfig file for mode=existing; $KUBECONFIG or ~/.kube/config when unset. */
    kubeconfig: z.string().min(1).optional(),
    kind: z
      .strictObject({
        name: dnsLabel.default("stock-analysis"),
        nodeImage: pinnedImage.default("kindest/node:v1.31.4"),
        workers: z.number().int().min(0).max(5).default(1),
        /** ingress-nginx release installed into the kind cluster (its kind manifest). */
        ingressNginxVersion: z
          .string()
          .regex(/^\d+\.\d+\.\d+$/)
          .default("1.11.3"),
        /** metrics-server release installed so the HPA has CPU metrics. */
        metricsServerVersion: z
          .string()
          .regex(/^\d+\.\d+\.\d+$/)
          .default("0.7.2"),
      })
      .prefault({}),
    renderDir: z.string().min(1).default("rendered"),
    /**
     * Prerequisite kinds the mode=existing preflight does not check, each a deliberate waiver
     * (say, MetricsAPI on a test cluster without metrics-server, where the HPA just never scales).
     * Default: none.
     */
    preflightWaivers: z
      .array(
        z.enum([
          "Namespace",
          "StorageClass",
          "DefaultStorageClass",
          "IngressClass",
          "Issuer",
          "ClusterIssuer",
          "MetricsAPI",
        ]),
      )
      .default([]),
  })
  .superRefine((c, ctx) => {
    if (c.mode !== "existing" && (c.context !== undefined || c.kubeconfig !== undefined)) {
      ctx.addIssue({
        code: "custom",
        path: ["context"],
        message: `only applies to mode "existing" (mode is "${c.mode}")`,
      });
    }
  });
export type ClusterConfig = z.output<typeof clusterSchema>;

export const ingressSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    className: z.string().min(1).default("nginx"),
    /** Namespace of the ingress-nginx controller: the only source allowed into web pods. */
    controllerNamespace: dnsLabel.default("ingress-nginx"),
    /** Hosts serving the frontend at `/` and the API at `/api`. */
    hosts: z.array(hostname).min(1).default(["stock-analysis.localtest.me"]),
    /** Extra hosts serving the API at `/` (the manual's api.<domain>/health). */
    apiHosts: z.array(hostname).default([]),
    tls: z
      .strictObject({
        /** cert-manager: an issuer fills the secret; secret: an existing TLS secret; none: plain HTTP. */
        mode: z.enum(["cert-manager", "secret", "none"]).default("none"),
        issuer: z.string().min(1).optional(),
        issuerKind: z.enum(["ClusterIssuer", "Issuer"]).default("ClusterIssuer"),
        secretName: dnsLabel.default("stock-analysis-tls"),
      })
      .prefault({}),
    /** Request body limit, e.g. for CSV uploads. */
    maxBodySize: z
      .string()
      .regex(/^[0-9]+[kmg]?$/, { message: 'must be an nginx size such as "10m"' })
      .default("10m"),
  })
  .superRefine((i, ctx) => {
    if (i.tls.mode === "cert-manager" && i.tls.issuer === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["tls", "issuer"],
        message: 'is required when tls.mode is "cert-manager"',
      });
    }
  });
export type IngressConfig = z.output<typeof ingressSchema>;

/** A private registry; its password is a separate top-level secret key (registryPassword). */
export const registrySchema = z.strictObject({
  server: z.string().min(1),
  username: z.string().min(1),
});

export const registryPasswordSchema = secretOf(z.string().min(1));
