import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { parse as parseYaml } from "yaml";
import { PREFLIGHT_ENV } from "../../components/cluster/preflight";
import { PROJECT } from "../../components/config/load";
import { envSecrets } from "./offline-secrets";
import { UsageError } from "./usage-error";

export const REPO_ROOT = path.resolve(__dirname, "../..");

/** One resource the program registered, as the engine would receive it. */
export interface RenderedResource {
  /** Pulumi type token, e.g. `kubernetes:apps/v1:Deployment`. */
  type: string;
  /** Pulumi logical name. */
  name: string;
  urn: string;
  /** Resolved inputs (for Kubernetes resources: the object without status). */
  inputs: Record<string, unknown>;
  /** True for custom (provider-managed) resources, false for components. */
  custom: boolean;
  /** URN-ish reference of the provider the resource was registered with, if any. */
  provider?: string;
  /** Input paths (dot-separated) whose values the program marked as Pulumi secrets. */
  secretPaths: string[];
  /** Resource options that change how the engine diffs and replaces it. */
  options: ResourceOptionsSeen;
}

/** The resource options a registration carried (mocks do not pass them to `newResource`). */
export interface ResourceOptionsSeen {
  ignoreChanges: string[];
  replaceOnChanges: string[];
  deleteBeforeReplace: boolean;
  protect: boolean;
  /** What the engine must finish first (`dependsOn` and input dependencies), as `type::name`. */
  dependsOn: string[];
  /** URN of the parent resource as the mock engine named it; undefined: the stack. */
  parent?: string;
  /** The `aliases` option: earlier identities the engine maps to this resource. */
  aliases: AliasSeen[];
}

/** One alias as the SDK sends it: a whole URN, or a spec of what changed. */
export interface AliasSeen {
  urn?: string;
  name?: string;
  type?: string;
  /** The earlier parent's URN. */
  parentUrn?: string;
  /** The resource was a child of the stack itself (`parent: pulumi.rootStackResource`). */
  noParent?: boolean;
}

interface AliasProto {
  getUrn(): string;
  getSpec():
    | {
        getName(): string;
        getType(): string;
        getParenturn(): string;
        getNoparent(): boolean;
      }
    | undefined;
}

function aliasSeen(a: AliasProto): AliasSeen {
  const spec = a.getSpec();
  if (!spec) return { urn: a.getUrn() };
  const seen: AliasSeen = {};
  if (spec.getName()) seen.name = spec.getName();
  if (spec.getType()) seen.type = spec.getType();
  if (spec.getParenturn()) seen.parentUrn = spec.getParenturn();
  if (spec.getNoparent()) seen.noParent = true;
  return seen;
}

// The subset of the SDK's RegisterResourceRequest read here.
interface RegisterRequest {
  getType(): string;
  getName(): string;
  getIgnorechangesList(): string[];
  getReplaceonchangesList(): string[];
  getDeletebeforereplace(): boolean;
  getProtect(): boolean;
  getDependenciesList(): string[];
  getParent(): string;
  getAliasesList(): AliasProto[];
}

/** `urn:pulumi:<stack>::<project>::<parent types>$<type>::<name>` → `<type>::<name>`. */
function typeAndName(urn: string): string {
  const parts = urn.split("::");
  const name = parts.slice(3).join("::");
  const qualified = parts[2] ?? "";
  return `${qualified.slice(qualified.lastIndexOf("$") + 1)}::${name}`;
}

/**
 * Wraps the mock monitor's registerResource to record each registration's options by
 * `type::name`, read back when the mock's newResource runs.
 */
function recordOptions(): Map<string, ResourceOptionsSeen> {
  const seen = new Map<string, ResourceOptionsSeen>();
  const monitor = pulumi.runtime.getMonitor() as unknown as {
    registerResource(req: RegisterRequest, cb: unknown): unknown;
  };
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, cb) => {
    seen.set(`${req.getType()}::${req.getName()}`, {
      ignoreChanges: req.getIgnorechangesList(),
      replaceOnChanges: req.getReplaceonchangesList(),
      deleteBeforeReplace: req.getDeletebeforereplace(),
      protect: req.getProtect(),
      dependsOn: req.getDependenciesList().map(typeAndName),
      parent: req.getParent() || undefined,
      aliases: req.getAliasesList().map(aliasSeen),
    });
    return register(req, cb);
  };
  return seen;
}

