/**
 * Talks to the CrossGuard policy pack exactly like the Pulumi CLI does: starts the pack with
 * @pulumi/pulumi's `run-policy-pack` entry point (ts-node, type-checked), reads the analyzer's
 * port from its stdout, and drives the Analyzer gRPC service: GetAnalyzerInfo, Configure with the
 * per-stack config reconciled the CLI's way (schema defaults, then "all", then per-policy),
 * ConfigureStack, Analyze per resource and AnalyzeStack over all of them.
 */
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as analyzerRpc from "@pulumi/pulumi/proto/analyzer_grpc_pb";
import * as analyzerPb from "@pulumi/pulumi/proto/analyzer_pb";
import * as rpc from "@pulumi/pulumi/runtime/rpc";
import { Empty } from "google-protobuf/google/protobuf/empty_pb";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";

const ROOT = path.resolve(__dirname, "../..");
export const POLICIES_DIR = path.join(ROOT, "policies");

export type EnforcementLevel = "advisory" | "mandatory" | "disabled" | "remediate";

const LEVEL_NAME: Record<number, EnforcementLevel> = {
  [analyzerPb.EnforcementLevel.ADVISORY]: "advisory",
  [analyzerPb.EnforcementLevel.MANDATORY]: "mandatory",
  [analyzerPb.EnforcementLevel.DISABLED]: "disabled",
  [analyzerPb.EnforcementLevel.REMEDIATE]: "remediate",
};
const LEVEL_PROTO: Record<EnforcementLevel, analyzerPb.EnforcementLevel> = {
  advisory: analyzerPb.EnforcementLevel.ADVISORY,
  mandatory: analyzerPb.EnforcementLevel.MANDATORY,
  disabled: analyzerPb.EnforcementLevel.DISABLED,
  remediate: analyzerPb.EnforcementLevel.REMEDIATE,
};

/** A resource as the engine describes it to analyzers. */
export interface PackResource {
  type: string;
  name: string;
  urn: string;
  props: Record<string, unknown>;
  /** Property paths (render-stack's `a.b[0].c` form) that are Pulumi secrets. */
  secretPaths?: string[];
  provider?: { type: string; name: string; urn: string; props: Record<string, unknown> };
  parent?: string;
}

export interface Diagnostic {
  policyName: string;
  enforcementLevel: EnforcementLevel;
  /** The policy's description, a newline, then the violation (what is wrong and the fix). */
  message: string;
  /** URN of the offending resource (for Analyze: the analyzed one). */
  urn: string;
}

export interface NotApplicable {
  policyName: string;
  reason: string;
}

export interface AnalyzeResult {
  diagnostics: Diagnostic[];
  notApplicable: NotApplicable[];
}

export interface PolicyInfo {
  name: string;
  description: string;
  enforcementLevel: EnforcementLevel;
  configSchema?: { properties: Record<string, JsonSchema>; required: string[] };
}

export interface JsonSchema {
  type?: string;
  default?: unknown;
  minimum?: number;
  minLength?: number;
  items?: JsonSchema;
  additionalProperties?: JsonSchema | boolean;
  [k: string]: unknown;
}

/** `policies/<stack>.json`: `{"all": level, "<policy>": level | {enforcementLevel?, ...properties}}`. */
export type PackConfigFile = Record<string, EnforcementLevel | Record<string, unknown>>;

export interface PolicyConfig {
  enforcementLevel: EnforcementLevel;
  properties: Record<string, unknown>;
}

/** Marks the values at `secretPaths` as secrets, in the same path notation render-stack records. */
export function wrapSecrets(value: unknown, secretPaths: ReadonlySet<string>, at = ""): unknown {
  if (at && secretPaths.has(at)) return { [rpc.specialSigKey]: rpc.specialSecretSig, value };
  if (Array.isArray(value)) return value.map((v, i) => wrapSecrets(v, secretPaths, `${at}[${i}]`));
  if (value !== null && typeof value === "object")
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map(([k, v]) => [
        k,
        wrapSecrets(v, secretPaths, at ? `${at}.${k}` : k),
      ]),
    );
  return value;
}

