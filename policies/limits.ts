/**
 * Resource limits: every container is sized, consistently, within the stack's maximums, and
 * under the platform's one CPU rule — requests, never limits (docs/ARCHITECTURE.md).
 */
import { WORKLOAD_TYPES, containersOf, workloadOf } from "./lib/k8s";
import { resourcePolicy } from "./lib/policy";
import { parseQuantity } from "./lib/quantity";
import { absent, at, isUnknown, obj } from "./lib/values";

const resourcesFix = (path: string) =>
  `set ${path}.resources (requests.cpu, requests.memory, limits.memory) through the component's resources args`;

export const containerResources = resourcePolicy({
  name: "container-resources",
  description:
    "Every container and init container requests CPU and memory, has a memory limit, and requests do not exceed limits.",
  types: WORKLOAD_TYPES,
  check({ type, props }, report) {
    const w = workloadOf(type, props)!;
    for (const c of containersOf(w)) {
      const resources = c.container.resources;
      if (isUnknown(resources)) continue;
      for (const [section, key] of [
        ["requests", "cpu"],
        ["requests", "memory"],
        ["limits", "memory"],
      ] as const) {
        if (absent(at(resources, section, key)))
          report(`${c.label} has no ${section}.${key}`, resourcesFix(c.path));
      }
      for (const key of ["cpu", "memory"]) {
        const request = parseQuantity(at(resources, "requests", key));
        const limit = parseQuantity(at(resources, "limits", key));
        if (request !== undefined && limit !== undefined && request > limit)
          report(
            `${c.label} requests more ${key} (${String(at(resources, "requests", key))}) than its limit (${String(at(resources, "limits", key))})`,
            `lower ${c.path}.resources.requests.${key} to at most the limit, or raise the limit`,
          );
      }
    }
  },
});

interface MaximumsConfig {
  maxCpu?: string;
  maxMemory?: string;
}

const DEFAULT_MAX_CPU = "4";
const DEFAULT_MAX_MEMORY = "8Gi";

export const containerResourceMaximums = resourcePolicy<MaximumsConfig>({
  name: "container-resource-maximums",
  description:
    "No container may be sized above the stack's per-container maximum CPU and memory (limit, or request where no limit is set).",
  types: WORKLOAD_TYPES,
  config: {
    properties: {
      maxCpu: {
        type: "string",
        default: DEFAULT_MAX_CPU,
        description: "Largest CPU per container (quantity).",
      },
      maxMemory: {
        type: "string",
        default: DEFAULT_MAX_MEMORY,
        description: "Largest memory per container (quantity).",
      },
    },
  },
  check({ type, props, config }, report) {
    const w = workloadOf(type, props)!;
    const max = {
      cpu: config.maxCpu ?? DEFAULT_MAX_CPU,
      memory: config.maxMemory ?? DEFAULT_MAX_MEMORY,
    };
    for (const c of containersOf(w)) {
      const resources = obj(c.container.resources);
      for (const key of ["cpu", "memory"] as const) {
        const limit = at(resources, "limits", key);
        const sized = absent(limit) ? at(resources, "requests", key) : limit;
        const field = absent(limit) ? "requests" : "limits";
        const value = parseQuantity(sized);
        const maximum = parseQuantity(max[key]);
        if (value !== undefined && maximum !== undefined && value > maximum)
          report(
            `${c.label} ${field}.${key} ${String(sized)} exceeds this stack's maximum of ${max[key]} per container`,
            `size ${c.path}.resources.${field}.${key} at most ${max[key]} (scale out with replicas instead), or raise max${key === "cpu" ? "Cpu" : "Memory"} in policies/<stack>.json after review`,
          );
      }
    }
  },
});

export const noCpuLimits = resourcePolicy({
  name: "no-cpu-limits",
  description:
    "No container or init container sets a CPU limit: CPU is sized by requests alone, because a CFS quota throttles latency-critical containers (PostgreSQL, Redis, the API) even on an idle node.",
  types: WORKLOAD_TYPES,
  check({ type, props }, report) {
    for (const c of containersOf(workloadOf(type, props)!)) {
      const limit = at(c.container.resources, "limits", "cpu");
      if (isUnknown(limit) || absent(limit)) continue;
      report(
        `${c.label} has a CPU limit (${String(limit)}), so the kernel throttles it for the rest of each CFS period once it bursts past the quota`,
        `remove ${c.path}.resources.limits.cpu (the config refuses *.resources.limits.cpu) and size CPU with requests.cpu`,
      );
    }
  },
});

export const limitsPolicies = [containerResources, containerResourceMaximums, noCpuLimits];
