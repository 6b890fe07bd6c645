/**
 * scripts/lib/kube-target.sh as the operator scripts use it: the cluster comes from the stack's
 * config (prod: cluster.context; dev: kind-<name>), --context overrides it, the target line names
 * context, API server and namespace, and prod needs --yes or a typed confirmation on a terminal.
 * kubectl is a recording fake that knows two kubeconfig contexts.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { resolveKubeTarget } from "../../scripts/lib/kube-target";

const ROOT = path.resolve(__dirname, "../..");
const SERVERS: Record<string, string> = {
  "stock-analysis-prod": "https://prod.k8s.example:6443",
  "kind-stock-analysis": "https://127.0.0.1:41234",
  "staging-east": "https://staging.k8s.example:6443",
};
let work: string;

// `config view --minify --context C` answers C's server (nothing for an unknown context, as
// kubectl fails); every other call is recorded and fails, so a script stops at its first action.
const FAKE_KUBECTL = `#!/usr/bin/env bash
echo "$*" >>"$FAKE_LOG"
ctx=""
[ "$1" = --context ] && ctx=$2
if [[ " $* " == *" config view --minify "* ]]; then
  case $ctx in
${Object.entries(SERVERS)
  .map(([c, s]) => `    ${c}) printf '%s' '${s}' ;;`)
  .join("\n")}
    *) echo "error: context $ctx not found" >&2; exit 1 ;;
  esac
  exit 0
fi
exit 7
`;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  /** kubectl calls other than the server lookup: what the script tried to do. */
  actions: string[];
}

function run(script: string, args: string[], opts: { tty?: string } = {}): Run {
  const log = fs.mkdtempSync(path.join(work, "run-")) + "/calls.log";
  fs.writeFileSync(log, "");
  const env = {
    PATH: process.env.PATH!,
    HOME: work,
    KUBECTL: path.join(work, "kubectl"),
    FAKE_LOG: log,
  };
  const argv = [path.join(ROOT, script), ...args];
  // On a terminal: `script` gives bash a pty, the answer arrives as typed input.
  const r =
    opts.tty === undefined
      ? spawnSync("bash", argv, { env, encoding: "utf8", timeout: 60_000, input: "" })
      : spawnSync(
          "script",
          ["-qec", argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(" "), "/dev/null"],
          {
            env: { ...env, SHELL: "/bin/bash" },
            encoding: "utf8",
            timeout: 60_000,
            input: `${opts.tty}\n`,
          },
        );
  const calls = fs.readFileSync(log, "utf8").trim().split("\n").filter(Boolean);
  return {
    code: r.status ?? -1,
    stdout: r.stdout,
    stderr: r.stderr,
    actions: calls.filter((c) => !c.includes("config view")),
  };
}

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "kube-target-"));
  fs.writeFileSync(path.join(work, "kubectl"), FAKE_KUBECTL, { mode: 0o755 });
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

/** Each operator script with arguments that pass its own checks (it then calls kubectl). */
const SCRIPTS: [string, string[]][] = [
  ["scripts/pg-failover", ["1"]],
  ["scripts/pg-restore", []],
  ["scripts/redis-restore", ["latest", "cluster"]],
];

