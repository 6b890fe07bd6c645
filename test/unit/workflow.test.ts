/**
 * The GitHub Actions workflows (.github/workflows/): every npm command they run exists in
 * package.json and is shown in README.md, every action is pinned by commit, permissions are
 * read-only unless a job needs more, and production deploys wait in the `production` environment.
 * Each check returns its problems; the "checks catch" tests feed them broken workflows.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { parse } from "yaml";

const root = path.join(__dirname, "../..");
const workflowDir = path.join(root, ".github/workflows");

type Dict = Record<string, unknown>;
interface Step extends Dict {
  uses?: string;
  run?: string;
  with?: Dict;
}
interface Job extends Dict {
  steps?: Step[];
  permissions?: unknown;
  environment?: unknown;
  needs?: string | string[];
  env?: Dict;
  concurrency?: { group?: string; "cancel-in-progress"?: boolean | string };
  strategy?: { matrix?: Dict };
}
interface Workflow {
  file: string;
  text: string;
  on: Dict;
  permissions?: unknown;
  jobs: Record<string, Job>;
}

function parseWorkflow(file: string, text: string): Workflow {
  const doc = parse(text) as Dict;
  // YAML 1.2 keeps `on` a string key; a YAML 1.1 reader would have turned it into true.
  const on = doc.on;
  const triggers: Dict =
    typeof on === "string"
      ? { [on]: null }
      : Array.isArray(on)
        ? Object.fromEntries(on.map((t) => [t, null]))
        : ((on ?? {}) as Dict);
  return {
    file,
    text,
    on: triggers,
    permissions: doc.permissions,
    jobs: (doc.jobs ?? {}) as Record<string, Job>,
  };
}

function loadWorkflows(): Workflow[] {
  if (!fs.existsSync(workflowDir)) return [];
  return fs
    .readdirSync(workflowDir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => parseWorkflow(f, fs.readFileSync(path.join(workflowDir, f), "utf8")));
}

export interface NpmCommand {
  /** "run" for `npm run <script>` and `npm test`; "builtin" for `npm ci`/`npm install`. */
  kind: "run" | "builtin";
  /** The package.json script (run) or the npm command (builtin). */
  name: string;
  /** How README.md must show it. */
  shown: string;
}