function toStruct(props: Record<string, unknown>, secretPaths: string[] = []): Struct {
  // JSON round trip drops undefined, which Struct cannot hold (the engine never sends it either).
  const clean = JSON.parse(JSON.stringify(props)) as Record<string, unknown>;
  return Struct.fromJavaScript(
    wrapSecrets(clean, new Set(secretPaths)) as Parameters<typeof Struct.fromJavaScript>[0],
  );
}

function resourceOptions(parent?: string): analyzerPb.AnalyzerResourceOptions {
  const opts = new analyzerPb.AnalyzerResourceOptions();
  opts.setProtect(false);
  opts.setCustomtimeouts(new analyzerPb.AnalyzerResourceOptions.CustomTimeouts());
  if (parent) opts.setParent(parent);
  return opts;
}

function providerOf(r: PackResource): analyzerPb.AnalyzerProviderResource | undefined {
  if (!r.provider) return undefined;
  const p = new analyzerPb.AnalyzerProviderResource();
  p.setType(r.provider.type);
  p.setName(r.provider.name);
  p.setUrn(r.provider.urn);
  p.setProperties(toStruct(r.provider.props));
  return p;
}

function fromResponse(resp: analyzerPb.AnalyzeResponse, defaultUrn = ""): AnalyzeResult {
  return {
    diagnostics: resp.getDiagnosticsList().map((d) => ({
      policyName: d.getPolicyname(),
      enforcementLevel: LEVEL_NAME[d.getEnforcementlevel()],
      message: d.getMessage(),
      urn: d.getUrn() || defaultUrn,
    })),
    notApplicable: resp
      .getNotApplicableList()
      .map((n) => ({ policyName: n.getPolicyName(), reason: n.getReason() })),
  };
}

const VALID_LEVELS = new Set(["advisory", "mandatory", "disabled", "remediate"]);

/** Checks a value against the JSON-schema subset the pack's config schemas use. */
function schemaErrors(value: unknown, schema: JsonSchema, at: string): string[] {
  const errs: string[] = [];
  const t = schema.type;
  const actual = Array.isArray(value) ? "array" : value === null ? "null" : typeof value;
  if (t === "integer" ? !Number.isInteger(value) : t !== undefined && actual !== t)
    return [`${at}: expected ${t}, got ${JSON.stringify(value)}`];
  if (typeof value === "number" && schema.minimum !== undefined && value < schema.minimum)
    errs.push(`${at}: must be >= ${schema.minimum}`);
  if (
    typeof value === "string" &&
    schema.minLength !== undefined &&
    value.length < schema.minLength
  )
    errs.push(`${at}: must not be empty`);
  if (Array.isArray(value) && schema.items)
    value.forEach((v, i) => errs.push(...schemaErrors(v, schema.items!, `${at}[${i}]`)));
  if (actual === "object" && typeof schema.additionalProperties === "object")
    for (const [k, v] of Object.entries(value as object))
      errs.push(...schemaErrors(v, schema.additionalProperties, `${at}.${k}`));
  return errs;
}

/**
 * The CLI's config reconciliation: schema defaults and each policy's own level, then the file's
 * "all" level, then per-policy levels and properties; finally validation against the schemas.
 * Like the CLI, config for a policy the pack does not have is ignored; it is returned as a warning.
 */
