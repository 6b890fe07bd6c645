/**
 * `npm run diff` on a throw-away copy of this checkout (its own git history): one replica edit in
 * Pulumi.prod.yaml shows exactly that object and the summary delta; the same what-if by --set
 * gives the same result; no change exits 0; bad input exits 2 with one line.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { diffRenders, fieldChanges, formatText, summaryDelta } from "../../scripts/lib/object-diff";
import type { K8sObject } from "../../scripts/lib/render-stack";

const ROOT = path.resolve(__dirname, "../..");
let repo: string;

function diff(args: string[]) {
  const r = spawnSync(process.execPath, ["--import", "tsx", "scripts/diff.ts", ...args], {
    cwd: repo,
    encoding: "utf8",
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(() => {
  // The working tree's files (committed or not), committed as the base of a fresh repository.
  repo = fs.mkdtempSync(path.join(os.tmpdir(), "diff-test-"));
  const files = execFileSync("git", ["ls-files", "-co", "--exclude-standard", "-z"], {
    cwd: ROOT,
    encoding: "utf8",
  })
    .split("\0")
    .filter((f) => f && fs.existsSync(path.join(ROOT, f)));
  for (const f of files) {
    fs.mkdirSync(path.dirname(path.join(repo, f)), { recursive: true });
    fs.copyFileSync(path.join(ROOT, f), path.join(repo, f));
  }
  fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(repo, "node_modules"), "dir");
  fs.symlinkSync(
    path.join(ROOT, "policies/node_modules"),
    path.join(repo, "policies/node_modules"),
    "dir",
  );
  const git = (...a: string[]) => execFileSync("git", a, { cwd: repo, stdio: "pipe" });
  git("init", "-q", "-b", "main");
  fs.appendFileSync(path.join(repo, ".git/info/exclude"), "node_modules\n");
  git("add", "-A");
  git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base");
});
after(() => repo && fs.rmSync(repo, { recursive: true, force: true }));

describe("npm run diff", () => {
  it("one replica edit in Pulumi.prod.yaml: exactly that object, the summary delta, exit 1; --set gives the same", () => {
    const file = path.join(repo, "Pulumi.prod.yaml");
    const original = fs.readFileSync(file, "utf8");
    const edited = original.replace(
      /(stock-analysis:frontend:\n(?: {4}.*\n)*? {4}replicas: )3\n/,
      "$14\n",
    );
    assert.notEqual(edited, original, "the frontend replica line was not found");
    const bySet = diff(["--stack", "prod", "--set", "frontend.replicas=4"]);
    fs.writeFileSync(file, edited);
    const byEdit = diff(["--stack", "prod"]);
    fs.writeFileSync(file, original);
    for (const r of [byEdit, bySet]) {
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stdout, /working tree vs merge-base\(HEAD, main\)/);
      assert.match(
        r.stdout,
        /^~ Deployment\/stock-analysis\/stock-analysis-frontend\n {4}spec\.replicas: 3 → 4\n/m,
      );
      assert.match(r.stdout, /Summary: 0 added, 0 removed, 1 changed/);
      assert.match(r.stdout, /replicas Deployment\/stock-analysis-frontend: 3 → 4/);
      assert.match(r.stdout, /memory requests \(steady state\): .* \(\+256Mi\)/);
      assert.match(r.stdout, /Policy \(base → working tree\): PASS/);
    }
    assert.equal(byEdit.stdout, bySet.stdout);
  });

  it("no change exits 0; markdown for a PR comment", () => {
    const r = diff(["--stack", "dev", "--format", "markdown"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^### Stack `dev`: 0 added, 0 removed, 0 changed/);
    assert.match(r.stdout, /No object changes\./);
  });

  it("bad input: one line naming the problem, exit 2", () => {
    for (const [args, msg] of [
      [["--stack", "prod", "--bogus"], /^diff: Unknown option '--bogus' \(see --help\)\n$/],
      [["--stack", "prod", "--base", "no-such-ref"], /^diff: --base no-such-ref: not a commit/],
      [["--stack", "prod", "--format", "html"], /^diff: --format must be text or markdown/],
      [["--stack", "prod", "--set", "frontend.replicas"], /^diff: --set expects key=value/],
      [["--stack", "nope"], /^diff: no stack "nope"/],
    ] as const) {
      const r = diff([...args]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, msg);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    }
    const help = diff(["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^usage: npm run diff -- --stack NAME/);
  });
});

describe("render diff (pure)", () => {
  const dep = (replicas: number, image = "a:1"): K8sObject =>
    ({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "web", namespace: "ns" },
      spec: {
        replicas,
        template: {
          spec: {
            containers: [
              { name: "web", image, resources: { requests: { cpu: "100m", memory: "64Mi" } } },
            ],
          },
        },
      },
    }) as unknown as K8sObject;
  const secret = (v: string): K8sObject =>
    ({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "s", namespace: "ns" },
      stringData: { k: v },
    }) as unknown as K8sObject;

  it("lists added, removed and changed objects with their changed fields only", () => {
    const d = diffRenders([dep(1), secret("[redacted]")], [dep(2, "a:2")]);
    assert.deepEqual(d.removed, ["Secret/ns/s"]);
    assert.deepEqual(d.added, []);
    assert.deepEqual(
      d.changed[0].fields.map((f) => f.path),
      ["spec.replicas", "spec.template.spec.containers[0].image"],
    );
    assert.deepEqual(fieldChanges({ a: [1] }, { a: [1, 2] }), [
      { path: "a[1]", before: undefined, after: 2 },
    ]);
  });

  it("totals move by replicas × per-pod requests", () => {
    assert.deepEqual(summaryDelta([dep(1)], [dep(3)]), [
      "replicas Deployment/web: 1 → 3",
      "CPU requests (steady state): 100m → 300m (+200m)",
      "memory requests (steady state): 64Mi → 192Mi (+128Mi)",
    ]);
  });

  it("prints a redacted Secret's change without any value", () => {
    const text = formatText({
      stack: "x",
      baseRef: "b",
      diff: diffRenders([secret("[redacted]")], [secret("[redacted]")]),
      delta: [],
      policy: {
        base: { mandatory: 0, advisory: 0, lines: [] },
        head: { mandatory: 0, advisory: 0, lines: [] },
      },
    });
    assert.match(text, /No object changes/);
  });
});
