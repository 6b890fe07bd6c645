import { spawn } from "node:child_process";
import * as path from "node:path";
import { OFFLINE_SECRETS_ENV, PLACEHOLDER_ALERT_SECRETS } from "./offline-secrets";

export interface ProcessResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion, capturing its output (never rejects on a non-zero exit). */
export function runProcess(
  command: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<ProcessResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: opts.cwd,
      env: opts.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/**
 * `scripts/render.ts --stack S --json` in its own process (the SDK's runtime is global to a
 * process), each entry of `replaces` replacing a whole top-level config key. `secrets` are passed
 * as `--secret KEY=VALUE` (what `pulumi config set --secret` is to a real stack); by default the
 * placeholder alert endpoints, which the committed stack files lack (an operator sets real ones). STOCK_ANALYSIS_SECRETS
 * from the caller's environment is not passed on: the arguments say everything.
 */
export function renderProcess(
  root: string,
  stack: string,
  replaces: Record<string, unknown> = {},
  secrets: Readonly<Record<string, string>> = PLACEHOLDER_ALERT_SECRETS,
): Promise<ProcessResult> {
  const args = [
    "--import",
    "tsx",
    path.join(root, "scripts/render.ts"),
    "--stack",
    stack,
    "--json",
  ];
  for (const [k, v] of Object.entries(replaces))
    args.push("--replace", `${k}=${JSON.stringify(v)}`);
  for (const [k, v] of Object.entries(secrets)) args.push("--secret", `${k}=${v}`);
  const env = { ...process.env };
  delete env[OFFLINE_SECRETS_ENV];
  return runProcess(process.execPath, args, { cwd: root, env });
}
