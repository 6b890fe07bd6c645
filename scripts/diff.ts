/**
 * What a change does to a stack, for review: renders the working tree and a base commit (from a
 * temporary `git worktree`), prints objects added, removed and changed field by field (Secret
 * values redacted), the summary delta and the policy verdict of both sides.
 *   npm run diff -- --stack prod [--base REF] [--format text|markdown] [--set KEY.PATH=VALUE ...]
 * Exit 0 no change, 1 changes, 2 error (like diff).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { WHAT_IF_OPTIONS, WHAT_IF_USAGE, parseCommandLine, runMain } from "./lib/cli";
import { configOverrides } from "./lib/config-set";
import {
  DiffReport,
  PolicyVerdict,
  diffRenders,
  formatMarkdown,
  formatText,
  isEmptyDiff,
  summaryDelta,
} from "./lib/object-diff";
import { PROJECT } from "../components/config/load";
import type { Diagnostic } from "./lib/policy-pack";
import { evaluateStack, toPackResources, violationText } from "./lib/policy-report";
import {
  REPO_ROOT,
  kubernetesObjects,
  redact,
  renderStack,
  type K8sObject,
} from "./lib/render-stack";
import { runProcess } from "./lib/run-process";
import { UsageError } from "./lib/usage-error";

const USAGE = `usage: npm run diff -- --stack NAME [--base REF] [--format text|markdown] [--set KEY.PATH=VALUE ...]
Renders the working tree and a base commit offline and shows what the change does to the stack:
objects added, removed and changed (field by field, Secret values redacted), replicas, CPU and
memory totals, objects per kind, and the policy verdict of both sides.
Exit 0 no change, 1 changes, 2 error.
  --stack NAME           the stack file Pulumi.NAME.yaml (required)
  --base REF             git commit to compare with (default: the merge base with main)
  --format FORMAT        text (default) or markdown (for a pull-request comment)
${WHAT_IF_USAGE}
                         (what-ifs apply to the working tree's side only)`;

function git(args: string[], cwd = REPO_ROOT): { ok: boolean; out: string; err: string } {
  const r = spawnSync("git", args, { cwd, encoding: "utf8" });
  return { ok: r.status === 0, out: (r.stdout ?? "").trim(), err: (r.stderr ?? "").trim() };
}

/** The commit to compare with: --base, else the merge base of HEAD and main (or origin/main). */
function baseCommit(ref: string | undefined): { sha: string; label: string } {
  const candidates = ref ? [ref] : ["main", "origin/main"];
  for (const c of candidates) {
    const sha = git(["rev-parse", "--verify", "--quiet", `${c}^{commit}`]);
    if (!sha.ok) continue;
    if (ref) return { sha: sha.out, label: ref };
    const mb = git(["merge-base", "HEAD", sha.out]);
    if (mb.ok) return { sha: mb.out, label: `merge-base(HEAD, ${c}) ${mb.out.slice(0, 10)}` };
  }
  throw new UsageError(
    ref
      ? `--base ${ref}: not a commit in this repository`
      : "no main or origin/main branch to compare with: pass --base REF",
  );
}

function verdictOf(diagnostics: Diagnostic[]): PolicyVerdict {
  return {
    mandatory: diagnostics.filter((d) => d.enforcementLevel === "mandatory").length,
    advisory: diagnostics.filter((d) => d.enforcementLevel === "advisory").length,
    lines: diagnostics.map(
      (d) => `${d.enforcementLevel.toUpperCase()} ${d.policyName}: ${violationText(d)}`,
    ),
  };
}

/**
 * The working tree's render and policy verdict, in this process: one render feeds both (the
 * base side needs two processes because it runs that commit's own scripts).
 */
async function workingTreeSide(stack: string, overrides: Record<string, unknown>) {
  const rendered = await renderStack(stack, overrides);
  const objects = kubernetesObjects(rendered.resources).map(redact);
  const run = await evaluateStack(stack, PROJECT, toPackResources(rendered.resources));
  return { objects, verdict: verdictOf(run.diagnostics) };
}