export function reconcileConfig(
  policies: PolicyInfo[],
  file: PackConfigFile,
): { config: Map<string, PolicyConfig>; warnings: string[] } {
  const result = new Map<string, PolicyConfig>();
  for (const p of policies) {
    const properties: Record<string, unknown> = {};
    for (const [k, s] of Object.entries(p.configSchema?.properties ?? {}))
      if (s.default !== undefined) properties[k] = structuredClone(s.default);
    result.set(p.name, { enforcementLevel: p.enforcementLevel, properties });
  }
  const errors: string[] = [];
  const warnings: string[] = [];
  const levelOf = (key: string, v: unknown): EnforcementLevel | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== "string" || !VALID_LEVELS.has(v)) {
      errors.push(`${key}: ${JSON.stringify(v)} is not a valid enforcement level`);
      return undefined;
    }
    return v as EnforcementLevel;
  };
  const all = file.all;
  if (all !== undefined) {
    const level = levelOf("all", typeof all === "string" ? all : all.enforcementLevel);
    if (level) for (const c of result.values()) c.enforcementLevel = level;
  }
  for (const [key, given] of Object.entries(file)) {
    if (key === "all") continue;
    const current = result.get(key);
    if (!current) {
      warnings.push(`${key}: no such policy in the pack; its config is ignored`);
      continue;
    }
    if (typeof given === "string") {
      current.enforcementLevel = levelOf(key, given) ?? current.enforcementLevel;
      continue;
    }
    const { enforcementLevel, ...props } = given;
    current.enforcementLevel = levelOf(key, enforcementLevel) ?? current.enforcementLevel;
    Object.assign(current.properties, props);
  }
  for (const p of policies) {
    const schema = p.configSchema;
    if (!schema) continue;
    const props = result.get(p.name)!.properties;
    for (const r of schema.required) if (!(r in props)) errors.push(`${p.name}: ${r} is required`);
    for (const [k, v] of Object.entries(props)) {
      const s = schema.properties[k];
      if (!s) errors.push(`${p.name}.${k}: not a property of this policy`);
      else errors.push(...schemaErrors(v, s, `${p.name}.${k}`));
    }
  }
  if (errors.length > 0) throw new Error(`invalid policy pack config:\n  ${errors.join("\n  ")}`);
  return { config: result, warnings };
}

export function readPackConfig(file: string): PackConfigFile {
  return JSON.parse(fs.readFileSync(file, "utf8")) as PackConfigFile;
}

/** A running policy pack and a gRPC connection to its analyzer. */
export class PolicyPackServer {
  private constructor(
    private readonly child: ChildProcess,
    private readonly client: analyzerRpc.AnalyzerClient,
    readonly stderr: () => string,
  ) {}

