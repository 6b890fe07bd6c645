import type { PlatformConfig } from "../config/schema";
import { KubeReader, kubeReader } from "./kube-client";

/**
 * What a stack assumes an existing cluster already has. Checked before any resource is
 * registered, so a missing piece fails `pulumi preview`/`up` with one message instead of a
 * half-applied stack (objects in a namespace that does not exist, PVCs Pending forever).
 */
/** Offline renders (scripts/render.ts, tests) have no cluster to ask: they set this to "skip". */
export const PREFLIGHT_ENV = "STOCK_ANALYSIS_PREFLIGHT";

export type Requirement =
  | { kind: "Namespace"; name: string; why: string }
  | { kind: "StorageClass"; name: string; why: string }
  | { kind: "DefaultStorageClass"; why: string }
  | { kind: "IngressClass"; name: string; why: string }
  | { kind: "Issuer" | "ClusterIssuer"; name: string; namespace?: string; why: string }
  | { kind: "MetricsAPI"; why: string };

/** Every PVC the stack creates, by config key, with its StorageClass (undefined: the default). */
export function storageClaims(cfg: PlatformConfig): { key: string; storageClass?: string }[] {
  const claims: { key: string; storageClass?: string }[] = [
    { key: "postgres.storage", storageClass: cfg.postgres.storage.storageClass },
    { key: "redis.cluster.storage", storageClass: cfg.redis.cluster.storage.storageClass },
    { key: "redis.broker.storage", storageClass: cfg.redis.broker.storage.storageClass },
  ];
  // The backup-verify pod's ephemeral scratch volume, in the members' StorageClass.
  if (cfg.postgres.backup.enabled)
    claims.push({
      key: "postgres.backup.verifyStorage",
      storageClass: cfg.postgres.storage.storageClass,
    });
  if (cfg.redis.backup.enabled)
    claims.push({
      key: "redis.backup.storage",
      storageClass: cfg.redis.backup.storage.storageClass,
    });
  if (cfg.monitoring.enabled)
    claims.push(
      { key: "monitoring.prometheus", storageClass: cfg.monitoring.prometheus.storageClass },
      { key: "monitoring.loki", storageClass: cfg.monitoring.loki.storageClass },
    );
  return claims;
}

/** The prerequisites of a stack's config, each with the config that needs it. Pure. */
export function clusterRequirements(cfg: PlatformConfig): Requirement[] {
  const reqs: Requirement[] = [];
  const ingress = cfg.ingress;
  if (ingress.enabled) {
    reqs.push({
      kind: "IngressClass",
      name: ingress.className,
      why: "ingress.className (the Ingresses name it)",
    });
    if (cfg.monitoring.enabled)
      reqs.push({
        kind: "Namespace",
        name: ingress.controllerNamespace,
        why: "ingress.controllerNamespace (Prometheus' discovery Role for the controller's metrics goes there)",
      });
    if (ingress.tls.mode === "cert-manager" && ingress.tls.issuer)
      reqs.push({
        kind: ingress.tls.issuerKind,
        name: ingress.tls.issuer,
        namespace: ingress.tls.issuerKind === "Issuer" ? cfg.namespace : undefined,
        why: "ingress.tls.issuer (cert-manager fills the TLS Secret)",
      });
  }
  const byClass = new Map<string, string[]>();
  const onDefault: string[] = [];
  for (const c of storageClaims(cfg)) {
    if (c.storageClass === undefined) onDefault.push(c.key);
    else byClass.set(c.storageClass, [...(byClass.get(c.storageClass) ?? []), c.key]);
  }
  for (const [name, keys] of byClass)
    reqs.push({ kind: "StorageClass", name, why: keys.map((k) => `${k}.storageClass`).join(", ") });
  if (onDefault.length > 0)
    reqs.push({
      kind: "DefaultStorageClass",
      why: `${onDefault.join(", ")} (no storageClass set)`,
    });
  const hpa = (["api", "frontend"] as const).filter((k) => cfg[k].autoscaling.enabled);
  if (hpa.length > 0)
    reqs.push({
      kind: "MetricsAPI",
      why:
        hpa.map((k) => `${k}.autoscaling`).join(", ") + " (the HPA reads CPU from metrics.k8s.io)",
    });
  return reqs;
}

/** A short label of a requirement, as the message and the e2e print it. */
export function describeRequirement(r: Requirement): string {
  switch (r.kind) {
    case "DefaultStorageClass":
      return "a default StorageClass";
    case "MetricsAPI":
      return "the metrics API (metrics.k8s.io, served by metrics-server)";
    case "Issuer":
      return `cert-manager Issuer ${r.namespace}/${r.name}`;
    case "ClusterIssuer":
      return `cert-manager ClusterIssuer ${r.name}`;
    default:
      return `${r.kind} ${r.name}`;
  }
}