describe("operator scripts act on the stack's cluster", () => {
  for (const [script, args] of SCRIPTS) {
    it(`${script}: --stack dev acts on dev's kind context and names it`, () => {
      const r = run(script, [...args, "--stack", "dev"]);
      assert.ok(r.actions.length > 0, r.stderr);
      for (const a of r.actions)
        assert.match(a, /^--context kind-stock-analysis -n stock-analysis /);
      assert.match(
        r.stderr,
        /^target: context kind-stock-analysis \(https:\/\/127\.0\.0\.1:41234\), namespace stock-analysis, stack dev$/m,
      );
    });

    it(`${script}: --context overrides the stack's context`, () => {
      const r = run(script, ["--stack", "dev", "--context", "staging-east", ...args]);
      assert.ok(r.actions.length > 0, r.stderr);
      for (const a of r.actions) assert.match(a, /^--context staging-east -n stock-analysis /);
      assert.match(
        r.stderr,
        /^target: context staging-east \(https:\/\/staging\.k8s\.example:6443\)/m,
      );
    });

    it(`${script}: prod without --yes and without a terminal refuses in one line, doing nothing`, () => {
      const r = run(script, [...args, "--stack", "prod"]);
      assert.equal(r.code, 2);
      assert.deepEqual(r.actions, []);
      assert.equal(
        r.stderr,
        `${path.basename(script)}: refusing to act on prod (context stock-analysis-prod (https://prod.k8s.example:6443), namespace stock-analysis) without confirmation: no terminal; pass --yes\n`,
      );
    });

    it(`${script}: prod with --yes acts on prod's configured context`, () => {
      const r = run(script, ["--yes", ...args, "--stack", "prod"]);
      assert.ok(r.actions.length > 0, r.stderr);
      for (const a of r.actions)
        assert.match(a, /^--context stock-analysis-prod -n stock-analysis /);
      assert.match(
        r.stderr,
        /^target: context stock-analysis-prod \(https:\/\/prod\.k8s\.example:6443\), namespace stock-analysis, stack prod \[PROD\]$/m,
      );
    });
  }

  it("prod's context named with --context alone is prod too", () => {
    const r = run("scripts/pg-restore", ["--context", "stock-analysis-prod"]);
    assert.equal(r.code, 2);
    assert.deepEqual(r.actions, []);
    assert.match(r.stderr, /^pg-restore: refusing to act on prod \(context stock-analysis-prod /);
  });

  it("on a terminal, prod goes on only when the context name is typed", () => {
    const no = run("scripts/pg-restore", ["--stack", "prod"], { tty: "y" });
    assert.equal(no.code, 2, no.stdout);
    assert.deepEqual(no.actions, []);
    assert.match(no.stdout, /Type the context name to go on: /);
    assert.match(no.stdout, /not confirmed; nothing done/);
    const yes = run("scripts/pg-restore", ["--stack", "prod"], { tty: "stock-analysis-prod" });
    assert.ok(yes.actions.length > 0, yes.stdout);
    assert.match(
      yes.actions[0],
      /^--context stock-analysis-prod -n stock-analysis get pvc data-postgresql-0 /,
    );
  });

  it("redis-restore --list only reads: no question on prod", () => {
    const r = run("scripts/redis-restore", ["--list", "--stack", "prod"]);
    assert.doesNotMatch(r.stderr, /refusing/);
    // Both ends of the create pipeline run: the order of their log lines is not fixed.
    assert.ok(
      r.actions.some((a) =>
        a.startsWith("--context stock-analysis-prod -n stock-analysis create job "),
      ),
      r.actions.join("\n"),
    );
  });

  it("no --stack and no --context: refuses, naming both flags, before any kubectl call", () => {
    for (const [script, args] of SCRIPTS) {
      const r = run(script, args);
      assert.equal(r.code, 2, script);
      assert.equal(r.actions.length, 0, script);
      assert.match(r.stderr, /--stack <stack>.*--context <ctx>/, script);
    }
  });

  it("a context the kubeconfig does not have, or an unknown stack: exit 2, nothing done", () => {
    const ctx = run("scripts/pg-restore", ["--context", "nowhere"]);
    assert.equal(ctx.code, 2);
    assert.deepEqual(ctx.actions, []);
    assert.match(ctx.stderr, /kubeconfig has no context "nowhere"/);
    const stack = run("scripts/pg-restore", ["--stack", "qa"]);
    assert.equal(stack.code, 2);
    assert.match(stack.stderr, /no stack "qa"/);
  });
});

describe("scripts/lib/kube-target.ts resolves from the typed stack config", () => {
  it("kubeconfig and namespace keys, a prod-* stack's context, and a stack with no cluster", () => {
    const root = fs.mkdtempSync(path.join(work, "stacks-"));
    const write = (stack: string, yaml: string) =>
      fs.writeFileSync(path.join(root, `Pulumi.${stack}.yaml`), `config:\n${yaml}`);
    write(
      "qa",
      "  stock-analysis:cluster: { mode: existing, context: qa-ctx, kubeconfig: ~/.kube/qa }\n" +
        "  stock-analysis:namespace: sa-qa\n",
    );
    write("prod-eu", "  stock-analysis:cluster: { mode: existing, context: eu-ctx }\n");
    write("render", "  stock-analysis:cluster: { mode: yaml }\n");
    write("laptop", "  stock-analysis:cluster: { mode: existing }\n");
    assert.deepEqual(resolveKubeTarget({ stack: "qa" }, root), {
      stack: "qa",
      context: "qa-ctx",
      kubeconfig: path.join(os.homedir(), ".kube/qa"),
      namespace: "sa-qa",
      prod: false,
    });
    // Named by context only, a prod stack's cluster is still prod.
    assert.equal(resolveKubeTarget({ context: "eu-ctx" }, root).prod, true);
    assert.equal(resolveKubeTarget({ stack: "qa", context: "eu-ctx" }, root).prod, true);
    assert.throws(() => resolveKubeTarget({ stack: "render" }, root), /cluster\.mode is yaml/);
    assert.throws(() => resolveKubeTarget({ stack: "laptop" }, root), /cluster\.context is unset/);
    assert.equal(resolveKubeTarget({ stack: "laptop", context: "mine" }, root).context, "mine");
  });
});
