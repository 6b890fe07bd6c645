import {
  Diagnostic,
  PackConfigFile,
  PackResource,
  PolicyPackServer,
  analyzeAll,
  readPackConfig,
  typeOfObject,
} from "../../scripts/lib/policy-pack";
import { stackConfigFile } from "../../scripts/lib/policy-report";

/** A Kubernetes object as a component registers it (inputs incl. apiVersion and kind). */
export interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name?: string; namespace?: string; [k: string]: unknown };
  [k: string]: unknown;
}

const PROVIDER = {
  type: "pulumi:providers:kubernetes",
  name: "cluster-k8s",
  urn: "urn:pulumi:test::stock-analysis::pulumi:providers:kubernetes::cluster-k8s",
  props: { renderYamlToDirectory: "rendered" },
};

/** The engine's view of an object: type token, logical name, URN and the explicit provider. */
export function asResource(o: Obj): PackResource {
  const type = typeOfObject(o);
  const name = `${o.metadata.name ?? "auto"}-${o.kind.toLowerCase()}`;
  return {
    type,
    name,
    urn: `urn:pulumi:test::stock-analysis::${type}::${name}`,
    props: o as unknown as Record<string, unknown>,
    provider: PROVIDER,
  };
}

export function prodConfig(extra: PackConfigFile = {}): PackConfigFile {
  return { ...readPackConfig(stackConfigFile("prod")), ...extra };
}

/** Starts the real pack and configures it (prod config unless given). */
export async function startPack(config: PackConfigFile = prodConfig()): Promise<PolicyPackServer> {
  const server = await PolicyPackServer.start();
  try {
    await server.configure(config);
  } catch (e) {
    server.close();
    throw e;
  }
  return server;
}

/** All diagnostics for a set of objects: Analyze each, then AnalyzeStack. */
export async function evaluate(server: PolicyPackServer, objects: Obj[]): Promise<Diagnostic[]> {
  return (await analyzeAll(server, objects.map(asResource))).diagnostics;
}

export function byPolicy(ds: Diagnostic[], policy: string): Diagnostic[] {
  return ds.filter((d) => d.policyName === policy);
}

export function describeAll(ds: Diagnostic[]): string {
  return ds.map((d) => `[${d.policyName}/${d.enforcementLevel}] ${d.message}`).join("\n");
}

export function clone<T>(v: T): T {
  return structuredClone(v);
}

/**
 * Asserts that `policy` reports a mandatory violation naming `ref` (e.g. `Deployment/web`) with a
 * fix, and that no other policy fires (each case breaks exactly one rule). Returns the messages.
 */
export async function expectViolation(
  server: PolicyPackServer,
  objects: Obj[],
  policy: string,
  ref: string,
  pattern?: RegExp,
): Promise<string[]> {
  const ds = await evaluate(server, objects);
  const hits = byPolicy(ds, policy);
  if (hits.length === 0)
    throw new Error(
      `expected a ${policy} violation for ${ref}, got:\n${describeAll(ds) || "(none)"}`,
    );
  for (const d of hits) {
    if (!d.message.includes(`${ref}:`) || !d.message.includes("Fix: "))
      throw new Error(`${policy} message lacks "${ref}:" or a fix:\n${d.message}`);
    if (d.enforcementLevel !== "mandatory")
      throw new Error(`${policy} reported at ${d.enforcementLevel}, prod config says mandatory`);
  }
  if (pattern && !hits.some((d) => pattern.test(d.message)))
    throw new Error(`no ${policy} message matches ${pattern}:\n${describeAll(hits)}`);
  const others = ds.filter((d) => d.policyName !== policy);
  if (others.length > 0) throw new Error(`unexpected other violations:\n${describeAll(others)}`);
  return hits.map((d) => d.message);
}

/** Asserts that the objects produce no diagnostics at all. */
export async function expectClean(server: PolicyPackServer, objects: Obj[]): Promise<void> {
  const ds = await evaluate(server, objects);
  if (ds.length > 0) throw new Error(`expected no violations, got:\n${describeAll(ds)}`);
}
