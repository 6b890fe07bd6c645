/** Kubernetes object shapes as Pulumi passes them to policies (raw resource inputs). */
import { Obj, arr, at, isUnknown, obj, str } from "./values";

export const DEPLOYMENT = "kubernetes:apps/v1:Deployment";
export const STATEFUL_SET = "kubernetes:apps/v1:StatefulSet";
export const DAEMON_SET = "kubernetes:apps/v1:DaemonSet";
export const REPLICA_SET = "kubernetes:apps/v1:ReplicaSet";
export const JOB = "kubernetes:batch/v1:Job";
export const CRON_JOB = "kubernetes:batch/v1:CronJob";
export const POD = "kubernetes:core/v1:Pod";
export const SERVICE = "kubernetes:core/v1:Service";
export const SERVICE_ACCOUNT = "kubernetes:core/v1:ServiceAccount";
export const CONFIG_MAP = "kubernetes:core/v1:ConfigMap";
export const NAMESPACE = "kubernetes:core/v1:Namespace";
export const NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy";
export const PDB = "kubernetes:policy/v1:PodDisruptionBudget";
export const HPA_TYPES = [
  "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
  "kubernetes:autoscaling/v1:HorizontalPodAutoscaler",
];

/** Every type that carries a pod template, and where its pod spec lives. */
const POD_SPEC_PATH: Record<string, string[]> = {
  [DEPLOYMENT]: ["spec", "template"],
  [STATEFUL_SET]: ["spec", "template"],
  [DAEMON_SET]: ["spec", "template"],
  [REPLICA_SET]: ["spec", "template"],
  [JOB]: ["spec", "template"],
  [CRON_JOB]: ["spec", "jobTemplate", "spec", "template"],
};

export const WORKLOAD_TYPES = [...Object.keys(POD_SPEC_PATH), POD];
/** Long-running workloads (probes, replicas, spreading apply). */
export const SERVING_TYPES = [DEPLOYMENT, STATEFUL_SET, DAEMON_SET];

/** Groups whose type tokens are Pulumi components or non-object resources, not API objects. */
const NON_OBJECT_GROUPS = /^(yaml|helm\.sh|kustomize)(\/|$)/;

/** `kubernetes:apps/v1:Deployment` → `Deployment`; undefined for non-Kubernetes-object types. */
export function kindOf(type: string): string | undefined {
  const [pkg, groupVersion, kind] = type.split(":");
  if (pkg !== "kubernetes" || !groupVersion || !kind) return undefined;
  if (NON_OBJECT_GROUPS.test(groupVersion) || kind.endsWith("List") || kind.endsWith("Patch"))
    return undefined;
  return kind;
}

/** Kinds that live outside any namespace. */
export const CLUSTER_SCOPED = new Set([
  "Namespace",
  "Node",
  "PersistentVolume",
  "StorageClass",
  "ClusterRole",
  "ClusterRoleBinding",
  "CustomResourceDefinition",
  "PriorityClass",
  "IngressClass",
  "RuntimeClass",
  "ValidatingWebhookConfiguration",
  "MutatingWebhookConfiguration",
  "ValidatingAdmissionPolicy",
  "ValidatingAdmissionPolicyBinding",
  "APIService",
  "CSIDriver",
  "VolumeSnapshotClass",
  "ClusterIssuer",
]);

export function metadataOf(props: Obj): Obj {
  return obj(props.metadata) ?? {};
}

export function labelsOf(meta: Obj | undefined): Obj {
  return obj(meta?.labels) ?? {};
}

export function annotationsOf(meta: Obj | undefined): Obj {
  return obj(meta?.annotations) ?? {};
}

/** `Deployment/stock-analysis-api` (namespace added outside `stock-analysis`); how messages name objects. */
export function objectRef(kind: string, props: Obj): string {
  const meta = metadataOf(props);
  const name = str(meta.name) ?? "<unnamed>";
  const ns = str(meta.namespace);
  return ns && ns !== "stock-analysis" ? `${kind}/${ns}/${name}` : `${kind}/${name}`;
}

