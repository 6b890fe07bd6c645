/** Renders for the e2e: the stack's objects with mock secret values (never real ones). */
import { loadConfig } from "../../components/config/load";
import type { PlatformConfig } from "../../components/config/schema";
import { kubernetesObjects, readStackConfig, REPO_ROOT } from "./render-stack";
import type { K8sObject, RenderedResource } from "./render-stack";
import { renderProcess } from "./run-process";

/** The stack's validated config, as the program sees it. */
export function stackConfig(stack: string): PlatformConfig {
  const { config, secretKeys } = readStackConfig(stack);
  return loadConfig(config, secretKeys);
}

/** The stack file's value of a top-level key (parsed), for what-if overrides. */
export function stackValue(stack: string, key: string): Record<string, unknown> {
  const raw = readStackConfig(stack).config[`stock-analysis:${key}`];
  return raw === undefined ? {} : (JSON.parse(raw) as Record<string, unknown>);
}

/**
 * Every Kubernetes object of a render, secrets unredacted: their values come from the mocks
 * (MOCK-SECRET-…) or stand for encrypted config ("[secret]"), so they are safe to apply.
 * Runs scripts/render.ts in its own process: the SDK's runtime is global to a process.
 */
export function renderObjects(
  stack: string,
  sets: Record<string, unknown> = {},
): Promise<K8sObject[]> {
  return renderProcess(REPO_ROOT, stack, sets).then(({ code, stdout, stderr }) => {
    if (code !== 0) throw new Error(`render ${stack} failed (${code}): ${stderr}`);
    const { resources } = JSON.parse(stdout) as { resources: RenderedResource[] };
    return kubernetesObjects(resources);
  });
}
