/**
 * Which cluster and namespace an operator script (scripts/pg-failover, pg-restore, redis-restore)
 * acts on, from the stack's validated config — never "whatever kubectl context is current".
 * Used by scripts/lib/kube-target.sh; prints `key=value` lines for the shell:
 *   stack, context, kubeconfig (empty: kubectl's default), namespace, prod (true|false)
 * Rules:
 *   --stack S            the context of S's config: cluster.context (mode existing) or
 *                        kind-<cluster.kind.name> (mode kind); mode yaml has no cluster
 *   --context C          overrides the stack's context (with no --stack, namespace from the stack
 *                        whose config names C, else the default namespace)
 *   prod                 the stack is `prod`/`prod-*`, or the context is one a prod stack names
 * A problem is one line on stderr and exit 2.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { parse as parseYaml } from "yaml";
import { ConfigError, PROJECT, loadConfig } from "../../components/config/load";
import type { PlatformConfig } from "../../components/config/schema";

const REPO_ROOT = path.resolve(__dirname, "../..");

export const isProdStack = (stack: string): boolean => /^prod(-.+)?$/.test(stack);

/** The kubeconfig context a stack's config deploys to, or why it has none. */
export function stackContext(cfg: PlatformConfig): { context?: string; why?: string } {
  const c = cfg.cluster;
  if (c.mode === "kind") return { context: `kind-${c.kind.name}` };
  if (c.mode === "yaml") return { why: "cluster.mode is yaml (it deploys to no cluster)" };
  if (c.context === undefined)
    return { why: "cluster.context is unset (pulumi config set --path cluster.context <ctx>)" };
  return { context: c.context };
}

function stacks(root: string): string[] {
  return fs
    .readdirSync(root)
    .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
    .filter((s): s is string => s !== undefined)
    .sort();
}

/**
 * The stack's config as render-stack's readStackConfig reads it (secure values present, not
 * decrypted), without importing the Pulumi SDK: an operator script waits for this.
 */
function load(stack: string, root: string): PlatformConfig {
  const file = path.join(root, `Pulumi.${stack}.yaml`);
  if (!fs.existsSync(file)) throw new Error(`no stack "${stack}": ${file} does not exist`);
  const doc = (parseYaml(fs.readFileSync(file, "utf8")) ?? {}) as { config?: object };
  const config: Record<string, string> = {};
  const secretKeys: string[] = [];
  for (const [k, v] of Object.entries(doc.config ?? {})) {
    const key = k.includes(":") ? k : `${PROJECT}:${k}`;
    const secure = v !== null && typeof v === "object" && "secure" in v;
    if (secure) secretKeys.push(key);
    config[key] = secure ? "[secret]" : typeof v === "string" ? v : JSON.stringify(v);
  }
  return loadConfig(config, secretKeys);
}

/** cluster.kubeconfig as the provider reads it (`~` expanded, relative to the project). */
function kubeconfigFile(file: string | undefined, root: string): string {
  if (file === undefined) return "";
  return path.resolve(root, file.replace(/^~(?=$|\/)/, os.homedir()));
}

export interface KubeTarget {
  stack: string;
  context: string;
  kubeconfig: string;
  namespace: string;
  prod: boolean;
}

export function resolveKubeTarget(
  opts: { stack?: string; context?: string },
  root = REPO_ROOT,
): KubeTarget {
  if (!opts.stack && !opts.context)
    throw new Error("name the cluster: --stack <stack> (its config's context) or --context <ctx>");
  // Which stacks deploy to each context: a context a prod stack names is prod whatever the flags.
  const byContext = new Map<string, string[]>();
  for (const s of stacks(root)) {
    let ctx: string | undefined;
    try {
      ctx = stackContext(load(s, path.resolve(root))).context;
    } catch {
      continue; // a broken stack config other than the one asked for is not this script's concern
    }
    if (ctx !== undefined) byContext.set(ctx, [...(byContext.get(ctx) ?? []), s]);
  }
  let cfg: PlatformConfig | undefined;
  let context = opts.context;
  if (opts.stack) {
    cfg = load(opts.stack, root);
    if (context === undefined) {
      const own = stackContext(cfg);
      if (own.context === undefined)
        throw new Error(`stack ${opts.stack}: ${own.why}; pass --context <ctx>`);
      context = own.context;
    }
  } else {
    const owner = byContext.get(context!)?.[0];
    if (owner !== undefined) cfg = load(owner, root);
  }
  const prod =
    (opts.stack !== undefined && isProdStack(opts.stack)) ||
    (byContext.get(context!) ?? []).some(isProdStack);
  return {
    stack: opts.stack ?? "",
    context: context!,
    // An explicit --context is looked up in kubectl's own kubeconfig, not the stack's file.
    kubeconfig: kubeconfigFile(
      opts.context === undefined ? cfg?.cluster.kubeconfig : undefined,
      root,
    ),
    namespace: cfg?.namespace ?? "stock-analysis",
    prod,
  };
}

if (require.main === module) {
  try {
    const { values } = parseArgs({
      options: { stack: { type: "string" }, context: { type: "string" } },
      strict: true,
    });
    const t = resolveKubeTarget(values);
    for (const [k, v] of Object.entries(t)) {
      if (/[\n\r]/.test(String(v))) throw new Error(`${k} contains a line break`);
      process.stdout.write(`${k}=${String(v)}\n`);
    }
  } catch (e) {
    const msg = e instanceof ConfigError ? e.message : (e as Error).message.split("\n")[0];
    process.stderr.write(`${msg}\n`);
    process.exit(2);
  }
}
