/**
 * Offline policy check: renders a stack in-process under Pulumi mocks (like `npm run render`) and
 * evaluates every resource with the CrossGuard pack through its analyzer gRPC API, like
 * `pulumi preview --policy-pack policies --policy-pack-config policies/<stack>.json`.
 *   npm run policy -- --stack prod [--config FILE] [--json] [--set key.path=value ...] (see --help)
 * Exits 1 on any mandatory violation, 2 when the stack config is invalid.
 */
import { PROJECT } from "../components/config/load";
import { WHAT_IF_OPTIONS, WHAT_IF_USAGE, parseCommandLine, runMain } from "./lib/cli";
import { configOverrides } from "./lib/config-set";
import { kubernetesObjects, redact, renderStack } from "./lib/render-stack";
import { evaluateStack, formatReport, stackConfigFile, toPackResources } from "./lib/policy-report";

const USAGE = `usage: npm run policy -- [--stack dev|prod] [--config FILE] [--json] [--set KEY.PATH=VALUE ...]
Renders the stack offline and evaluates it with the CrossGuard pack in policies/, as
\`pulumi preview --policy-pack policies\` would. Exit 0 pass, 1 mandatory violation, 2 bad input.
  --stack NAME           the stack file Pulumi.NAME.yaml (default dev)
  --config FILE          policy config (default policies/<stack>.json)
  --json                 print the diagnostics as JSON
  --with-objects         with --json: {"diagnostics": [...], "objects": [...]}, the rendered
                         Kubernetes objects too (Secrets redacted; npm run diff reads both)
${WHAT_IF_USAGE}`;

async function main(): Promise<number> {
  const values = parseCommandLine(USAGE, {
    stack: { type: "string", default: "dev" },
    config: { type: "string" },
    json: { type: "boolean", default: false },
    "with-objects": { type: "boolean", default: false },
    ...WHAT_IF_OPTIONS,
  });
  const stack = values.stack!;
  const rendered = await renderStack(
    stack,
    configOverrides(stack, values.set ?? [], values.replace ?? []),
  );
  const configFile = values.config ?? stackConfigFile(stack);
  const run = await evaluateStack(stack, PROJECT, toPackResources(rendered.resources), configFile);
  if (values.json && values["with-objects"]) {
    const objects = kubernetesObjects(rendered.resources).map(redact);
    // Wait for the flush: process.exit() would cut a large write to a pipe short.
    await new Promise<void>((resolve) =>
      process.stdout.write(JSON.stringify({ diagnostics: run.diagnostics, objects }), () =>
        resolve(),
      ),
    );
  } else if (values.json) process.stdout.write(`${JSON.stringify(run.diagnostics, null, 2)}\n`);
  else process.stdout.write(`${formatReport(stack, run, configFile)}\n`);
  return run.diagnostics.some((d) => d.enforcementLevel === "mandatory") ? 1 : 0;
}

runMain("policy", main);
