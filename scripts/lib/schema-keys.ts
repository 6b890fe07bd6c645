/**
 * Every config key path the schema accepts (`api.autoscaling.minReplicas`), including optional
 * keys without a default, by walking the zod schema. Records, lists and secrets are leaves.
 */
import type { z } from "zod";
import { platformSchema } from "../../components/config/schema";

interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  in?: z.ZodType;
  options?: z.ZodType[];
}

const WRAPPERS = new Set([
  "optional",
  "default",
  "prefault",
  "nullable",
  "readonly",
  "catch",
  "nonoptional",
]);

function walk(schema: z.ZodType, prefix: string, out: Set<string>): void {
  const def = (schema as unknown as { _zod: { def: Def } })._zod.def;
  if (def.type === "object" && def.shape) {
    for (const [k, v] of Object.entries(def.shape)) walk(v, prefix ? `${prefix}.${k}` : k, out);
  } else if (WRAPPERS.has(def.type) && def.innerType) walk(def.innerType, prefix, out);
  else if (def.type === "pipe" && def.in) walk(def.in, prefix, out);
  else if (def.type === "union" && def.options) for (const o of def.options) walk(o, prefix, out);
  else out.add(prefix);
}

export function schemaKeyPaths(): string[] {
  const out = new Set<string>();
  walk(platformSchema as unknown as z.ZodType, "", out);
  return [...out].sort();
}

/** True when `key` is a leaf or an object path of the schema (`postgres.storage`). */
export function isConfigPath(key: string, paths: readonly string[] = schemaKeyPaths()): boolean {
  return paths.some((p) => p === key || p.startsWith(`${key}.`));
}
