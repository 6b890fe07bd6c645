/** Availability (prod): enough replicas, drainable PDBs, spread stateful pods, probes everywhere. */
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

export const minimumReplicas = stackPolicy<ReplicasConfig>({
  name: "minimum-replicas",
  description:
    "Stateless workloads (Deployments, and the HPAs scaling them) run at least the stack's minimum replicas, so one pod loss or a rollout is not an outage.",
  config: {
    properties: {
      minReplicas: {
        type: "integer",
        minimum: 1,
        default: DEFAULT_MIN_REPLICAS,
        description: "Fewest replicas per stateless workload.",
      },
    },
  },
  check(objects, config, report) {
    const minimum = config.minReplicas ?? DEFAULT_MIN_REPLICAS;
    const scaled = autoscaledDeployments(objects);
    for (const o of objects) {
      const isHpa = HPA_TYPES.includes(o.type);
      if ((o.type !== DEPLOYMENT && !isHpa) || o.exempt !== undefined) continue;
      // An autoscaled Deployment carries no count of its own; its HPA's floor is checked.
      if (o.type === DEPLOYMENT && scaled.has(deploymentKey(o.props))) continue;
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

const deploymentKey = (props: Record<string, unknown>) =>
  `${str(metadataOf(props).namespace) ?? ""}/${str(metadataOf(props).name) ?? ""}`;

/** `<namespace>/<name>` of each Deployment an HPA scales, with the HPA's floor. */
function autoscaledDeployments(objects: StackObject[]): Map<string, number | undefined> {
  const out = new Map<string, number | undefined>();
  for (const o of objects) {
    if (!HPA_TYPES.includes(o.type)) continue;
    const ref = obj(at(o.props, "spec", "scaleTargetRef")) ?? {};
    if (str(ref.kind) !== "Deployment") continue;
    const min = at(o.props, "spec", "minReplicas");
    out.set(
      `${str(metadataOf(o.props).namespace) ?? ""}/${str(ref.name) ?? ""}`,
      isUnknown(min) ? undefined : typeof min === "number" ? min : 1,
    );
  }
  return out;
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
    "Every stateless workload (Deployment) has a PodDisruptionBudget that still allows at least one voluntary disruption.",
  check(objects, _config, report) {
    const pdbs = objects.filter((o) => o.type === PDB);
    const scaled = autoscaledDeployments(objects);
    for (const o of objects) {
      if (o.type !== DEPLOYMENT || o.exempt !== undefined) continue;
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
      // An autoscaled Deployment runs at least its HPA's floor.
      const replicasRaw = scaled.has(deploymentKey(o.props))
        ? scaled.get(deploymentKey(o.props))
        : at(o.props, "spec", "replicas");
      if (replicasRaw === undefined && scaled.has(deploymentKey(o.props))) continue;
      if (isUnknown(replicasRaw)) continue;
      const replicas = typeof replicasRaw === "number" ? replicasRaw : 1;
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

export const statefulAntiAffinity = resourcePolicy({
  name: "stateful-anti-affinity",
  description:
    "StatefulSets with more than one replica spread their pods over nodes (pod anti-affinity or a topology spread), so one node loss keeps a replica.",
  types: [STATEFUL_SET],
  check({ type, props }, report) {
    const replicas = at(props, "spec", "replicas");
    if (isUnknown(replicas) || typeof replicas !== "number" || replicas < 2) return;
    const w = workloadOf(type, props)!;
    if (!w.podSpec) return;
    const anti = at(w.podSpec, "affinity", "podAntiAffinity");
    if (isUnknown(anti) || isUnknown(w.podSpec.topologySpreadConstraints)) return;
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
        `${replicas} replicas with no pod anti-affinity, so they may all land on one node`,
        `add ${w.podSpecPath}.affinity.podAntiAffinity (topologyKey kubernetes.io/hostname) selecting the StatefulSet's own pod labels`,
      );
  },
});

export const probes = resourcePolicy({
  name: "probes",
  description:
    "Every long-running container has a liveness probe, and a readiness probe when it serves a port.",
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

export const availabilityPolicies = [
  minimumReplicas,
  podDisruptionBudget,
  statefulAntiAffinity,
  probes,
];
