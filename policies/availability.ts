/**
 * Availability (prod): every replicated workload — Deployment or StatefulSet — runs enough
 * replicas, has a drainable PDB, spreads its pods over nodes, and probes every container.
 */
import {
  DEPLOYMENT,
  HPA_TYPES,
  PDB,
  SERVING_TYPES,
  STATEFUL_SET,
  containersOf,
  metadataOf,
  selectorMatches,
  workloadOf,
} from "./lib/k8s";
import { StackObject, resourcePolicy, stackPolicy } from "./lib/policy";
import { absent, arr, at, isUnknown, obj, str } from "./lib/values";

interface ReplicasConfig {
  minReplicas?: number;
}

const DEFAULT_MIN_REPLICAS = 2;

/** Workloads that run N interchangeable-by-count replicas: what the availability rules cover. */
const REPLICATED_TYPES = [DEPLOYMENT, STATEFUL_SET];

export const minimumReplicas = stackPolicy<ReplicasConfig>({
  name: "minimum-replicas",
  description:
    "Replicated workloads (Deployments, StatefulSets, and the HPAs scaling them) run at least the stack's minimum replicas, so one pod loss or a rollout is not an outage.",
  config: {
    properties: {
      minReplicas: {
        type: "integer",
        minimum: 1,
        default: DEFAULT_MIN_REPLICAS,
        description: "Fewest replicas per Deployment or StatefulSet.",
      },
    },
  },
  check(objects, config, report) {
    const minimum = config.minReplicas ?? DEFAULT_MIN_REPLICAS;
    const scaled = autoscaledWorkloads(objects);
    for (const o of objects) {
      const isHpa = HPA_TYPES.includes(o.type);
      if ((!REPLICATED_TYPES.includes(o.type) && !isHpa) || o.exempt !== undefined) continue;
      // An autoscaled workload carries no count of its own; its HPA's floor is checked.
      if (!isHpa && scaled.has(workloadKey(o.type, o.props))) continue;
      const field = isHpa ? "minReplicas" : "replicas";
      const v = at(o.props, "spec", field);
      if (isUnknown(v)) continue;
      const replicas = typeof v === "number" ? v : 1;
      if (replicas < minimum)
        report(
          o,
          `spec.${field} is ${absent(v) ? "unset (1)" : replicas}, below this stack's minimum of ${minimum}`,
          `set the workload's replicas${isHpa ? " (autoscaling.minReplicas)" : ""} to at least ${minimum} in Pulumi.<stack>.yaml`,
        );
    }
  },
});

/** `<Kind>/<namespace>/<name>`: how HPAs (scaleTargetRef) and workloads meet. */
const workloadKey = (type: string, props: Record<string, unknown>) =>
  `${type.split(":")[2]}/${str(metadataOf(props).namespace) ?? ""}/${str(metadataOf(props).name) ?? ""}`;

/** Each workload an HPA scales (by workloadKey), with the HPA's floor (undefined: unknown). */
function autoscaledWorkloads(objects: StackObject[]): Map<string, number | undefined> {
  const out = new Map<string, number | undefined>();
  for (const o of objects) {
    if (!HPA_TYPES.includes(o.type)) continue;
    const ref = obj(at(o.props, "spec", "scaleTargetRef")) ?? {};
    const kind = str(ref.kind);
    if (kind !== "Deployment" && kind !== "StatefulSet") continue;
    const min = at(o.props, "spec", "minReplicas");
    out.set(
      `${kind}/${str(metadataOf(o.props).namespace) ?? ""}/${str(ref.name) ?? ""}`,
      isUnknown(min) ? undefined : typeof min === "number" ? min : 1,
    );
  }
  return out;
}

/**
 * Pods a workload runs at least: its HPA's floor when autoscaled, else spec.replicas (unset: 1).
 * Undefined while unknown in preview.
 */
function steadyReplicas(
  o: { type: string; props: Record<string, unknown> },
  scaled: Map<string, number | undefined>,
): number | undefined {
  const key = workloadKey(o.type, o.props);
  if (scaled.has(key)) return scaled.get(key);
  const v = at(o.props, "spec", "replicas");
  if (isUnknown(v)) return undefined;
  return typeof v === "number" ? v : 1;
}

/** How many pods the PDB lets the eviction API take down at once, given the workload's replicas. */
function allowedDisruptions(pdb: StackObject, replicas: number): number | undefined {
  const spec = obj(pdb.props.spec) ?? {};
  const pct = (v: string) => Number(v.slice(0, -1)) / 100;
  const maxU = spec.maxUnavailable;
  const minA = spec.minAvailable;
  if (isUnknown(maxU) || isUnknown(minA)) return undefined;
  if (typeof maxU === "number") return maxU;
  // Kubernetes rounds both percentages up.
  if (typeof maxU === "string" && maxU.endsWith("%")) return Math.ceil(pct(maxU) * replicas);
  if (typeof minA === "number") return replicas - minA;
  if (typeof minA === "string" && minA.endsWith("%"))
    return replicas - Math.ceil(pct(minA) * replicas);
  // Neither field: policy/v1 behaves as minAvailable: 1.
  return absent(maxU) && absent(minA) ? replicas - 1 : undefined;
}

