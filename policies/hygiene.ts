/** Hygiene: explicit names, recognisable labels, nothing exposed outside the ingress controller. */
import {
  CLUSTER_SCOPED,
  SERVICE,
  WORKLOAD_TYPES,
  labelsOf,
  metadataOf,
  workloadOf,
} from "./lib/k8s";
import { resourcePolicy } from "./lib/policy";
import { absent, isUnknown, str } from "./lib/values";

export const explicitNames = resourcePolicy({
  name: "explicit-names",
  description:
    "Every Kubernetes object has an explicit metadata.name (no Pulumi auto-naming suffix) and, when namespaced, an explicit metadata.namespace.",
  check({ kind, props }, report) {
    const meta = metadataOf(props);
    if (absent(meta.name))
      report(
        `no metadata.name, so Pulumi generates a random-suffixed name the runbook's kubectl commands cannot find`,
        `set metadata.name explicitly (the manual's name for the object)`,
      );
    if (!CLUSTER_SCOPED.has(kind) && absent(meta.namespace))
      report(
        `no metadata.namespace, so it lands in whatever namespace the provider defaults to`,
        `set metadata.namespace from the component's placement (stock-analysis)`,
      );
  },
});

interface LabelsConfig {
  requiredLabels?: string[];
  workloadLabels?: string[];
}

const DEFAULT_REQUIRED = ["app.kubernetes.io/part-of", "app.kubernetes.io/managed-by"];
const DEFAULT_WORKLOAD = [
  "app",
  "app.kubernetes.io/name",
  "app.kubernetes.io/instance",
  "app.kubernetes.io/component",
  "app.kubernetes.io/part-of",
  "app.kubernetes.io/managed-by",
];
/** Objects that belong to one workload and are selected by its labels. */
const WORKLOAD_SCOPED = new Set([
  ...WORKLOAD_TYPES,
  SERVICE,
  "kubernetes:core/v1:ServiceAccount",
  "kubernetes:policy/v1:PodDisruptionBudget",
  "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
]);

export const recommendedLabels = resourcePolicy<LabelsConfig>({
  name: "recommended-labels",
  description:
    "Every object carries app.kubernetes.io/part-of and managed-by; workloads, their pod templates and per-workload objects carry app plus the full app.kubernetes.io set.",
  config: {
    properties: {
      requiredLabels: {
        type: "array",
        items: { type: "string" },
        default: DEFAULT_REQUIRED,
        description: "Labels every object needs.",
      },
      workloadLabels: {
        type: "array",
        items: { type: "string" },
        default: DEFAULT_WORKLOAD,
        description: "Labels workloads, pod templates and per-workload objects need.",
      },
    },
  },
  check({ type, props, config }, report) {
    const scoped = WORKLOAD_SCOPED.has(type);
    const required = scoped
      ? (config.workloadLabels ?? DEFAULT_WORKLOAD)
      : (config.requiredLabels ?? DEFAULT_REQUIRED);
    const fix = (missing: string[]) =>
      `add ${missing.join(", ")} (workloadLabels(name, component, instance) in components/lib/k8s.ts sets the full set)`;
    const meta = metadataOf(props);
    if (!isUnknown(meta.labels)) {
      const missing = required.filter((l) => absent(labelsOf(meta)[l]));
      if (missing.length > 0) report(`metadata.labels lack ${missing.join(", ")}`, fix(missing));
    }
    const w = workloadOf(type, props);
    if (w?.podLabels) {
      const podLabels = w.podLabels;
      const missing = required.filter((l) => absent(podLabels[l]));
      if (missing.length > 0)
        report(
          `pod template labels lack ${missing.join(", ")}, so pods cannot be selected like the runbook expects`,
          fix(missing),
        );
    }
  },
});

interface ServiceTypeConfig {
  allowedExternalServices?: string[];
}

const DEFAULT_EXTERNAL = ["ingress-nginx/ingress-nginx-controller"];

export const serviceType = resourcePolicy<ServiceTypeConfig>({
  name: "service-type",
  description:
    "Services are ClusterIP; only the ingress controller's Service may be LoadBalancer or NodePort.",
  types: [SERVICE],
  config: {
    properties: {
      allowedExternalServices: {
        type: "array",
        items: { type: "string" },
        default: DEFAULT_EXTERNAL,
        description: 'Services ("<namespace>/<name>") allowed to be LoadBalancer or NodePort.',
      },
    },
  },
  check({ props, config }, report) {
    const t = str((props.spec as Record<string, unknown> | undefined)?.type);
    if (t !== "LoadBalancer" && t !== "NodePort") return;
    const meta = metadataOf(props);
    const id = `${str(meta.namespace) ?? "default"}/${str(meta.name) ?? ""}`;
    if ((config.allowedExternalServices ?? DEFAULT_EXTERNAL).includes(id)) return;
    report(
      `type ${t} exposes it outside the cluster, bypassing the ingress (TLS, body limits)`,
      `make it type: ClusterIP and route external traffic through the Ingress`,
    );
  },
});

export const hygienePolicies = [explicitNames, recommendedLabels, serviceType];
