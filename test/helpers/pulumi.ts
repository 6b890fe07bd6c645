import { spawnSync } from "node:child_process";
import { runProcess } from "../../scripts/lib/run-process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export const ROOT = path.resolve(__dirname, "../..");

/** What `scripts/install-pulumi --check` reports as installed (it installs nothing). */
export interface Toolchain {
  /** The CLI and the Node.js language host: enough to run the program. */
  runsPrograms: boolean;
  /** The kubernetes, random and command providers at the package.json versions. */
  providers: boolean;
  /** The language host starts Node.js policy packs (the CLI does that through its RunPlugin). */
  policyPacks: boolean;
  /** Pieces reported MISSING, e.g. "provider kubernetes". */
  missing: string[];
}

const PIECES = [
  "pulumi",
  "pulumi-language-nodejs",
  "provider kubernetes",
  "provider random",
  "provider command",
];

export function toolchain(): Toolchain {
  const r = spawnSync("bash", [path.join(ROOT, "scripts/install-pulumi"), "--check"], {
    cwd: ROOT,
    encoding: "utf8",
  });
  const lines = `${r.stdout}${r.stderr}`.split("\n").map((l) => l.trim());
  const line = (name: string) => lines.find((l) => l.startsWith(`${name} `)) ?? "MISSING";
  const missing = PIECES.filter((p) => /MISSING/.test(line(p)));
  const ok = (name: string) => !missing.includes(name);
  return {
    runsPrograms: ok("pulumi") && ok("pulumi-language-nodejs"),
    providers: ok("provider kubernetes") && ok("provider random") && ok("provider command"),
    policyPacks:
      ok("pulumi-language-nodejs") && !/no policy packs/.test(line("pulumi-language-nodejs")),
    missing,
  };
}

/** Why a test needing the given capabilities cannot run, or false when it can. */
export function skipReason(
  tc: Toolchain,
  needs: { providers?: boolean; policyPacks?: boolean } = {},
): string | false {
  if (!tc.runsPrograms || (needs.providers && !tc.providers))
    return `not installed: ${tc.missing.join(", ")} (scripts/install-pulumi)`;
  if (needs.policyPacks && !tc.policyPacks)
    return "the installed Node.js language host cannot start policy packs (scripts/install-pulumi)";
  return false;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a repo script (scripts/<name>) with bash. */
export function runScript(
  name: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  cwd = ROOT,
): Promise<RunResult> {
  return runProcess("bash", [path.join(ROOT, "scripts", name), ...args], {
    cwd,
    env: { ...process.env, ...env },
  });
}

/** `scripts/pulumi <args>`: the installed CLI with the repo's local settings. */
export function pulumi(args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return runScript("pulumi", args, env);
}

/** A file backend in a temp dir, so tests never touch .pulumi-state/. */
export interface TempBackend {
  dir: string;
  env: NodeJS.ProcessEnv;
  cleanup(): void;
}

export function tempBackend(): TempBackend {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "engine-state-"));
  return {
    dir,
    env: { PULUMI_BACKEND_URL: `file://${dir}`, PULUMI_CONFIG_PASSPHRASE: "engine-test" },
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

/** Creates the stack in the backend if needed; returns the file to pass as --config-file. */
export async function stackConfig(
  stack: string,
  backend: TempBackend,
  source = path.join(ROOT, `Pulumi.${stack}.yaml`),
): Promise<string> {
  const r = await runScript("pulumi-stack-config", [stack, source], backend.env);
  if (r.code !== 0) throw new Error(`pulumi-stack-config ${stack} failed: ${r.stderr}`);
  return r.stdout.trim();
}

/** One step of `pulumi preview --json`. */
export interface PreviewStep {
  op: string;
  urn: string;
  diffReasons?: string[];
  newState?: { type: string; inputs?: Record<string, unknown> };
  detailedDiff?: Record<string, unknown> | null;
}

export interface PreviewDigest {
  steps?: PreviewStep[];
  diagnostics?: { urn?: string; message?: string; severity?: string }[];
  changeSummary?: Record<string, number>;
}

/** Parses the JSON document `pulumi preview --json` prints (also when it failed). */
export function previewDigest(r: RunResult): PreviewDigest {
  const start = r.stdout.indexOf("{");
  if (start < 0) throw new Error(`no JSON from pulumi preview (exit ${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout.slice(start)) as PreviewDigest;
}

/** `type::name` of a URN (the part the program chose; parents are not part of it). */
export function typeAndName(urn: string): string {
  const parts = urn.split("::");
  const types = parts[2].split("$");
  return `${types[types.length - 1]}::${parts[3]}`;
}

/** Policy pack flags for a stack, when the pack exists (its policies/<stack>.json if present). */
export function policyArgs(stack: string): string[] {
  if (!fs.existsSync(path.join(ROOT, "policies/PulumiPolicy.yaml"))) return [];
  const args = ["--policy-pack", path.join(ROOT, "policies")];
  const config = path.join(ROOT, "policies", `${stack}.json`);
  if (fs.existsSync(config)) args.push("--policy-pack-config", config);
  return args;
}
