/**
 * Offline policy check: renders a stack in-process under Pulumi mocks (like `npm run render`) and
 * evaluates every resource with the CrossGuard pack through its analyzer gRPC API, like
 * `pulumi preview --policy-pack policies --policy-pack-config policies/<stack>.json`.
 *   npm run policy -- --stack prod [--config FILE] [--json] [--set key=jsonValue ...]
 * Exits 1 on any mandatory violation, 2 when the stack config is invalid.
 */
import { parseArgs } from "node:util";
import { ConfigError, PROJECT } from "../components/config/load";
import { ProgramError, parseOverrides, renderStack } from "./lib/render-stack";
import { evaluateStack, formatReport, stackConfigFile, toPackResources } from "./lib/policy-report";

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      stack: { type: "string", default: "dev" },
      config: { type: "string" },
      json: { type: "boolean", default: false },
      set: { type: "string", multiple: true, default: [] },
    },
  });
  const overrides = parseOverrides(values.set ?? []);
  const stack = values.stack!;
  const configFile = values.config ?? stackConfigFile(stack);
  let rendered;
  try {
    rendered = await renderStack(stack, overrides);
  } catch (e) {
    if (e instanceof ProgramError && e.cause instanceof ConfigError) {
      process.stderr.write(`${e.cause.message}\n`);
      return 2;
    }
    throw e;
  }
  const run = await evaluateStack(stack, PROJECT, toPackResources(rendered.resources), configFile);
  if (values.json) process.stdout.write(`${JSON.stringify(run.diagnostics, null, 2)}\n`);
  else process.stdout.write(`${formatReport(stack, run, configFile)}\n`);
  return run.diagnostics.some((d) => d.enforcementLevel === "mandatory") ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(
      `policy check failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
    );
    process.exit(1);
  },
);