/** How to provide what is missing. */
function remedy(r: Requirement): string {
  switch (r.kind) {
    case "Namespace":
      return "install ingress-nginx there, or set ingress.controllerNamespace to where it runs";
    case "StorageClass":
      return `create the StorageClass (kubectl get storageclass lists what exists), or set ${r.why.split(",")[0]} to one of them`;
    case "DefaultStorageClass":
      return 'mark one StorageClass with the annotation storageclass.kubernetes.io/is-default-class="true", or set the storageClass keys';
    case "IngressClass":
      return "install ingress-nginx (it creates IngressClass nginx), or set ingress.className";
    case "Issuer":
    case "ClusterIssuer":
      return `install cert-manager and create the ${r.kind}, or set ingress.tls.mode to "secret"`;
    case "MetricsAPI":
      return "install metrics-server, or disable autoscaling";
  }
}

function isDefaultClass(sc: Record<string, unknown>): boolean {
  const ann = (sc.metadata as { annotations?: Record<string, string> } | undefined)?.annotations;
  return (
    ann?.["storageclass.kubernetes.io/is-default-class"] === "true" ||
    ann?.["storageclass.beta.kubernetes.io/is-default-class"] === "true"
  );
}

/** Why `r` is not satisfied by the cluster, or undefined when it is. */
async function unmet(k: KubeReader, r: Requirement): Promise<string | undefined> {
  switch (r.kind) {
    case "Namespace":
      return (await k.get(`/api/v1/namespaces/${r.name}`)) ? undefined : "not found";
    case "StorageClass":
      return (await k.get(`/apis/storage.k8s.io/v1/storageclasses/${r.name}`))
        ? undefined
        : "not found";
    case "DefaultStorageClass": {
      const list = await k.get("/apis/storage.k8s.io/v1/storageclasses");
      const items = (list?.items as Record<string, unknown>[] | undefined) ?? [];
      return items.some(isDefaultClass) ? undefined : "none is marked default";
    }
    case "IngressClass":
      return (await k.get(`/apis/networking.k8s.io/v1/ingressclasses/${r.name}`))
        ? undefined
        : "not found";
    case "Issuer":
    case "ClusterIssuer": {
      const plural = r.kind === "Issuer" ? "issuers" : "clusterissuers";
      const crd = await k.get(
        `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${plural}.cert-manager.io`,
      );
      if (!crd) return "cert-manager is not installed (no CRD " + plural + ".cert-manager.io)";
      const where = r.kind === "Issuer" ? `namespaces/${r.namespace}/` : "";
      return (await k.get(`/apis/cert-manager.io/v1/${where}${plural}/${r.name}`))
        ? undefined
        : "not found";
    }
    case "MetricsAPI": {
      const svc = await k.get("/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io");
      if (!svc) return "not registered";
      const conditions =
        (svc.status as { conditions?: { type: string; status: string }[] } | undefined)
          ?.conditions ?? [];
      return conditions.some((c) => c.type === "Available" && c.status === "True")
        ? undefined
        : "registered but not Available";
    }
  }
}

export interface PreflightResult {
  requirement: Requirement;
  /** Undefined when the cluster has it. */
  problem?: string;
}

/** Checks every requirement against the cluster (all of them, so one run lists everything). */
export async function checkCluster(k: KubeReader, reqs: Requirement[]): Promise<PreflightResult[]> {
  return Promise.all(reqs.map(async (r) => ({ requirement: r, problem: await unmet(k, r) })));
}

export class PreflightError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PreflightError";
  }
}

/** One message naming each missing prerequisite, the config that needs it and how to provide it. */
export function preflightMessage(server: string, results: PreflightResult[]): string | undefined {
  const missing = results.filter((r) => r.problem !== undefined);
  if (missing.length === 0) return undefined;
  const lines = missing.map(
    (m) =>
      `  - ${describeRequirement(m.requirement)}: ${m.problem}; needed by ${m.requirement.why}; ${remedy(m.requirement)}`,
  );
  return `Cluster preflight failed for ${server} (${missing.length} missing):\n${lines.join("\n")}`;
}

/**
 * The program's preflight for mode=existing: throws PreflightError listing what the cluster
 * lacks. A cluster that cannot be reached fails `up`; a preview goes on with a warning, as the
 * kubernetes provider previews from the program's inputs alone (a PR without credentials).
 */
export async function clusterPreflight(
  cfg: PlatformConfig,
  opts: { dryRun: boolean; warn: (msg: string) => void },
): Promise<void> {
  let server = cfg.cluster.context ?? "the current kubeconfig context";
  let results: PreflightResult[];
  try {
    const reader = kubeReader({ kubeconfig: cfg.cluster.kubeconfig, context: cfg.cluster.context });
    server = reader.server;
    const waived = new Set<string>(cfg.cluster.preflightWaivers);
    const reqs = clusterRequirements(cfg);
    for (const r of reqs.filter((x) => waived.has(x.kind)))
      opts.warn(
        `Cluster preflight: ${describeRequirement(r)} not checked (cluster.preflightWaivers)`,
      );
    results = await checkCluster(
      reader,
      reqs.filter((r) => !waived.has(r.kind)),
    );
  } catch (e) {
    const msg = `Cluster preflight could not ask ${server}: ${e instanceof Error ? e.message : String(e)}`;
    if (!opts.dryRun) throw new PreflightError(msg);
    opts.warn(`${msg}; the preview goes on without it`);
    return;
  }
  const message = preflightMessage(server, results);
  if (message) throw new PreflightError(message);
}
