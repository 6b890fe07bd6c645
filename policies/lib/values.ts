/**
 * Plain-data access to resource properties as the policy server hands them over.
 *
 * During `pulumi preview` any property computed from another resource's output is unknown. The
 * engine sends such values as sentinel strings and @pulumi/policy wraps the properties in a proxy
 * that throws on reading one, which would abort the whole policy for that resource. Policies here
 * read the unwrapped data instead and skip exactly the checks whose input is unknown, so a single
 * computed field never hides violations in the rest of the object.
 */

/** The engine's unknown-value sentinels (pulumi sdk `plugin.Unknown*Value`). */
const UNKNOWN_SENTINELS = new Set([
  "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7", // boolean
  "3eeb2bf0-c639-47a8-9e75-3b44932eb421", // number
  "04da6b54-80e4-46f7-96ec-b56ff0331ba9", // string (and untyped)
  "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2", // array
  "030794c1-ac77-496b-92df-f27374a8bd58", // asset
  "e48ece36-62e2-4504-bad9-02848725956a", // archive
  "dd056dcd-154b-4c76-9bd3-c8f88648b5ff", // object
]);

export type Obj = Record<string, unknown>;

export function isUnknown(v: unknown): boolean {
  return typeof v === "string" && UNKNOWN_SENTINELS.has(v);
}

/**
 * The data behind @pulumi/policy's unknown-checking proxy (its `__getSpecialProxyTarget` hook);
 * plain objects pass through unchanged.
 */
export function plain(props: unknown): Obj {
  const p = props as Obj | undefined;
  if (p && p["__isSpecialProxy"] === true) return p["__getSpecialProxyTarget"] as Obj;
  return (p ?? {}) as Obj;
}

/** A known, non-array object, else undefined. */
export function obj(v: unknown): Obj | undefined {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Obj) : undefined;
}

/** A known array, else empty. */
export function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

/** A known string, else undefined. */
export function str(v: unknown): string | undefined {
  return typeof v === "string" && !isUnknown(v) ? v : undefined;
}

/** Walks a property path; undefined as soon as a step is missing. */
export function at(v: unknown, ...path: string[]): unknown {
  let cur = v;
  for (const key of path) {
    const o = obj(cur);
    if (!o) return undefined;
    cur = o[key];
  }
  return cur;
}

/** Missing (undefined or null), as opposed to present or unknown. */
export function absent(v: unknown): boolean {
  return v === undefined || v === null;
}
