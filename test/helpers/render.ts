import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { ProcessResult, renderProcess } from "../../scripts/lib/run-process";
import type { K8sObject, RenderedResource } from "../../scripts/lib/render-stack";

const ROOT = path.resolve(__dirname, "../..");

export interface RenderResult {
  resources: RenderedResource[];
  /** Kubernetes objects, Secret payloads redacted. */
  objects: K8sObject[];
  outputs: Record<string, unknown>;
}

export interface RenderFailure {
  code: number;
  stderr: string;
}

/** Runs `scripts/render.ts --json` for a stack in a fresh process (the SDK runtime is global). */
export function renderRaw(
  stack: string,
  sets: Record<string, unknown> = {},
  /** Secret keys as `--secret`; default: placeholder alert endpoints (prod's file has none). */
  secrets?: Record<string, string>,
): Promise<ProcessResult> {
  // Each key's value replaces the stack's whole top-level key (tests state what they render).
  const cache = process.env.TEST_RENDER_CACHE;
  if (!cache) return renderProcess(ROOT, stack, sets, secrets);
  return cachedRender(cache, stack, sets, secrets);
}

/**
 * One render per distinct input across the test files of one run: scripts/test.sh points
 * TEST_RENDER_CACHE at a directory it creates for the run and removes after it, so the sources
 * cannot change under a cached result. The key is every input of the render process: stack,
 * replaced keys, secrets and the environment variables the program reads.
 */
async function cachedRender(
  dir: string,
  stack: string,
  sets: Record<string, unknown>,
  secrets: Record<string, string> | undefined,
): Promise<ProcessResult> {
  const env = Object.entries(process.env)
    .filter(([k]) => /^(STOCK_ANALYSIS_|PULUMI_)/.test(k))
    .sort(([a], [b]) => a.localeCompare(b));
  const key = createHash("sha256")
    .update(JSON.stringify([ROOT, stack, sets, secrets ?? null, env]))
    .digest("hex");
  const file = path.join(dir, `${key}.json`);
  if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, "utf8")) as ProcessResult;
  const r = await renderProcess(ROOT, stack, sets, secrets);
  // Written whole, then renamed: a file rendering the same input at once reads all or nothing.
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(r));
  fs.renameSync(tmp, file);
  return r;
}

export async function render(
  stack: string,
  sets: Record<string, unknown> = {},
): Promise<RenderResult> {
  const r = await renderRaw(stack, sets);
  if (r.code !== 0) throw new Error(`render of ${stack} failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as RenderResult;
}

export function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o)
    throw new Error(
      `no ${kind}/${name} in render (have: ${objects.map((x) => `${x.kind}/${x.metadata.name}`).join(", ")})`,
    );
  return o;
}
