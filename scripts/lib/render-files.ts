/**
 * The render directory: one YAML file per object, named so that lexical order is apply order.
 * `kubectl apply -f DIR` reads files in lexical order, so a Deployment must never sort before
 * the ServiceAccount, Secret or ConfigMap its pods need (pods would fail to create until retried).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { stringify } from "yaml";
import type { K8sObject } from "./render-stack";

/** Kinds in dependency order: what others reference comes first. */
const APPLY_ORDER = [
  "Namespace",
  "CustomResourceDefinition",
  "PriorityClass",
  "StorageClass",
  "ServiceAccount",
  "Secret",
  "ConfigMap",
  "ClusterRole",
  "Role",
  "ClusterRoleBinding",
  "RoleBinding",
  "PersistentVolumeClaim",
  "Service",
  "Deployment",
  "StatefulSet",
  "DaemonSet",
  "Job",
  "CronJob",
  "HorizontalPodAutoscaler",
  "PodDisruptionBudget",
  "NetworkPolicy",
  "Ingress",
];

/** Position of a kind in apply order; unknown kinds go last. */
export function applyRank(kind: string): number {
  const i = APPLY_ORDER.indexOf(kind);
  return i < 0 ? APPLY_ORDER.length : i;
}

/** `<NN>-<kind>-<name>.yaml` per object (the namespace joins the name when two would collide). */
export function renderFileNames(objects: K8sObject[]): string[] {
  const used = new Set<string>();
  return objects.map((o) => {
    const prefix = String(applyRank(o.kind)).padStart(2, "0");
    let file = `${prefix}-${o.kind.toLowerCase()}-${o.metadata.name}.yaml`;
    if (used.has(file))
      file = `${prefix}-${o.kind.toLowerCase()}-${o.metadata.namespace ?? "cluster"}-${o.metadata.name}.yaml`;
    used.add(file);
    return file;
  });
}

/** Replaces the YAML files of `dir` by the objects; returns their paths in apply order. */
export function writeRenderDir(objects: K8sObject[], dir: string): string[] {
  fs.mkdirSync(dir, { recursive: true });
  for (const f of fs.readdirSync(dir)) if (f.endsWith(".yaml")) fs.rmSync(path.join(dir, f));
  const names = renderFileNames(objects);
  objects.forEach((o, i) =>
    fs.writeFileSync(path.join(dir, names[i]), stringify(o, { sortMapEntries: false })),
  );
  return names.sort().map((n) => path.join(dir, n));
}