/**
 * Render and policy verdict of the tree at `root` with its own scripts (a base commit): one
 * process when its policy script can print the objects too, else render and policy apart.
 */
async function baseSide(root: string, stack: string, label: string) {
  const run = (script: string, extra: string[] = []) =>
    runProcess(
      process.execPath,
      ["--import", "tsx", script, "--stack", stack, "--json", ...extra],
      { cwd: root },
    );
  const failed = (what: string, r: { stderr: string }) =>
    new Error(`${what} of ${label} failed: ${r.stderr.trim().split("\n")[0]}`);
  const policyScript = fs.readFileSync(path.join(root, "scripts/policy.ts"), "utf8");
  if (policyScript.includes("--with-objects")) {
    const both = await run("scripts/policy.ts", ["--with-objects"]);
    if (both.code !== 0 && both.code !== 1) throw failed("policy", both);
    const out = JSON.parse(both.stdout) as { diagnostics: Diagnostic[]; objects: K8sObject[] };
    return { objects: out.objects, verdict: verdictOf(out.diagnostics) };
  }
  const [render, policy] = await Promise.all([run("scripts/render.ts"), run("scripts/policy.ts")]);
  if (render.code !== 0) throw failed("render", render);
  if (policy.code !== 0 && policy.code !== 1) throw failed("policy", policy);
  const objects = (JSON.parse(render.stdout) as { objects: K8sObject[] }).objects;
  return { objects, verdict: verdictOf(JSON.parse(policy.stdout) as Diagnostic[]) };
}

/** A detached worktree of `sha` sharing this checkout's installed packages; removed by `done`. */
function worktree(sha: string): { dir: string; done: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stack-diff-"));
  const add = git(["worktree", "add", "--detach", "--force", dir, sha]);
  if (!add.ok) throw new Error(`git worktree add failed: ${add.err}`);
  for (const nm of ["node_modules", "policies/node_modules"]) {
    const src = path.join(REPO_ROOT, nm);
    const dst = path.join(dir, nm);
    if (fs.existsSync(src) && fs.existsSync(path.dirname(dst)) && !fs.existsSync(dst))
      fs.symlinkSync(src, dst, "dir");
  }
  return {
    dir,
    done: () => {
      git(["worktree", "remove", "--force", dir]);
      fs.rmSync(dir, { recursive: true, force: true });
      git(["worktree", "prune"]);
    },
  };
}

async function main(): Promise<number> {
  const values = parseCommandLine(USAGE, {
    stack: { type: "string" },
    base: { type: "string" },
    format: { type: "string", default: "text" },
    ...WHAT_IF_OPTIONS,
  });
  const stack = values.stack;
  if (!stack) throw new UsageError("--stack is required");
  if (!fs.existsSync(path.join(REPO_ROOT, `Pulumi.${stack}.yaml`)))
    throw new UsageError(`no stack "${stack}": Pulumi.${stack}.yaml does not exist`);
  if (values.format !== "text" && values.format !== "markdown")
    throw new UsageError(`--format must be text or markdown, got "${values.format}"`);
  // Parsed here, so a malformed what-if is one line before anything renders.
  const overrides = configOverrides(stack, values.set ?? [], values.replace ?? []);
  const base = baseCommit(values.base);
  const wt = worktree(base.sha);
  let report: DiffReport;
  try {
    if (!fs.existsSync(path.join(wt.dir, `Pulumi.${stack}.yaml`)))
      throw new UsageError(`stack "${stack}" does not exist at ${base.label}`);
    const [head, old] = await Promise.all([
      workingTreeSide(stack, overrides),
      baseSide(wt.dir, stack, base.label),
    ]);
    report = {
      stack,
      baseRef: base.label,
      diff: diffRenders(old.objects, head.objects),
      delta: summaryDelta(old.objects, head.objects),
      policy: { base: old.verdict, head: head.verdict },
    };
  } finally {
    wt.done();
  }
  process.stdout.write(
    `${values.format === "markdown" ? formatMarkdown(report) : formatText(report)}\n`,
  );
  return isEmptyDiff(report.diff) ? 0 : 1;
}

runMain("diff", main);
