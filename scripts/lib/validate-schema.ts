import type { K8sObject } from "./render-stack";

interface Validatable {
  validate(): void;
}
type ModelClass = new (data: unknown) => Validatable;

/**
 * Validates a Kubernetes object against the official OpenAPI schema bundled in
 * `kubernetes-models` (offline; the package is ESM-only, hence the dynamic import).
 * Returns the validation error text, or undefined when valid.
 */
export async function schemaErrors(obj: K8sObject): Promise<string | undefined> {
  const modulePath = obj.apiVersion.includes("/")
    ? `kubernetes-models/${obj.apiVersion}/${obj.kind}`
    : `kubernetes-models/v1/${obj.kind}`;
  let Model: ModelClass | undefined;
  try {
    Model = ((await import(modulePath)) as Record<string, ModelClass>)[obj.kind];
  } catch {
    Model = undefined;
  }
  if (!Model) return `no schema for ${obj.apiVersion} ${obj.kind}`;
  try {
    new Model(obj).validate();
    return undefined;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}