export const podDisruptionBudget = stackPolicy({
  name: "pod-disruption-budget",
  description:
    "Every replicated workload (Deployment or StatefulSet) has a PodDisruptionBudget that still allows at least one voluntary disruption.",
  check(objects, _config, report) {
    const pdbs = objects.filter((o) => o.type === PDB);
    const scaled = autoscaledWorkloads(objects);
    for (const o of objects) {
      if (!REPLICATED_TYPES.includes(o.type) || o.exempt !== undefined) continue;
      const labels = workloadOf(o.type, o.props)!.podLabels;
      if (!labels) continue;
      const ns = str(metadataOf(o.props).namespace);
      const matching = pdbs.filter((p) => {
        const pns = str(metadataOf(p.props).namespace);
        return (
          (!ns || !pns || ns === pns) &&
          selectorMatches(obj(at(p.props, "spec", "selector")), labels)
        );
      });
      const name = str(metadataOf(o.props).name) ?? "<name>";
      if (matching.length === 0) {
        report(
          o,
          `no PodDisruptionBudget covers its pods, so a node drain may evict all of them at once`,
          `add a PodDisruptionBudget "${name}" with maxUnavailable: 1 and selector matchLabels of the pod labels (workloadCompanions)`,
        );
        continue;
      }
      const replicas = steadyReplicas(o, scaled);
      if (replicas === undefined) continue;
      for (const p of matching) {
        const allowed = allowedDisruptions(p, replicas);
        if (allowed !== undefined && allowed < 1)
          report(
            p,
            `allows no voluntary disruption of ${o.ref} at ${replicas} replicas, so node drains block forever`,
            `use maxUnavailable: 1 (or a minAvailable below the replica count)`,
          );
      }
    }
  },
});

export const replicaSpread = stackPolicy({
  name: "replica-spread",
  description:
    "Replicated workloads (Deployments and StatefulSets) running two or more pods spread them over nodes (pod anti-affinity or a topology spread), so one node loss keeps a replica.",
  check(objects, _config, report) {
    const scaled = autoscaledWorkloads(objects);
    for (const o of objects) {
      if (!REPLICATED_TYPES.includes(o.type) || o.exempt !== undefined) continue;
      const replicas = steadyReplicas(o, scaled);
      if (replicas === undefined || replicas < 2) continue;
      const w = workloadOf(o.type, o.props)!;
      if (!w.podSpec) continue;
      const anti = at(w.podSpec, "affinity", "podAntiAffinity");
      if (isUnknown(anti) || isUnknown(w.podSpec.topologySpreadConstraints)) continue;
      const terms = [
        ...arr(at(anti, "requiredDuringSchedulingIgnoredDuringExecution")),
        ...arr(at(anti, "preferredDuringSchedulingIgnoredDuringExecution")).map((t) =>
          at(t, "podAffinityTerm"),
        ),
      ].filter((t) => str(at(t, "topologyKey")));
      const spreads = arr(w.podSpec.topologySpreadConstraints).filter((t) =>
        str(at(t, "topologyKey")),
      );
      if (terms.length === 0 && spreads.length === 0)
        report(
          o,
          `${replicas} replicas with no pod anti-affinity or topology spread, so they may all land on one node`,
          `add ${w.podSpecPath}.topologySpreadConstraints (spreadOverNodes) or affinity.podAntiAffinity on topologyKey kubernetes.io/hostname, selecting the workload's own pod labels`,
        );
    }
  },
});

export const probes = resourcePolicy({
  name: "probes",
  description:
    "Every long-running container (Deployment, StatefulSet, DaemonSet) has a liveness probe, and a readiness probe when it serves a port.",
  types: SERVING_TYPES,
  check({ type, props }, report) {
    for (const c of containersOf(workloadOf(type, props)!)) {
      if (c.init) continue;
      if (absent(c.container.livenessProbe))
        report(
          `${c.label} has no livenessProbe, so a hung process is never restarted`,
          `add ${c.path}.livenessProbe (httpGet on the health endpoint, or an exec check)`,
        );
      if (arr(c.container.ports).length > 0 && absent(c.container.readinessProbe))
        report(
          `${c.label} serves ports but has no readinessProbe, so traffic reaches it before it is ready`,
          `add ${c.path}.readinessProbe on the port it serves`,
        );
    }
  },
});

export const availabilityPolicies = [minimumReplicas, podDisruptionBudget, replicaSpread, probes];
