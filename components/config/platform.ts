import { closeSync, existsSync, openSync, readdirSync, readSync } from "node:fs";
import { join } from "node:path";
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

/** Where Go's time.LoadLocation (and so Kubernetes) finds the tz database on a Linux host. */
export const ZONEINFO_DIR = "/usr/share/zoneinfo";

/** True when `dir/name` is a tz database entry spelled exactly so (case-sensitive), a TZif file. */
function inZoneinfo(dir: string, name: string): boolean {
  let cur = dir;
  for (const part of name.split("/")) {
    let entries: string[];
    try {
      entries = readdirSync(cur);
    } catch {
      return false;
    }
    if (!entries.includes(part)) return false;
    cur = join(cur, part);
  }
  try {
    const head = Buffer.alloc(4);
    const fd = openSync(cur, "r");
    try {
      readSync(fd, head, 0, 4, 0);
    } finally {
      closeSync(fd);
    }
    return head.toString("latin1") === "TZif";
  } catch {
    return false;
  }
}

/**
 * Checks a CronJob `timeZone` the way the Kubernetes API server does (Go's time.LoadLocation over
 * the IANA tz database, "Local" refused), without a cluster: the name must be known to Node's ICU
 * copy of the tz database (aliases included) and, where the host has one, be an entry of its
 * /usr/share/zoneinfo spelled exactly so; Go, unlike ICU, is case-sensitive. Returns undefined when
 * valid, else the reason, with the right spelling when only the case was wrong.
 */
export function timeZoneProblem(
  name: string,
  zoneinfoDir: string = ZONEINFO_DIR,
): string | undefined {
  const rule =
    'must be a tz database time zone such as "Asia/Shanghai" or "Etc/UTC" (case-sensitive, as Kubernetes reads it)';
  if (!/^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/.test(name) || name === "Local") return rule;
  let icuName: string;
  try {
    icuName = new Intl.DateTimeFormat("en-US", { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    return rule;
  }
  if (existsSync(zoneinfoDir)) {
    if (inZoneinfo(zoneinfoDir, name)) return undefined;
    const hint =
      icuName.toLowerCase() === name.toLowerCase() ? ` (did you mean "${icuName}"?)` : "";
    return `${rule}${hint}`;
  }
  // No tz files on this host (Windows): ICU matches names case-insensitively, so at least
  // insist on its spelling of canonical names.
  if (icuName !== name && icuName.toLowerCase() === name.toLowerCase())
    return `${rule} (did you mean "${icuName}"?)`;
  return undefined;
}

/**
 * Time zone of every CronJob schedule in the stack (`CronJob.spec.timeZone`): backups, their
 * verification, maintenance. A tz database name; prod runs on the operations team's clock.
 */
export const timeZoneSchema = z.string().superRefine((v, ctx) => {
  const problem = timeZoneProblem(v);
  if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
});
