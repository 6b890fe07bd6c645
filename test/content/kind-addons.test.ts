import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { kindAddonsScript, kindClusterConfig } from "../../components/cluster/kind";

/** Runs the very script the kind-addons Command runs, with a kubectl that records its calls. */
function runWithFakeKubectl(env: Record<string, string>, failOn?: string) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "kind-addons-"));
  const log = path.join(dir, "calls.log");
  fs.writeFileSync(
    path.join(dir, "kubectl"),
    `#!/usr/bin/env bash\necho "$*" >> "${log}"\n${failOn ? `case "$*" in *${failOn}*) exit 1;; esac\n` : ""}exit 0\n`,
    { mode: 0o755 },
  );
  const r = spawnSync("bash", ["-c", kindAddonsScript], {
    env: { PATH: `${dir}:${process.env.PATH}`, ...env },
    encoding: "utf8",
  });
  const calls = fs.existsSync(log) ? fs.readFileSync(log, "utf8").trim().split("\n") : [];
  fs.rmSync(dir, { recursive: true, force: true });
  return { status: r.status, calls, stderr: r.stderr };
}

describe("kind cluster", () => {
  const env = {
    KUBE_CONTEXT: "kind-stock-analysis",
    INGRESS_NGINX_VERSION: "1.11.3",
    METRICS_SERVER_VERSION: "0.7.2",
  };

  it("add-ons script installs pinned ingress-nginx and metrics-server, then waits for both", () => {
    const r = runWithFakeKubectl(env);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(
      r.calls.every((c) => c.startsWith("--context kind-stock-analysis ")),
      r.calls.join("\n"),
    );
    assert.match(
      r.calls[0],
      /apply -f .*ingress-nginx\/controller-v1\.11\.3\/deploy\/static\/provider\/kind\/deploy\.yaml$/,
    );
    assert.match(
      r.calls[1],
      /apply -f .*metrics-server\/releases\/download\/v0\.7\.2\/components\.yaml$/,
    );
    assert.match(
      r.calls.at(-2)!,
      /-n ingress-nginx wait --for=condition=Available deployment\/ingress-nginx-controller/,
    );
    assert.match(
      r.calls.at(-1)!,
      /-n kube-system wait --for=condition=Available deployment\/metrics-server/,
    );
  });

  it("add-ons script stops at the first failing step", () => {
    const r = runWithFakeKubectl(env, "metrics-server/releases");
    assert.notEqual(r.status, 0);
    assert.ok(!r.calls.some((c) => c.includes(" wait ")), "must not go on after a failed apply");
  });

  it("add-ons script refuses to run without its settings", () => {
    const r = runWithFakeKubectl({ KUBE_CONTEXT: "kind-x" });
    assert.notEqual(r.status, 0);
    assert.deepEqual(r.calls, []);
  });

  it("cluster config maps ingress ports on an ingress-ready control plane and pins node images", () => {
    const c = parse(kindClusterConfig("kindest/node:v1.31.4", 2));
    assert.equal(c.nodes.length, 3);
    assert.deepEqual(
      c.nodes.map((n: { role: string }) => n.role),
      ["control-plane", "worker", "worker"],
    );
    assert.ok(c.nodes.every((n: { image: string }) => n.image === "kindest/node:v1.31.4"));
    assert.deepEqual(
      c.nodes[0].extraPortMappings.map((p: { hostPort: number }) => p.hostPort),
      [80, 443],
    );
    assert.match(c.nodes[0].kubeadmConfigPatches[0], /ingress-ready=true/);
  });
});
