/**
 * Offline render: runs the program for a stack under Pulumi mocks (no CLI, no cluster) and
 * writes every Kubernetes object as YAML, one file per object, Secret values redacted.
 *   npm run render -- --stack dev [--out DIR] [--json] [--set key.path=value ...] (see --help)
 */
import * as path from "node:path";
import { stringify } from "yaml";
import { writeRenderDir } from "./lib/render-files";
import { WHAT_IF_OPTIONS, WHAT_IF_USAGE, parseCommandLine, runMain } from "./lib/cli";
import { configOverrides } from "./lib/config-set";
import { kubernetesObjects, redact, renderStack } from "./lib/render-stack";
import { schemaErrors } from "./lib/validate-schema";
import { formatAlerting, formatSummary } from "./lib/summary";
import { parseSecretArgs } from "./lib/offline-secrets";
import { loadConfig } from "../components/config/load";

const USAGE = `usage: npm run render -- [--stack dev|prod] [--out DIR] [--json] [--set KEY.PATH=VALUE ...] [--secret KEY=VALUE ...]
Renders the stack offline under Pulumi mocks (no CLI, no cluster), prints a summary and validates
every object against the Kubernetes OpenAPI schema. Exit 0 valid, 1 schema errors, 2 bad input.
  --stack NAME           the stack file Pulumi.NAME.yaml (default dev)
  --out DIR              write one YAML file per object, named in apply order
  --json                 print resources, objects (Secrets redacted) and outputs as JSON
  --secret KEY=VALUE     a secret top-level key, as \`pulumi config set --secret KEY VALUE\` would set
                         it (also: env STOCK_ANALYSIS_SECRETS='{"KEY":"VALUE"}'); the stack
                         file's own encrypted value wins
${WHAT_IF_USAGE}`;

async function main(): Promise<number> {
  const values = parseCommandLine(USAGE, {
    stack: { type: "string", default: "dev" },
    out: { type: "string" },
    json: { type: "boolean", default: false },
    secret: { type: "string", multiple: true, default: [] as string[] },
    ...WHAT_IF_OPTIONS,
  });
  const stack = values.stack!;
  const overrides = configOverrides(stack, values.set ?? [], values.replace ?? []);
  const rendered = await renderStack(stack, overrides, parseSecretArgs(values.secret ?? []));
  const objects = kubernetesObjects(rendered.resources).map(redact);
  if (values.json) {
    // Wait for the flush: process.exit() would cut a large write to a pipe short.
    await new Promise<void>((resolve) =>
      process.stdout.write(
        JSON.stringify({ resources: rendered.resources, objects, outputs: rendered.outputs }),
        () => resolve(),
      ),
    );
    return 0;
  }
  if (values.out) {
    const dir = path.resolve(values.out);
    // File names sort in dependency order, so `kubectl apply -f DIR` works in one pass.
    writeRenderDir(objects, dir);
    process.stdout.write(`Wrote ${objects.length} objects to ${dir}\n\n`);
  }
  process.stdout.write(`${formatSummary(stack, objects)}\n`);
  process.stdout.write(
    `\n${formatAlerting(loadConfig(rendered.config, rendered.secretKeys), stack)}\n`,
  );
  process.stdout.write(`\nStack outputs:\n${stringify(rendered.outputs)}`);
  let invalid = 0;
  for (const o of objects) {
    const err = await schemaErrors(o);
    if (err) {
      invalid++;
      process.stderr.write(`schema: ${o.kind}/${o.metadata.name}: ${err}\n`);
    }
  }
  process.stdout.write(
    `\nSchema: ${objects.length - invalid} of ${objects.length} objects valid (Kubernetes OpenAPI)\n`,
  );
  return invalid === 0 ? 0 : 1;
}

runMain("render", main);
