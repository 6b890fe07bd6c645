/**
 * scripts/cluster-sim/sim.sh: a started cluster serves the API with PodSecurity enforced, fake
 * nodes spread over zones; `stop` ends every daemon it started; a failed start leaves nothing.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { SimCluster, kubectl, kubectlOk, startSim, stopSim } from "../../scripts/lib/sim-cluster";

const ROOT = path.resolve(__dirname, "../..");
const SIM = path.join(ROOT, "scripts/cluster-sim/sim.sh");
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const pidsOf = (dir: string) =>
  fs
    .readFileSync(path.join(dir, "pids"), "utf8")
    .trim()
    .split("\n")
    .map((l) => Number(l.split(" ")[1]));

let sim: SimCluster;
before(() => {
  sim = startSim({ quiet: true });
});
after(() => sim && stopSim(sim));

describe("simulated cluster lifecycle", () => {
  test("nodes are Ready and spread over three zones, each with capacity for prod", () => {
    const nodes = JSON.parse(kubectlOk(sim, ["get", "nodes", "-o", "json"])) as {
      items: {
        metadata: { labels: Record<string, string> };
        status: { allocatable: { cpu: string } };
      }[];
    };
    assert.ok(nodes.items.length >= 6, `${nodes.items.length} nodes`);
    const zones = new Set(nodes.items.map((n) => n.metadata.labels["topology.kubernetes.io/zone"]));
    assert.equal(zones.size, 3);
    kubectlOk(sim, ["wait", "--for=condition=Ready", "node", "--all", "--timeout=30s"]);
  });

  test("PodSecurity admission is enforced: a privileged pod in a restricted namespace is refused", () => {
    kubectlOk(sim, ["create", "namespace", "psa-check"]);
    kubectlOk(sim, [
      "label",
      "namespace",
      "psa-check",
      "pod-security.kubernetes.io/enforce=restricted",
    ]);
    const pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "root", namespace: "psa-check" },
      spec: {
        containers: [{ name: "c", image: "busybox:1.36", securityContext: { privileged: true } }],
      },
    };
    const r = kubectl(sim, ["apply", "--server-side", "-f", "-"], JSON.stringify(pod));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /violates PodSecurity "restricted/);
  });

  test("stop ends every daemon it recorded", () => {
    const other = startSim({ quiet: true });
    const pids = pidsOf(other.dir);
    assert.equal(pids.length, 5, "etcd, apiserver, controller-manager, scheduler, kwok");
    assert.ok(pids.every(alive));
    stopSim(other);
    assert.deepEqual(pids.filter(alive), [], "daemons left running after stop");
  });

  test("a start that fails half-way stops what it had started", () => {
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), "sim-bin-"));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "sim-broken-"));
    try {
      for (const f of fs.readdirSync(sim.bin))
        fs.symlinkSync(path.join(sim.bin, f), path.join(bin, f));
      fs.rmSync(path.join(bin, "kube-apiserver"));
      fs.writeFileSync(
        path.join(bin, "kube-apiserver"),
        "#!/bin/sh\necho 'refusing to serve' >&2\nexit 1\n",
        {
          mode: 0o755,
        },
      );
      const r = spawnSync("bash", [SIM, "start", dir], {
        env: { ...process.env, SIM_BIN: bin },
        encoding: "utf8",
      });
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, /etcd on 127\.0\.0\.1/, "etcd had started before the failure");
      assert.match(r.stderr, /kube-apiserver exited .*refusing to serve/s);
      assert.match(r.stderr, /stopped .*etcd/);
      assert.equal(
        fs.existsSync(path.join(dir, "pids")),
        false,
        "pids file left: stop did not run",
      );
      const leftover = spawnSync("pgrep", ["-f", `--data-dir ${path.join(dir, "etcd")}`], {
        encoding: "utf8",
      });
      assert.equal(leftover.stdout.trim(), "", "etcd of the failed start still runs");
    } finally {
      fs.rmSync(bin, { recursive: true, force: true });
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
