/**
 * Config what-ifs for render, policy and diff, with `pulumi config set --path` semantics:
 *   --set api.replicas=7                 one value at a path, merged into the stack's `api`
 *   --set 'ingress.hosts[0]=example.com' array elements by index
 *   --set 'api={"replicas":7}'           an object merges into what the stack has
 *   --replace 'api={"replicas":7}'       the whole top-level key replaced (explicit)
 * Values parse as a YAML scalar or JSON (`7` is a number, `true` a boolean, `"7"` a string).
 */
import { parse as parseYaml } from "yaml";
import { PROJECT } from "../../components/config/load";
import { readStackConfig } from "./render-stack";
import { UsageError } from "./usage-error";

export { UsageError };

type Segment = string | number;

/** `api.autoscaling.minReplicas` → ["api", "autoscaling", "minReplicas"]; `hosts[0]` → ["hosts", 0]. */
export function parsePath(key: string): Segment[] {
  const bare = key.startsWith(`${PROJECT}:`) ? key.slice(PROJECT.length + 1) : key;
  const out: Segment[] = [];
  for (const part of bare.split(".")) {
    const m = /^([A-Za-z_][A-Za-z0-9_-]*)((?:\[\d+\])*)$/.exec(part);
    if (!m)
      throw new UsageError(
        `--set ${key}: "${part}" is not a key name (letters, digits, _ and -, optional [index])`,
      );
    out.push(m[1]);
    for (const idx of m[2].matchAll(/\[(\d+)\]/g)) out.push(Number(idx[1]));
  }
  return out;
}

/** A value as YAML reads it: scalars typed, JSON objects and arrays parsed. */
export function parseValue(raw: string, key: string): unknown {
  try {
    return parseYaml(raw) ?? null;
  } catch (e) {
    throw new UsageError(
      `--set ${key}: the value is neither a YAML scalar nor JSON (${(e as Error).message.split("\n")[0]})`,
    );
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Objects merge key by key; arrays and scalars replace. */
export function deepMerge(base: unknown, patch: unknown): unknown {
  if (!isObject(base) || !isObject(patch)) return patch;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(patch)) out[k] = deepMerge(base[k], v);
  return out;
}

/** Sets `value` at `path` inside `root` (a copy), creating objects and arrays on the way. */
export function setAtPath(root: unknown, path: Segment[], value: unknown): unknown {
  if (path.length === 0) return deepMerge(root, value);
  const [head, ...rest] = path;
  if (typeof head === "number") {
    if (root !== undefined && !Array.isArray(root))
      throw new UsageError(`index [${head}] applied to a value that is not a list`);
    const arr = [...((root as unknown[] | undefined) ?? [])];
    if (head > arr.length)
      throw new UsageError(`index [${head}] is past the end of a list of ${arr.length}`);
    arr[head] = setAtPath(arr[head], rest, value);
    return arr;
  }
  if (root !== undefined && !isObject(root))
    throw new UsageError(`"${head}" applied to a value that is not an object`);
  const obj: Record<string, unknown> = { ...(root ?? {}) };
  obj[head] = setAtPath(obj[head], rest, value);
  return obj;
}

function splitAssignment(flag: string, kv: string): [string, string] {
  const eq = kv.indexOf("=");
  if (eq <= 0) throw new UsageError(`${flag} expects key=value, got "${kv}"`);
  return [kv.slice(0, eq), kv.slice(eq + 1)];
}

/**
 * The top-level config overrides (`key` → whole value) that the `--set` and `--replace`
 * arguments make of the stack's own values. Replacements apply first, then sets in order.
 */
export function configOverrides(
  stack: string,
  sets: readonly string[],
  replaces: readonly string[] = [],
  root?: string,
): Record<string, unknown> {
  const { config } = readStackConfig(stack, root);
  const current = (top: string): unknown => {
    const raw = config[`${PROJECT}:${top}`];
    if (raw === undefined) return undefined;
    try {
      return JSON.parse(raw);
    } catch {
      return raw;
    }
  };
  const out: Record<string, unknown> = {};
  for (const kv of replaces) {
    const [key, raw] = splitAssignment("--replace", kv);
    const path = parsePath(key);
    if (path.length !== 1)
      throw new UsageError(
        `--replace ${key}: replaces a whole top-level key; use --set for a path`,
      );
    out[path[0] as string] = parseValue(raw, key);
  }
  for (const kv of sets) {
    const [key, raw] = splitAssignment("--set", kv);
    const [top, ...rest] = parsePath(key);
    const base = top in out ? out[top as string] : current(top as string);
    try {
      out[top as string] = setAtPath(base, rest, parseValue(raw, key));
    } catch (e) {
      if (e instanceof UsageError && !e.message.startsWith("--set"))
        throw new UsageError(`--set ${key}: ${e.message}`);
      throw e;
    }
  }
  return out;
}
