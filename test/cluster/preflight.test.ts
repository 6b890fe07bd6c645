/**
 * The preflight against the real API server of the simulated cluster: each prerequisite is
 * reported missing on a bare cluster and present once created, and the program itself stops
 * before registering a resource when one is missing. Needs scripts/cluster-sim/build.sh.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { kubeReader, KubeReader } from "../../components/cluster/kube-client";
import {
  checkCluster,
  clusterRequirements,
  PREFLIGHT_ENV,
  preflightMessage,
  Requirement,
} from "../../components/cluster/preflight";
import { stackConfig } from "../../scripts/lib/e2e-render";
import { providePrerequisites } from "../../scripts/lib/e2e-checks";
import { SimCluster, kubectlOk, startSim, stopSim } from "../../scripts/lib/sim-cluster";

const ROOT = path.resolve(__dirname, "../..");
let sim: SimCluster;
let reader: KubeReader;

before(() => {
  sim = startSim({ quiet: true });
  reader = kubeReader({ kubeconfig: sim.kubeconfig, context: sim.context });
});
after(() => sim && stopSim(sim));

const prodReqs = () => clusterRequirements(stackConfig("prod"));

async function problemOf(r: Requirement): Promise<string | undefined> {
  const [res] = await checkCluster(reader, [r]);
  return res.problem;
}

describe("preflight against the simulated cluster", () => {
  test("prod needs the ingress namespace, its StorageClass, a default class, the IngressClass, its ClusterIssuer and the metrics API", () => {
    const kinds = prodReqs().map((r) => r.kind);
    for (const k of [
      "Namespace",
      "StorageClass",
      "DefaultStorageClass",
      "IngressClass",
      "ClusterIssuer",
      "MetricsAPI",
    ])
      assert.ok(
        kinds.includes(k as Requirement["kind"]),
        `prod requirements lack ${k}: ${kinds.join(", ")}`,
      );
  });

  test("each prerequisite: missing on the bare cluster, present once provided", async () => {
    for (const r of prodReqs()) {
      if (r.kind === "MetricsAPI") continue; // below: the simulator cannot serve metrics.k8s.io
      assert.ok(await problemOf(r), `${r.kind} reported present on a bare cluster`);
      providePrerequisites(sim, [r], () => {});
      assert.equal(await problemOf(r), undefined, `${r.kind} still missing after providing it`);
    }
  });

  test("a StorageClass that exists but is not the default does not satisfy the default", async () => {
    kubectlOk(sim, [
      "annotate",
      "storageclass",
      "standard",
      "storageclass.kubernetes.io/is-default-class=false",
      "--overwrite",
    ]);
    assert.match((await problemOf({ kind: "DefaultStorageClass", why: "x" })) ?? "", /default/);
    kubectlOk(sim, [
      "annotate",
      "storageclass",
      "standard",
      "storageclass.kubernetes.io/is-default-class=true",
      "--overwrite",
    ]);
    assert.equal(await problemOf({ kind: "DefaultStorageClass", why: "x" }), undefined);
  });

  test("the metrics API: unregistered, then registered but unavailable, are both missing", async () => {
    const metrics: Requirement = { kind: "MetricsAPI", why: "api.autoscaling" };
    assert.equal(await problemOf(metrics), "not registered");
    kubectlOk(sim, ["create", "namespace", "metrics-test"]);
    kubectlOk(
      sim,
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "apiregistration.k8s.io/v1",
        kind: "APIService",
        metadata: { name: "v1beta1.metrics.k8s.io" },
        spec: {
          group: "metrics.k8s.io",
          version: "v1beta1",
          service: { name: "metrics-server", namespace: "metrics-test" },
          groupPriorityMinimum: 100,
          versionPriority: 100,
          insecureSkipTLSVerify: true,
        },
      }),
    );
    assert.equal(await problemOf(metrics), "registered but not Available");
    kubectlOk(sim, ["delete", "apiservice", "v1beta1.metrics.k8s.io"]);
  });

  test("one message names every missing prerequisite, the config key needing it and a remedy", async () => {
    const cfg = stackConfig("prod");
    const reqs = [
      ...clusterRequirements(cfg),
      { kind: "StorageClass", name: "nvme", why: "postgres.storage.storageClass" } as Requirement,
    ];
    const msg = preflightMessage(reader.server, await checkCluster(reader, reqs)) ?? "";
    assert.match(
      msg,
      /StorageClass nvme: not found; needed by postgres\.storage\.storageClass; create the StorageClass/,
    );
    assert.match(msg, /metrics API .*not registered.*api\.autoscaling/);
    assert.doesNotMatch(
      msg,
      /IngressClass nginx/,
      "IngressClass was provided above and must not be listed",
    );
  });

  /** The program for prod against the simulated cluster, its preflight on; `sets` are what-ifs. */
  const renderAgainstSim = (sets: string[]) =>
    spawnSync(
      process.execPath,
      [
        "--import",
        "tsx",
        "scripts/render.ts",
        "--stack",
        "prod",
        ...sets.flatMap((x) => ["--set", x]),
      ],
      { cwd: ROOT, encoding: "utf8", env: { ...process.env, [PREFLIGHT_ENV]: "check" } },
    );
  const onSim = (extra: Record<string, unknown> = {}) =>
    `cluster=${JSON.stringify({ mode: "existing", kubeconfig: sim.kubeconfig, context: sim.context, ...extra })}`;

  test("the program stops before registering a resource when a prerequisite is missing", () => {
    const r = renderAgainstSim([onSim(), "postgres.storage.storageClass=nvme"]);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /Cluster preflight failed .*\n(.*\n)*.*StorageClass nvme: not found/);
    assert.match(r.stderr, /\(0 resources were registered\)/);
  });

  test("with every other prerequisite present, the program fails on the metrics API alone, and a waiver lets it run", () => {
    // The tests above provided all of prod's prerequisites but the metrics API.
    const strict = renderAgainstSim([onSim()]);
    assert.equal(strict.status, 2, strict.stderr);
    assert.match(strict.stderr, /\(1 missing\):\n {2}- the metrics API/);
    const waived = renderAgainstSim([onSim({ preflightWaivers: ["MetricsAPI"] })]);
    assert.equal(waived.status, 0, waived.stderr);
    assert.match(
      waived.stderr + waived.stdout,
      /metrics API .*not checked \(cluster\.preflightWaivers\)/,
    );
  });
});
