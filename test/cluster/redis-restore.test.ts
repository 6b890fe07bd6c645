/**
 * scripts/redis-restore against the simulated cluster: the Job made from the `redis-restore`
 * CronJob carries the chosen backup and target; the command returns as soon as the Job completes
 * (exit 0) or fails (exit 1), never waiting out its timeout on a failed Job.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import {
  KubeItem,
  SimCluster,
  kubectlOk,
  sleep,
  startSim,
  stopSim,
} from "../../scripts/lib/sim-cluster";

const ROOT = path.resolve(__dirname, "../..");
const NS = "restore-check";
let sim: SimCluster;

/** A suspended CronJob shaped like the stack's `redis-restore` (env the command rewrites). */
function cronJob(schedulable: boolean) {
  return {
    apiVersion: "batch/v1",
    kind: "CronJob",
    metadata: { name: "redis-restore", namespace: NS },
    spec: {
      schedule: "0 0 1 1 *",
      suspend: true,
      jobTemplate: {
        spec: {
          backoffLimit: 0,
          template: {
            spec: {
              restartPolicy: "Never",
              ...(schedulable ? {} : { nodeSelector: { "no-such-node": "true" } }),
              containers: [
                {
                  name: "restore",
                  image: "redis:7.0.15-bookworm",
                  env: [
                    { name: "RESTORE_BACKUP", value: "latest" },
                    { name: "RESTORE_TARGET", value: "cluster" },
                  ],
                },
              ],
            },
          },
        },
      },
    },
  };
}

function restore(args: string[]): { done: Promise<{ code: number; stderr: string; ms: number }> } {
  const t0 = Date.now();
  // The sim's context, named explicitly: never the current one (scripts/lib/kube-target.sh).
  const child = spawn(
    "bash",
    [path.join(ROOT, "scripts/redis-restore"), "--context", sim.context, ...args],
    {
      env: {
        ...process.env,
        KUBECONFIG: sim.kubeconfig,
        KUBECTL: path.join(sim.bin, "kubectl"),
        NAMESPACE: NS,
        TIMEOUT: "5m",
      },
    },
  );
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  return {
    done: new Promise((resolve) =>
      child.on("close", (code) => resolve({ code: code ?? -1, stderr, ms: Date.now() - t0 })),
    ),
  };
}

async function newestJob(): Promise<KubeItem> {
  for (let i = 0; i < 60; i++) {
    const jobs = JSON.parse(kubectlOk(sim, ["get", "jobs", "-n", NS, "-o", "json"])) as {
      items: KubeItem[];
    };
    const j = jobs.items.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name)).pop();
    if (j) return j;
    await sleep(500);
  }
  throw new Error("no Job was created");
}

before(() => {
  sim = startSim({ quiet: true });
  kubectlOk(sim, ["create", "namespace", NS]);
});
after(() => sim && stopSim(sim));

describe("scripts/redis-restore", () => {
  test("a completed restore Job: exit 0, with the backup and target it was asked for", async () => {
    kubectlOk(sim, ["apply", "--server-side", "-f", "-"], JSON.stringify(cronJob(true)));
    const run = restore(["redis-20260101T030000Z", "broker"]);
    const job = await newestJob();
    const env = (
      job.spec as {
        template: { spec: { containers: { env: { name: string; value: string }[] }[] } };
      }
    ).template.spec.containers[0].env;
    assert.deepEqual(Object.fromEntries(env.map((e) => [e.name, e.value])), {
      RESTORE_BACKUP: "redis-20260101T030000Z",
      RESTORE_TARGET: "broker",
    });
    const r = await run.done;
    assert.equal(r.code, 0, r.stderr);
    kubectlOk(sim, ["delete", "jobs", "--all", "-n", NS]);
  });

  test("a failed restore Job ends the wait at once with exit 1", async () => {
    kubectlOk(
      sim,
      ["apply", "--server-side", "--force-conflicts", "-f", "-"],
      JSON.stringify(cronJob(false)),
    );
    const run = restore(["latest", "cluster"]);
    const job = await newestJob();
    // What the Job controller records when the pod fails past backoffLimit (kwok only succeeds pods).
    const now = new Date().toISOString();
    kubectlOk(sim, [
      "patch",
      "job",
      job.metadata.name,
      "-n",
      NS,
      "--subresource=status",
      "--type=merge",
      "-p",
      JSON.stringify({
        status: {
          startTime: now,
          failed: 1,
          conditions: [
            {
              type: "FailureTarget",
              status: "True",
              reason: "BackoffLimitExceeded",
              message: "test",
              lastProbeTime: now,
              lastTransitionTime: now,
            },
            {
              type: "Failed",
              status: "True",
              reason: "BackoffLimitExceeded",
              message: "test",
              lastProbeTime: now,
              lastTransitionTime: now,
            },
          ],
        },
      }),
    ]);
    const r = await run.done;
    assert.equal(r.code, 1);
    assert.match(r.stderr, /job\/redis-restore-\d+ failed/);
    assert.ok(r.ms < 60_000, `took ${r.ms} ms after the Job failed (timeout 5m)`);
  });
});
