/** Offline policy evaluation of a rendered stack and its report (shared by `npm run policy` and tests). */
import * as path from "node:path";
import type { RenderedResource } from "./render-stack";
import {
  AnalyzeResult,
  Diagnostic,
  PackResource,
  POLICIES_DIR,
  PolicyPackServer,
  analyzeAll,
  readPackConfig,
} from "./policy-pack";

/** The per-stack policy config file. */
export function stackConfigFile(stack: string): string {
  return path.join(POLICIES_DIR, `${stack}.json`);
}

/** Rendered resources as the engine hands them to analyzers, each with its explicit provider. */
export function toPackResources(resources: RenderedResource[]): PackResource[] {
  const providers = resources.filter((r) => r.type.startsWith("pulumi:providers:"));
  return resources.map((r) => {
    const out: PackResource = {
      type: r.type,
      name: r.name,
      urn: r.urn,
      props: r.inputs,
      secretPaths: r.secretPaths,
    };
    if (r.provider) {
      // The reference is `<provider urn>::<id>`; the urn ends in `<type>::<name>`.
      const ref = r.provider.slice(0, r.provider.lastIndexOf("::"));
      const name = ref.slice(ref.lastIndexOf("::") + 2);
      const p = providers.find((x) => x.name === name && ref.includes(x.type));
      if (p) out.provider = { type: p.type, name: p.name, urn: ref, props: p.inputs };
    }
    return out;
  });
}

export interface PolicyRun extends AnalyzeResult {
  pack: string;
  resources: PackResource[];
}

/** Starts the pack, configures it for the stack and analyzes every resource plus the stack. */
export async function evaluateStack(
  stack: string,
  project: string,
  resources: PackResource[],
  configFile = stackConfigFile(stack),
): Promise<PolicyRun> {
  const server = await PolicyPackServer.start();
  try {
    const info = await server.info();
    const { warnings } = await server.configure(readPackConfig(configFile));
    for (const w of warnings) process.stderr.write(`policy config: ${w}\n`);
    await server.configureStack(stack, project);
    const result = await analyzeAll(server, resources);
    return { pack: `${info.name}@${info.version}`, resources, ...result };
  } finally {
    server.close();
  }
}

/** The violation text after the policy description: `<Kind>/<name>: <problem>. Fix: <fix>`. */
export function violationText(d: Diagnostic): string {
  const nl = d.message.indexOf("\n");
  return nl < 0 ? d.message : d.message.slice(nl + 1);
}

function resourceLabel(run: PolicyRun, urn: string): string {
  const r = run.resources.find((x) => x.urn === urn);
  return r ? `${r.type.split(":").pop()} ${r.name}` : urn || "(stack)";
}

export function formatReport(stack: string, run: PolicyRun, configFile: string): string {
  const lines = [
    `Policy pack ${run.pack} on stack "${stack}" (${path.relative(process.cwd(), configFile)}), ${run.resources.length} resources`,
  ];
  const order = { mandatory: 0, remediate: 1, advisory: 2, disabled: 3 };
  const sorted = [...run.diagnostics].sort(
    (a, b) =>
      order[a.enforcementLevel] - order[b.enforcementLevel] ||
      a.policyName.localeCompare(b.policyName),
  );
  for (const d of sorted) {
    lines.push(
      `${d.enforcementLevel.toUpperCase().padEnd(9)} ${d.policyName.padEnd(28)} ${resourceLabel(run, d.urn)}`,
      `          ${violationText(d)}`,
    );
  }
  const exempt = run.notApplicable.filter((n) => n.reason.includes(" exempt: "));
  for (const n of exempt) lines.push(`EXEMPT    ${n.policyName.padEnd(28)} ${n.reason}`);
  const mandatory = run.diagnostics.filter((d) => d.enforcementLevel === "mandatory").length;
  const advisory = run.diagnostics.filter((d) => d.enforcementLevel === "advisory").length;
  lines.push(
    "",
    mandatory === 0
      ? `PASS: no mandatory violations (${advisory} advisory, ${exempt.length} exemptions)`
      : `FAIL: ${mandatory} mandatory violation(s) (${advisory} advisory, ${exempt.length} exemptions)`,
  );
  return lines.join("\n");
}
