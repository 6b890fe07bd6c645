import { ProcessResult, renderProcess } from "../../scripts/lib/run-process";
import * as path from "node:path";
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
  return renderProcess(ROOT, stack, sets, secrets);
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