/** Every npm command of a shell script: `npm run [flags] <script>`, `npm test`, `npm ci`. */
export function npmCommands(script: string): NpmCommand[] {
  const found: NpmCommand[] = [];
  const re =
    /(?:^|[\s;&|(])npm\s+(run-script|run|test|t|ci|install|i)\b((?:\s+-[\w=-]*)*)(?:\s+([\w:.-]+))?/g;
  for (const m of script.matchAll(re)) {
    const verb = m[1];
    if (verb === "run" || verb === "run-script") {
      assert.ok(m[3], `\`${m[0].trim()}\` names no script`);
      found.push({ kind: "run", name: m[3], shown: `npm run ${m[3]}` });
    } else if (verb === "test" || verb === "t") {
      found.push({ kind: "run", name: "test", shown: "npm test" });
    } else {
      const name = verb === "i" ? "install" : verb;
      found.push({ kind: "builtin", name, shown: `npm ${name}` });
    }
  }
  return found;
}

function steps(wf: Workflow): Array<{ job: string; step: Step }> {
  return Object.entries(wf.jobs).flatMap(([job, j]) =>
    (j.steps ?? []).map((step) => ({ job, step })),
  );
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** npm commands of the workflows whose script is missing from package.json or not in README. */
export function npmProblems(
  wfs: Workflow[],
  scripts: Record<string, string>,
  readme: string,
): string[] {
  const problems: string[] = [];
  for (const wf of wfs) {
    for (const { job, step } of steps(wf)) {
      for (const c of npmCommands(step.run ?? "")) {
        const where = `${wf.file} job ${job}: \`${c.shown}\``;
        if (c.kind === "run" && !(c.name in scripts))
          problems.push(`${where}: no script "${c.name}" in package.json`);
        if (!new RegExp(`${escapeRe(c.shown)}(?![\\w:.-])`).test(readme))
          problems.push(`${where}: not shown in README.md`);
      }
    }
  }
  return problems;
}

/** `uses:` lines not pinned by a 40-hex commit with the release tag in a trailing comment. */
export function unpinnedUses(wf: Workflow): string[] {
  const problems: string[] = [];
  const lines = wf.text.split("\n");
  lines.forEach((line, i) => {
    const m = /^\s*(?:-\s+)?uses:\s*(\S+)(.*)$/.exec(line);
    if (!m) return;
    const [, ref, rest] = m;
    if (ref.startsWith("./")) return; // an action of this repository
    if (!/^[\w.-]+\/[\w./-]+@[0-9a-f]{40}$/.test(ref))
      problems.push(`${wf.file}:${i + 1}: ${ref} is not pinned by a full commit SHA`);
    else if (!/^\s+#\s*v\d+(\.\d+)*\b/.test(rest))
      problems.push(`${wf.file}:${i + 1}: ${ref} has no "# v<tag>" comment`);
  });
  // Every uses of the parsed document must have been seen as a line (no flow-style hiding).
  const parsed =
    steps(wf).filter(({ step }) => step.uses).length +
    Object.values(wf.jobs).filter((j) => j.uses).length;
  const seen = lines.filter((l) => /^\s*(?:-\s+)?uses:/.test(l)).length;
  if (parsed !== seen)
    problems.push(`${wf.file}: ${parsed} uses in the document but ${seen} uses: lines`);
  return problems;
}

function writes(permissions: unknown): string[] {
  if (permissions === undefined) return [];
  if (typeof permissions === "string")
    return permissions === "read-all" || permissions === "{}" ? [] : [permissions];
  return Object.entries(permissions as Dict)
    .filter(([, v]) => v !== "read" && v !== "none")
    .map(([k, v]) => `${k}: ${String(v)}`);
}

/** Top-level permissions must exist and be read-only; only a commenting job may write, to PRs. */
export function permissionProblems(wf: Workflow): string[] {
  const problems: string[] = [];
  if (wf.permissions === undefined)
    problems.push(`${wf.file}: no top-level permissions (the default token can write)`);
  for (const w of writes(wf.permissions)) problems.push(`${wf.file}: top-level permission ${w}`);
  for (const [name, job] of Object.entries(wf.jobs)) {
    const w = writes(job.permissions);
    if (w.length === 0) continue;
    const comments = (job.steps ?? []).some(
      (s) =>
        /^actions\/github-script@/.test(s.uses ?? "") &&
        /createComment/.test(String(s.with?.script ?? "")),
    );
    if (!comments || w.join() !== "pull-requests: write")
      problems.push(
        `${wf.file} job ${name}: ${w.join(", ")}${comments ? "" : " without commenting"}`,
      );
  }
  return problems;
}

function pulumiSteps(job: Job): Step[] {
  return (job.steps ?? []).filter((s) => /^pulumi\/actions@/.test(s.uses ?? ""));
}

/** The stack a job's pulumi/actions step works on (from policyPackConfigs: policies/<stack>.json). */
function stacksOf(job: Job): string[] {
  const out = new Set<string>();
  for (const s of pulumiSteps(job)) {
    const config = String(s.with?.policyPackConfigs ?? "");
    if (config.includes("${{ matrix.stack }}")) {
      for (const st of (job.strategy?.matrix?.stack as string[] | undefined) ?? []) out.add(st);
    } else {
      const m = /^policies\/([\w-]+)\.json$/.exec(config);
      if (m) out.add(m[1]);
    }
  }
  return [...out];
}

/** Deploys (`command: up`): prod only in environment production, after dev; never cancelled. */
export function deployProblems(wfs: Workflow[]): string[] {
  const problems: string[] = [];
  const ups = wfs.flatMap((wf) =>
    Object.entries(wf.jobs)
      .filter(([, j]) => pulumiSteps(j).some((s) => s.with?.command === "up"))
      .map(([name, job]) => ({ wf, name, job, stacks: stacksOf(job) })),
  );
  const prod = ups.filter((u) => u.stacks.includes("prod"));
  const dev = ups.filter((u) => u.stacks.includes("dev"));
  if (prod.length !== 1) problems.push(`${prod.length} jobs run pulumi up of prod (want 1)`);
  if (dev.length !== 1) problems.push(`${dev.length} jobs run pulumi up of dev (want 1)`);
  for (const u of prod) {
    const env = u.job.environment;
    const envName = typeof env === "object" && env !== null ? (env as Dict).name : env;
    if (envName !== "production")
      problems.push(`${u.wf.file} job ${u.name}: prod deploy without environment: production`);
    if (u.stacks.length !== 1)
      problems.push(`${u.wf.file} job ${u.name}: prod deploy also deploys ${u.stacks.join(", ")}`);
    const needs = [u.job.needs ?? []].flat();
    for (const d of dev)
      if (d.wf === u.wf && !needs.includes(d.name))
        problems.push(`${u.wf.file} job ${u.name}: does not need ${d.name} (dev first)`);
    if (!Object.keys(u.wf.on).every((t) => t === "push" || t === "workflow_dispatch"))
      problems.push(`${u.wf.file}: deploys on ${Object.keys(u.wf.on).join(", ")}`);
  }
  for (const u of ups) {
    const c = u.job.concurrency;
    if (!c || !u.stacks.every((s) => String(c.group ?? "").includes(s)))
      problems.push(`${u.wf.file} job ${u.name}: no concurrency group naming its stack`);
    else if (c["cancel-in-progress"] !== false)
      problems.push(`${u.wf.file} job ${u.name}: a deploy must not cancel a running one`);
  }
  return problems;
}

const workflows = loadWorkflows();
const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as {
  scripts: Record<string, string>;
};
const readme = fs.readFileSync(path.join(root, "README.md"), "utf8");
const pulumiVersion = /^PULUMI_VERSION=(\S+)$/m.exec(
  fs.readFileSync(path.join(root, "scripts/pulumi-versions.env"), "utf8"),
)?.[1];

function workflowOn(event: string): Workflow {
  const wf = workflows.find((w) => event in w.on);
  assert.ok(wf, `no workflow runs on ${event}`);
  return wf;
}

describe("GitHub Actions workflows", () => {
  it("exist: one for pull requests, one for pushes to main", () => {
    assert.ok(workflows.length >= 2, `workflows: ${workflows.map((w) => w.file).join(", ")}`);
    workflowOn("pull_request");
    const push = workflowOn("push").on.push as { branches?: string[] } | null;
    assert.deepEqual(push?.branches, ["main"]);
  });

  it("run on a pull request: lint, type-check, unit tests, render, diff and policy of both stacks", () => {
    const pr = workflowOn("pull_request");
    const run = steps(pr)
      .map(({ step }) => step.run ?? "")
      .join("\n");
    const scripts = new Set(npmCommands(run).map((c) => c.name));
    for (const s of ["lint", "typecheck", "test:unit", "render", "diff", "policy"])
      assert.ok(scripts.has(s), `pull request workflow never runs npm run ${s}`);
    assert.match(
      run,
      /npm run --silent diff -- --stack "\$STACK" --base "origin\/\$BASE_REF" --format markdown/,
    );
    const stackJobs = Object.values(pr.jobs).filter((j) => j.strategy?.matrix?.stack);
    assert.equal(stackJobs.length, 1, "one job per stack, as a matrix over stack");
    assert.deepEqual(stackJobs[0].strategy?.matrix?.stack, ["dev", "prod"]);
    assert.match(String(stackJobs[0].concurrency?.group), /\$\{\{ matrix\.stack \}\}/);
    assert.equal(stackJobs[0].concurrency?.["cancel-in-progress"], true);
  });

  it("keep one sticky pull-request comment, found by a hidden marker and edited in place", () => {
    const pr = workflowOn("pull_request");
    const scripts = steps(pr)
      .filter(({ step }) => /^actions\/github-script@/.test(step.uses ?? ""))
      .map(({ step }) => String(step.with?.script ?? ""));
    assert.equal(scripts.length, 1, "one github-script step posts the comment");
    const marker = /const marker = "(<!-- [\w:. -]+ -->)"/.exec(scripts[0]);
    assert.ok(marker, "the comment carries a hidden <!-- marker -->");
    assert.match(scripts[0], /listComments/);
    assert.match(scripts[0], /\.includes\(marker\)/);
    assert.match(scripts[0], /updateComment/);
    assert.ok(readme.includes(marker[1]), "README names the comment's marker");
  });

  it("run only npm scripts that package.json has and README.md shows", () => {
    const all = workflows.flatMap((wf) =>
      steps(wf).flatMap(({ step }) => npmCommands(step.run ?? "")),
    );
    assert.ok(all.length >= 6, `only ${all.length} npm commands found`);
    assert.deepEqual(npmProblems(workflows, pkg.scripts, readme), []);
  });

  it("pin every action by a full commit SHA with its tag in a comment", () => {
    const uses = workflows.flatMap((wf) =>
      steps(wf)
        .map(({ step }) => step.uses)
        .filter(Boolean),
    );
    assert.ok(uses.length > 0, "no uses: found");
    assert.deepEqual(workflows.flatMap(unpinnedUses), []);
  });

  it("keep the token read-only except on the job that comments", () => {
    assert.deepEqual(workflows.flatMap(permissionProblems), []);
    const pr = workflowOn("pull_request");
    const writers = Object.entries(pr.jobs).filter(([, j]) => writes(j.permissions).length > 0);
    assert.equal(
      writers.length,
      1,
      "exactly one job of the pull request workflow writes (its comment)",
    );
  });

  it("deploy dev, then prod in the production environment, one deploy per stack at a time", () => {
    assert.deepEqual(deployProblems(workflows), []);
  });

  it("preview with the policy pack and the stack's policy config, on the pinned Pulumi version", () => {
    const all = workflows.flatMap((wf) =>
      Object.values(wf.jobs).flatMap((j) => pulumiSteps(j).map((s) => ({ s, j }))),
    );
    assert.ok(
      all.some(({ s }) => s.with?.command === "preview"),
      "no pulumi preview step",
    );
    assert.ok(pulumiVersion, "PULUMI_VERSION missing from scripts/pulumi-versions.env");
    for (const { s, j } of all) {
      assert.equal(s.with?.policyPacks, "policies");
      assert.equal(
        String(s.with?.["pulumi-version"]),
        pulumiVersion,
        "pulumi-version differs from scripts/pulumi-versions.env",
      );
      const stacks = stacksOf(j);
      assert.ok(
        stacks.length > 0,
        `policyPackConfigs ${String(s.with?.policyPackConfigs)} names no stack`,
      );
      for (const st of stacks)
        assert.ok(fs.existsSync(path.join(root, "policies", `${st}.json`)), `policies/${st}.json`);
    }
  });
});

describe("the workflow checks catch", () => {
  const wf = (text: string) => parseWorkflow("bad.yml", text);

  it("npm commands in any form", () => {
    assert.deepEqual(
      npmCommands(
        "npm ci && npm run --silent diff -- --stack x\nnpm test; (npm run test:unit)\nnpm run-script lint",
      ).map((c) => c.shown),
      ["npm ci", "npm run diff", "npm test", "npm run test:unit", "npm run lint"],
    );
    assert.deepEqual(npmCommands("echo npmrun; pnpm run x"), []);
  });

  it("a missing or undocumented npm script", () => {
    const w = wf("on: push\njobs:\n  a:\n    steps:\n      - run: npm run nope && npm run lint\n");
    assert.deepEqual(npmProblems([w], { lint: "eslint ." }, "Use `npm run lint`."), [
      'bad.yml job a: `npm run nope`: no script "nope" in package.json',
      "bad.yml job a: `npm run nope`: not shown in README.md",
    ]);
    // `npm run test:unit` in README does not document `npm run test`.
    assert.equal(
      npmProblems(
        [wf("on: push\njobs:\n  a:\n    steps:\n      - run: npm run test\n")],
        { test: "x" },
        "npm run test:unit",
      ).length,
      1,
    );
  });

  it("a tag, a short SHA or a missing tag comment", () => {
    const sha = "3d3c42e5aac5ba805825da76410c181273ba90b1";
    const w = wf(
      `on: push\njobs:\n  a:\n    steps:\n      - uses: actions/checkout@v7\n      - uses: actions/checkout@3d3c42e\n      - uses: actions/checkout@${sha}\n      - uses: actions/checkout@${sha} # v7.0.1\n      - uses: ./local\n`,
    );
    assert.equal(unpinnedUses(w).length, 3);
  });

  it("write permissions at the top or on a job that does not comment", () => {
    assert.equal(
      permissionProblems(wf("on: push\njobs: {}\n")).length,
      1,
      "missing top-level permissions",
    );
    assert.equal(permissionProblems(wf("on: push\npermissions: write-all\njobs: {}\n")).length, 1);
    assert.equal(
      permissionProblems(wf("on: push\npermissions:\n  contents: write\njobs: {}\n")).length,
      1,
    );
    assert.equal(
      permissionProblems(
        wf(
          "on: push\npermissions: {contents: read}\njobs:\n  a:\n    permissions: {pull-requests: write}\n    steps: [{run: echo}]\n",
        ),
      ).length,
      1,
    );
  });

  it("a prod deploy outside the production environment, before dev or cancellable", () => {
    const job = (stack: string, extra: string) =>
      `  ${stack}:\n${extra}    concurrency: {group: deploy-${stack}, cancel-in-progress: false}\n    steps:\n      - uses: pulumi/actions@x\n        with: {command: up, policyPackConfigs: policies/${stack}.json}\n`;
    const good = `on: {push: {branches: [main]}}\npermissions: {contents: read}\njobs:\n${job("dev", "")}${job("prod", "    needs: dev\n    environment: production\n")}`;
    assert.deepEqual(deployProblems([wf(good)]), []);
    assert.equal(deployProblems([wf(good.replace("    environment: production\n", ""))]).length, 1);
    assert.equal(deployProblems([wf(good.replace("    needs: dev\n", ""))]).length, 1);
    assert.equal(
      deployProblems([
        wf(good.replace("group: deploy-prod, cancel-in-progress: false", "group: deploy-prod")),
      ]).length,
      1,
    );
    assert.equal(
      deployProblems([wf(good.replace("{push: {branches: [main]}}", "pull_request"))]).length,
      1,
    );
  });
});
