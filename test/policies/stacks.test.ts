/** The real dev and prod stacks pass the pack, and `npm run policy` fails a stack that does not. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { PolicyPackServer, analyzeAll, readPackConfig } from "../../scripts/lib/policy-pack";
import { stackConfigFile, toPackResources } from "../../scripts/lib/policy-report";
import { describeAll } from "../helpers/policy";
import { RenderResult, render } from "../helpers/render";

const ROOT = path.resolve(__dirname, "../..");

function runPolicy(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "scripts/policy.ts", ...args], {
      cwd: ROOT,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

describe("dev and prod stacks under the policy pack", () => {
  let pack: PolicyPackServer;
  let stacks: Record<string, RenderResult>;
  before(async () => {
    const [server, dev, prod] = await Promise.all([
      PolicyPackServer.start(),
      render("dev"),
      render("prod"),
    ]);
    pack = server;
    stacks = { dev, prod };
  });
  after(() => pack?.close());

  for (const stack of ["prod", "dev"]) {
    it(`${stack}: every resource passes (no violation at any enforcement level)`, async () => {
      await pack.configure(readPackConfig(stackConfigFile(stack)));
      const resources = toPackResources(stacks[stack].resources);
      assert.ok(
        resources.some((r) => r.type === "kubernetes:apps/v1:Deployment"),
        "render has no workloads",
      );
      const res = await analyzeAll(pack, resources);
      assert.deepEqual(res.diagnostics, [], describeAll(res.diagnostics));
      // Every Kubernetes object went through its explicit provider, like in a real preview.
      const k8s = resources.filter((r) => r.type.startsWith("kubernetes:"));
      assert.ok(k8s.every((r) => r.provider?.type === "pulumi:providers:kubernetes"));
    });
  }

  it("npm run policy passes prod and fails a prod what-if naming the resource and the fix", async () => {
    const [pass, fail] = await Promise.all([
      runPolicy(["--stack", "prod"]),
      runPolicy([
        "--stack",
        "prod",
        "--set",
        'frontend={"replicas":1,"writablePaths":["/tmp","/var/cache/nginx","/var/run"]}',
      ]),
    ]);
    assert.equal(pass.code, 0, pass.stdout + pass.stderr);
    assert.match(pass.stdout, /PASS: no mandatory violations/);
    assert.equal(fail.code, 1, fail.stdout + fail.stderr);
    assert.match(fail.stdout, /MANDATORY minimum-replicas +Deployment stock-analysis-frontend/);
    assert.match(
      fail.stdout,
      /Deployment\/stock-analysis-frontend: spec\.replicas is 1, below this stack's minimum of 2\. Fix: /,
    );
    assert.match(fail.stdout, /FAIL: 1 mandatory violation/);
  });
});