  /** Starts the pack in `packDir` as the CLI does and connects to the port it prints. */
  static async start(packDir = POLICIES_DIR): Promise<PolicyPackServer> {
    // The pack's own @pulumi/pulumi (policies/node_modules after setup), as the CLI would use.
    const runPolicyPack = require.resolve("@pulumi/pulumi/cmd/run-policy-pack", {
      paths: [packDir],
    });
    // Argument 1 is the engine address the CLI passes; the pack does not call back into it.
    const child = spawn(process.execPath, [runPolicyPack, "127.0.0.1:0", "."], {
      cwd: packDir,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr!.on("data", (d) => (stderr += d));
    // Never outlive the process that started it, even when a caller forgets close().
    const killChild = () => child.kill();
    process.once("exit", killChild);
    child.once("exit", () => process.off("exit", killChild));
    const port = await new Promise<number>((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (d) => {
        out += d;
        const line = /^(\d+)\s*$/m.exec(out);
        if (line) resolve(Number(line[1]));
      });
      child.on("exit", (code) =>
        reject(new Error(`policy pack exited (${code}) before serving:\n${stderr}${out}`)),
      );
      child.on("error", reject);
    });
    const client = new analyzerRpc.AnalyzerClient(
      `127.0.0.1:${port}`,
      grpc.credentials.createInsecure(),
      { "grpc.max_receive_message_length": 400 * 1024 * 1024 },
    );
    return new PolicyPackServer(child, client, () => stderr);
  }

  private call<Req, Res>(
    method: (req: Req, cb: (err: grpc.ServiceError | null, res: Res) => void) => unknown,
    req: Req,
  ): Promise<Res> {
    return new Promise((resolve, reject) =>
      method.call(this.client, req, (err, res) => (err ? reject(err) : resolve(res))),
    );
  }

  async info(): Promise<{ name: string; version: string; policies: PolicyInfo[] }> {
    const info = await this.call<Empty, analyzerPb.AnalyzerInfo>(
      this.client.getAnalyzerInfo,
      new Empty(),
    );
    return {
      name: info.getName(),
      version: info.getVersion(),
      policies: info.getPoliciesList().map((p) => {
        const schema = p.getConfigschema();
        return {
          name: p.getName(),
          description: p.getDescription(),
          enforcementLevel: LEVEL_NAME[p.getEnforcementlevel()],
          configSchema: schema && {
            properties: (schema.getProperties()?.toJavaScript() ?? {}) as Record<
              string,
              JsonSchema
            >,
            required: schema.getRequiredList(),
          },
        };
      }),
    };
  }

  /** Reconciles the per-stack file with the pack's schemas and sends the result (`Configure`). */
  async configure(
    file: PackConfigFile,
  ): Promise<{ config: Map<string, PolicyConfig>; warnings: string[] }> {
    const { policies } = await this.info();
    const { config, warnings } = reconcileConfig(policies, file);
    const req = new analyzerPb.ConfigureAnalyzerRequest();
    const map = req.getPolicyconfigMap();
    for (const [name, c] of config) {
      const pc = new analyzerPb.PolicyConfig();
      pc.setEnforcementlevel(LEVEL_PROTO[c.enforcementLevel]);
      pc.setProperties(
        Struct.fromJavaScript(c.properties as Parameters<typeof Struct.fromJavaScript>[0]),
      );
      map.set(name, pc);
    }
    await this.call<analyzerPb.ConfigureAnalyzerRequest, Empty>(this.client.configure, req);
    return { config, warnings };
  }

  async configureStack(stack: string, project: string, dryRun = true): Promise<void> {
    const req = new analyzerPb.AnalyzerStackConfigureRequest();
    req.setStack(stack);
    req.setProject(project);
    req.setDryRun(dryRun);
    await this.call<
      analyzerPb.AnalyzerStackConfigureRequest,
      analyzerPb.AnalyzerStackConfigureResponse
    >(this.client.configureStack, req);
  }

  async analyze(r: PackResource): Promise<AnalyzeResult> {
    const req = new analyzerPb.AnalyzeRequest();
    req.setType(r.type);
    req.setName(r.name);
    req.setUrn(r.urn);
    req.setProperties(toStruct(r.props, r.secretPaths));
    req.setOptions(resourceOptions(r.parent));
    const provider = providerOf(r);
    if (provider) req.setProvider(provider);
    return fromResponse(
      await this.call<analyzerPb.AnalyzeRequest, analyzerPb.AnalyzeResponse>(
        this.client.analyze,
        req,
      ),
      r.urn,
    );
  }

  async analyzeStack(resources: PackResource[]): Promise<AnalyzeResult> {
    const req = new analyzerPb.AnalyzeStackRequest();
    req.setResourcesList(
      resources.map((r) => {
        const ar = new analyzerPb.AnalyzerResource();
        ar.setType(r.type);
        ar.setName(r.name);
        ar.setUrn(r.urn);
        ar.setProperties(toStruct(r.props, r.secretPaths));
        ar.setOptions(resourceOptions(r.parent));
        if (r.parent) ar.setParent(r.parent);
        const provider = providerOf(r);
        if (provider) ar.setProvider(provider);
        return ar;
      }),
    );
    return fromResponse(
      await this.call<analyzerPb.AnalyzeStackRequest, analyzerPb.AnalyzeResponse>(
        this.client.analyzeStack,
        req,
      ),
    );
  }

  close(): void {
    this.client.close();
    this.child.kill();
  }
}

/** Every diagnostic of a preview: Analyze per resource, then AnalyzeStack over all. */
export async function analyzeAll(
  server: PolicyPackServer,
  resources: PackResource[],
): Promise<AnalyzeResult> {
  const diagnostics: Diagnostic[] = [];
  const notApplicable: NotApplicable[] = [];
  for (const r of resources) {
    const res = await server.analyze(r);
    diagnostics.push(...res.diagnostics);
    notApplicable.push(...res.notApplicable);
  }
  const stack = await server.analyzeStack(resources);
  diagnostics.push(...stack.diagnostics);
  return { diagnostics, notApplicable };
}

/** The Pulumi type token of a Kubernetes object (`apps/v1` Deployment → `kubernetes:apps/v1:Deployment`). */
export function typeOfObject(obj: { apiVersion: string; kind: string }): string {
  const groupVersion = obj.apiVersion.includes("/") ? obj.apiVersion : `core/${obj.apiVersion}`;
  return `kubernetes:${groupVersion}:${obj.kind}`;
}