// How the SDK serialises a secret value on the wire to the (mock) engine.
const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG_VALUE = "1b47061264138c4ac30d75fd1eb44270";

/** Replaces wire-format secrets by their plain values, recording where they were. */
export function unwrapSecrets(value: unknown, at: string, found: string[]): unknown {
  if (Array.isArray(value)) return value.map((v, i) => unwrapSecrets(v, `${at}[${i}]`, found));
  if (value !== null && typeof value === "object") {
    const rec = value as Record<string, unknown>;
    if (rec[SECRET_SIG_KEY] === SECRET_SIG_VALUE) {
      found.push(at);
      return unwrapSecrets(rec.value, at, []);
    }
    return Object.fromEntries(
      Object.entries(rec).map(([k, v]) => [k, unwrapSecrets(v, at ? `${at}.${k}` : k, found)]),
    );
  }
  return value;
}

/** The program threw; records how many resources it had registered by then. */
export class ProgramError extends Error {
  constructor(
    readonly cause: unknown,
    readonly resourcesRegistered: number,
  ) {
    super(cause instanceof Error ? cause.message : String(cause));
    this.name = "ProgramError";
  }
}

/** A Kubernetes object of the render: what `kubectl apply` would receive. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [key: string]: unknown;
}

/** The value mocks give every generated secret, so tests can prove secrets never leak. */
export const MOCK_SECRET_PREFIX = "MOCK-SECRET-";

/** Reads `Pulumi.<stack>.yaml` into the engine's flat config map plus its secret keys. */
export function readStackConfig(
  stack: string,
  root = REPO_ROOT,
): { config: Record<string, string>; secretKeys: string[] } {
  const file = path.join(root, `Pulumi.${stack}.yaml`);
  if (!fs.existsSync(file))
    throw new UsageError(
      `no stack "${stack}": ${path.relative(process.cwd(), file) || file} does not exist`,
    );
  const doc = (parseYaml(fs.readFileSync(file, "utf8")) ?? {}) as {
    config?: Record<string, unknown>;
  };
  const config: Record<string, string> = {};
  const secretKeys: string[] = [];
  for (const [k, v] of Object.entries(doc.config ?? {})) {
    const key = k.includes(":") ? k : `${PROJECT}:${k}`;
    if (v !== null && typeof v === "object" && "secure" in (v as object)) {
      // Offline render cannot decrypt; the value is present, and redacted in every output anyway.
      config[key] = "[secret]";
      secretKeys.push(key);
    } else {
      config[key] = typeof v === "string" ? v : JSON.stringify(v);
    }
  }
  return { config, secretKeys };
}

function mockOutputs(args: pulumi.runtime.MockResourceArgs): Record<string, unknown> {
  const state: Record<string, unknown> = { ...args.inputs };
  switch (args.type) {
    case "random:index/randomPassword:RandomPassword":
    case "random:index/randomString:RandomString":
      state.result = `${MOCK_SECRET_PREFIX}${args.name}`;
      break;
    case "random:index/randomBytes:RandomBytes":
      state.base64 = Buffer.from(`${MOCK_SECRET_PREFIX}${args.name}`).toString("base64");
      state.hex = Buffer.from(`${MOCK_SECRET_PREFIX}${args.name}`).toString("hex");
      break;
    case "command:local:Command":
      state.stdout = "";
      state.stderr = "";
      break;
    case "docker:index/image:Image":
      state.repoDigest = `${String(args.inputs.imageName).split(":")[0]}@sha256:${"0".repeat(64)}`;
      break;
  }
  return state;
}

/**
 * Runs the Pulumi program in-process under mocks with the given stack's config (no CLI,
 * no cluster) and returns every resource it registered plus the stack outputs.
 * Call once per process: the SDK's runtime state is global.
 */