export interface Workload {
  kind: string;
  /** Labels the pods get; undefined while unknown in preview. */
  podLabels: Obj | undefined;
  /** The pod spec, undefined when unknown in preview. */
  podSpec: Obj | undefined;
  /** Where the pod spec sits, for messages (`spec.template.spec`). */
  podSpecPath: string;
}

/** Labels at `meta.labels`: {} when absent, undefined when (any step is) unknown. */
function knownLabels(meta: unknown): Obj | undefined {
  if (isUnknown(meta)) return undefined;
  const labels = at(meta, "labels");
  if (isUnknown(labels)) return undefined;
  return obj(labels) ?? {};
}

export function workloadOf(type: string, props: Obj): Workload | undefined {
  const kind = kindOf(type);
  if (!kind) return undefined;
  if (type === POD)
    return {
      kind,
      podLabels: knownLabels(props.metadata),
      podSpec: obj(props.spec),
      podSpecPath: "spec",
    };
  const path = POD_SPEC_PATH[type];
  if (!path) return undefined;
  let template: unknown = props;
  for (const step of path) template = isUnknown(template) ? template : at(template, step);
  return {
    kind,
    podLabels: isUnknown(template) ? undefined : knownLabels(at(template, "metadata")),
    podSpec: obj(at(template, "spec")),
    podSpecPath: [...path, "spec"].join("."),
  };
}

export interface ContainerRef {
  container: Obj;
  /** `container "api"` or `init container "migrate"`, for messages. */
  label: string;
  init: boolean;
  /** Property path of the container (`spec.template.spec.containers[0]`). */
  path: string;
}

/** Containers and init containers of a pod spec (unknown entries skipped). */
export function containersOf(w: Workload): ContainerRef[] {
  if (!w.podSpec) return [];
  const out: ContainerRef[] = [];
  for (const [field, init] of [
    ["initContainers", true],
    ["containers", false],
  ] as const) {
    arr(w.podSpec[field]).forEach((c, i) => {
      const container = obj(c);
      if (!container) return;
      const name = str(container.name) ?? `#${i}`;
      out.push({
        container,
        label: `${init ? "init container" : "container"} "${name}"`,
        init,
        path: `${w.podSpecPath}.${field}[${i}]`,
      });
    });
  }
  return out;
}

/** Does a label selector (`matchLabels` + `matchExpressions`) select pods with these labels? */
export function selectorMatches(selector: Obj | undefined, labels: Obj): boolean {
  if (!selector) return false;
  for (const [k, v] of Object.entries(obj(selector.matchLabels) ?? {})) {
    if (labels[k] !== v) return false;
  }
  for (const e of arr(selector.matchExpressions)) {
    const expr = obj(e) ?? {};
    const key = str(expr.key) ?? "";
    const values = arr(expr.values);
    const has = key in labels;
    switch (str(expr.operator)) {
      case "In":
        if (!has || !values.includes(labels[key])) return false;
        break;
      case "NotIn":
        if (has && values.includes(labels[key])) return false;
        break;
      case "Exists":
        if (!has) return false;
        break;
      case "DoesNotExist":
        if (has) return false;
        break;
      default:
        return false;
    }
  }
  return true;
}

/** A selector with no terms selects every pod of the namespace. */
export function selectsAll(selector: Obj | undefined): boolean {
  if (!selector) return true;
  return (
    Object.keys(obj(selector.matchLabels) ?? {}).length === 0 &&
    arr(selector.matchExpressions).length === 0
  );
}

/** Repository part of an image reference: `quay.io/prometheus/prometheus:v2.53.0` → `quay.io/prometheus/prometheus`. */
export function imageRepository(image: string): string {
  const noDigest = image.split("@")[0];
  const lastSlash = noDigest.lastIndexOf("/");
  const colon = noDigest.lastIndexOf(":");
  return colon > lastSlash ? noDigest.slice(0, colon) : noDigest;
}

/** Last path component of the repository: what the image is (`prometheus`, `loki`). */
export function imageBaseName(image: string): string {
  const repo = imageRepository(image);
  return repo.slice(repo.lastIndexOf("/") + 1);
}
