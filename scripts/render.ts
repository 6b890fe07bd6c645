/**
 * Offline render: runs the program for a stack under Pulumi mocks (no CLI, no cluster) and
 * writes every Kubernetes object as YAML, one file per object, Secret values redacted.
 *   npm run render -- --stack dev [--out DIR] [--json] [--set key=jsonValue ...]
 */
import * as path from "node:path";
import { parseArgs } from "node:util";
import { stringify } from "yaml";
import { PreflightError } from "../components/cluster/preflight";
import { ConfigError } from "../components/config/load";
import { writeRenderDir } from "./lib/render-files";
import {
  ProgramError,
  kubernetesObjects,
  redact,
  parseOverrides,
  renderStack,
} from "./lib/render-stack";
import { schemaErrors } from "./lib/validate-schema";
import { formatSummary } from "./lib/summary";

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      stack: { type: "string", default: "dev" },
      out: { type: "string" },
      json: { type: "boolean", default: false },
      set: { type: "string", multiple: true, default: [] },
    },
  });
  const overrides = parseOverrides(values.set ?? []);
  const stack = values.stack!;
  let rendered;
  try {
    rendered = await renderStack(stack, overrides);
  } catch (e) {
    if (
      e instanceof ProgramError &&
      (e.cause instanceof ConfigError || e.cause instanceof PreflightError)
    ) {
      process.stderr.write(
        `${e.cause.message}\n(${e.resourcesRegistered} resources were registered)\n`,
      );
      return 2;
    }
    throw e;
  }
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

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(
      `render failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
    );
    process.exit(1);
  },
);