export async function renderStack(
  stack: string,
  overrides: Record<string, unknown> = {},
  secrets: Record<string, string> = {},
): Promise<{
  resources: RenderedResource[];
  outputs: Record<string, unknown>;
  /** The config map and secret keys the program ran with (stack file, overrides, secrets). */
  config: Record<string, string>;
  secretKeys: string[];
}> {
  const { config, secretKeys } = readStackConfig(stack);
  for (const [k, v] of Object.entries(overrides)) {
    const key = k.includes(":") ? k : `${PROJECT}:${k}`;
    if (v === undefined) delete config[key];
    else config[key] = typeof v === "string" ? v : JSON.stringify(v);
  }
  // Operator secrets for an offline render (scripts/lib/offline-secrets.ts); the stack file's own
  // encrypted values win.
  for (const [k, v] of Object.entries({ ...envSecrets(), ...secrets })) {
    const key = `${PROJECT}:${k}`;
    if (secretKeys.includes(key)) continue;
    config[key] = v;
    secretKeys.push(key);
  }
  const resources: RenderedResource[] = [];
  // eslint-disable-next-line prefer-const -- assigned once the mock monitor exists
  let options: Map<string, ResourceOptionsSeen>;
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const urn = `urn:pulumi:${stack}::${PROJECT}::${args.type}::${args.name}`;
        const secretPaths: string[] = [];
        const inputs = unwrapSecrets(args.inputs, "", secretPaths) as Record<string, unknown>;
        resources.push({
          type: args.type,
          name: args.name,
          urn,
          inputs,
          secretPaths,
          custom: args.custom ?? true,
          provider: args.provider,
          options: options.get(`${args.type}::${args.name}`) ?? {
            ignoreChanges: [],
            replaceOnChanges: [],
            deleteBeforeReplace: false,
            protect: false,
            dependsOn: [],
            aliases: [],
          },
        });
        return { id: `${args.name}-id`, state: mockOutputs({ ...args, inputs }) };
      },
      call(args) {
        return args.inputs;
      },
    },
    PROJECT,
    stack,
    false,
  );
  options = recordOptions();
  pulumi.runtime.setAllConfig(config, secretKeys);

  // No cluster to ask offline; a test that wants the preflight sets the variable itself.
  process.env[PREFLIGHT_ENV] ??= "skip";
  let program: Record<string, unknown>;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const entry = require(path.join(REPO_ROOT, "index.ts")) as unknown;
    // The program's entrypoint is an async function (its preflight awaits the cluster).
    program = (typeof entry === "function" ? await entry() : entry) as Record<string, unknown>;
  } catch (e) {
    throw new ProgramError(e, resources.length);
  }
  const outputs: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(program)) {
    outputs[k] = await new Promise((resolve) =>
      (pulumi.output(v) as pulumi.Output<unknown>).apply(resolve),
    );
  }
  // Registrations finish asynchronously after the outputs resolve; wait until none arrive.
  let seen = -1;
  while (seen !== resources.length) {
    seen = resources.length;
    await new Promise((r) => setTimeout(r, 50));
  }
  return { resources, outputs, config, secretKeys };
}

/** Kubernetes objects among the rendered resources (providers and components excluded). */
export function kubernetesObjects(resources: RenderedResource[]): K8sObject[] {
  return resources
    .filter(
      (r) => r.custom && r.type.startsWith("kubernetes:") && !r.type.startsWith("pulumi:providers"),
    )
    .map((r) => {
      const [, groupVersion, kind] = r.type.split(":");
      const [group, version] = groupVersion.split("/");
      const apiVersion = group === "core" ? version : `${group}/${version}`;
      return { apiVersion, kind, ...r.inputs } as K8sObject;
    });
}

/** Copy of an object safe to print or commit: Secret payloads replaced by a marker. */
export function redact(obj: K8sObject): K8sObject {
  if (obj.kind !== "Secret") return obj;
  const copy = structuredClone(obj);
  for (const field of ["data", "stringData"] as const) {
    const payload = copy[field] as Record<string, unknown> | undefined;
    if (payload) for (const k of Object.keys(payload)) payload[k] = "<redacted>";
  }
  return copy;
}
