import { z } from "zod";
import { PlatformConfig, platformSchema, secretConfigKeys } from "./schema";
import { unnotifiedSeverities } from "./monitoring";
import { isSecretValue, SecretValue } from "./validators";

export const PROJECT = "stock-analysis";

/** A stack config that breaks a rule. The message names each key, its value and the rule. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(
      `Invalid stack config (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n` +
        problems.map((p) => `  - ${p}`).join("\n"),
    );
    this.name = "ConfigError";
  }
}

function parseValue(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

function levenshtein(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}

function valueAt(root: unknown, path: PropertyKey[]): unknown {
  let cur = root;
  for (const k of path) {
    if (isSecretValue(cur)) return cur;
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[k];
  }
  return cur;
}

function show(v: unknown, path: PropertyKey[]): string {
  if (v === undefined) return "(unset)";
  if (isSecretValue(v) || secretConfigKeys.has(String(path[0]))) return "[secret]";
  return JSON.stringify(v);
}

/** The keys a schema object accepts at `path`, for "did you mean" hints. */
function knownKeysAt(path: PropertyKey[]): string[] {
  let schema: z.ZodType = platformSchema;
  for (const k of path) {
    const shape = objectShape(schema);
    if (!shape || typeof k !== "string" || !(k in shape)) return [];
    schema = shape[k];
  }
  return Object.keys(objectShape(schema) ?? {});
}

function objectShape(schema: z.ZodType): Record<string, z.ZodType> | undefined {
  // Unwrap default/prefault/optional/pipe wrappers down to the object.
  let s: unknown = schema;
  for (let i = 0; i < 10 && s; i++) {
    const def = (s as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
    if (!def) return undefined;
    if (def.type === "object") return def.shape as Record<string, z.ZodType>;
    s = def.innerType ?? def.in;
  }
  return undefined;
}

function describeIssue(issue: z.core.$ZodIssue, input: unknown): string[] {
  const key = (path: PropertyKey[]) =>
    [PROJECT + ":" + String(path[0] ?? ""), ...path.slice(1)].join(".");
  if (issue.code === "unrecognized_keys") {
    const known = knownKeysAt(issue.path);
    return issue.keys.map((k) => {
      const best = known.map((c) => ({ c, d: levenshtein(k, c) })).sort((a, b) => a.d - b.d)[0];
      const hint = best && best.d <= 3 ? ` (did you mean "${best.c}"?)` : "";
      const where = issue.path.length === 0 ? `${PROJECT}:${k}` : `${key(issue.path)}.${k}`;
      return `${where} = ${show(valueAt(input, [...issue.path, k]), issue.path.length ? issue.path : [k])}: unknown key${hint}; known keys: ${known.join(", ")}`;
    });
  }
  return [`${key(issue.path)} = ${show(valueAt(input, issue.path), issue.path)}: ${issue.message}`];
}

/**
 * Turns the raw Pulumi config map (`project:key` → string, as the engine passes it) into the
 * validated, typed platform config. Throws one ConfigError listing every broken rule.
 * Values of secret keys are wrapped as SecretValue so the schema can insist on secrecy.
 */
export function loadConfig(
  raw: Record<string, string>,
  secretKeys: readonly string[] = [],
): PlatformConfig {
  const input: Record<string, unknown> = {};
  for (const [fullKey, rawValue] of Object.entries(raw)) {
    const sep = fullKey.indexOf(":");
    // Other namespaces (kubernetes:*, pulumi:*) belong to providers and the engine.
    if (sep < 0 || fullKey.slice(0, sep) !== PROJECT) continue;
    const k = fullKey.slice(sep + 1);
    const value = parseValue(rawValue);
    input[k] = secretKeys.includes(fullKey)
      ? ({ secret: true, value } satisfies SecretValue<unknown>)
      : value;
  }
  const result = platformSchema.safeParse(input);
  if (!result.success) {
    throw new ConfigError(result.error.issues.flatMap((i) => describeIssue(i, input)));
  }
  return result.data;
}

/**
 * What a deployable stack needs beyond the schema: every alert severity reaches a person. Run by
 * the program right after loadConfig (unit tests of single keys load partial configs without it).
 * Throws one ConfigError naming every secret key to set; a kind cluster may waive it with
 * `monitoring.alerting.allowUnnotified` (the render summary then lists what is unnotified).
 */
export function requireNotifiedAlerts(config: PlatformConfig): PlatformConfig {
  const missing = unnotifiedSeverities(config);
  if (missing.length === 0) return config;
  if (config.monitoring.alerting.allowUnnotified) {
    if (config.cluster.mode === "kind") return config;
    throw new ConfigError([
      `${PROJECT}:monitoring.alerting.allowUnnotified = true: only a kind (laptop) cluster may leave a severity unnotified (cluster.mode is "${config.cluster.mode}"); set ${missing
        .map((m) => `\`pulumi config set --secret ${m.secretKey} <url>\``)
        .join(" and ")}`,
    ]);
  }
  const keys = missing.map((m) => m.secretKey);
  throw new ConfigError([
    `${keys.map((k) => `${PROJECT}:${k}`).join(", ")} = (unset): ${missing
      .map((m) => m.problem)
      .join("; ")}; set ${keys
      .map((k) => `\`pulumi config set --secret ${k} <url>\``)
      .join(" and ")} (an offline render takes --secret KEY=VALUE or STOCK_ANALYSIS_SECRETS)`,
  ]);
}
