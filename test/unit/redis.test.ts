import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { redisSchema } from "../../components/config/redis";
import {
  clusterNodeConf,
  maxmemoryFor,
  memoryQuantityBytes,
  redisScripts,
} from "../../components/redis/content";
import { isPinnedImage } from "../../components/config/validators";
import type { K8sObject } from "../../scripts/lib/render-stack";
import { RenderResult, find, render } from "../helpers/render";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
const stacks: Record<string, RenderResult> = {};

before(async () => {
  const [dev, prod] = await Promise.all([render("dev"), render("prod")]);
  stacks.dev = dev;
  stacks.prod = prod;
});

const pod = (o: K8sObject): Any =>
  o.kind === "CronJob"
    ? (o.spec as Any).jobTemplate.spec.template.spec
    : (o.spec as Any).template.spec;
const containerOf = (o: K8sObject, name: string): Any => {
  const c = pod(o).containers.find((x: Any) => x.name === name);
  assert.ok(c, `${o.kind}/${o.metadata.name} has no container ${name}`);
  return c;
};
const envOf = (c: Any): Record<string, Any> =>
  Object.fromEntries((c.env ?? []).map((e: Any) => [e.name, e.value ?? e.valueFrom]));

describe("redis in prod", () => {
  it("runs a 3 × (1 master + 1 replica) cluster at 500m/1Gi with 10Gi PVCs, exporter, spread and PDB", () => {
    const sts = find(stacks.prod.objects, "StatefulSet", "redis");
    const spec = sts.spec as Any;
    assert.equal(spec.replicas, 6);
    assert.equal(spec.serviceName, "redis-headless");
    const redis = containerOf(sts, "redis");
    assert.deepEqual(redis.resources.requests, { cpu: "500m", memory: "1Gi" });
    assert.equal(redis.resources.limits.memory, "1Gi");
    assert.equal(spec.volumeClaimTemplates[0].spec.resources.requests.storage, "10Gi");
    assert.deepEqual(
      redis.volumeMounts.find((m: Any) => m.mountPath === "/data"),
      { name: "data", mountPath: "/data" },
    );
    // The identity the node announces is its stable DNS name under the headless service.
    assert.equal(
      envOf(redis).REDIS_ANNOUNCE_HOSTNAME,
      "$(POD_NAME).redis-headless.$(POD_NAMESPACE).svc.cluster.local",
    );
    const exporter = containerOf(sts, "redis-exporter");
    assert.ok(isPinnedImage(exporter.image) && !exporter.image.endsWith(":latest"));
    assert.deepEqual(envOf(exporter).REDIS_PASSWORD, {
      secretKeyRef: { name: "redis-auth", key: "password" },
    });
    assert.equal(
      pod(sts).affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0]
        .podAffinityTerm.topologyKey,
      "kubernetes.io/hostname",
    );
    assert.equal(
      (find(stacks.prod.objects, "PodDisruptionBudget", "redis").spec as Any).maxUnavailable,
      1,
    );
    const headless = find(stacks.prod.objects, "Service", "redis-headless").spec as Any;
    assert.equal(headless.clusterIP, "None");
    assert.equal(headless.publishNotReadyAddresses, true);
    assert.equal((find(stacks.prod.objects, "Service", "redis").spec as Any).ports[0].port, 6379);
  });

  it("mounts the generated redis.conf: cluster mode, AOF, LRU cache sized from the limit, no password", () => {
    const conf = (find(stacks.prod.objects, "ConfigMap", "redis-config").data as Any)["redis.conf"];
    assert.equal(
      conf,
      clusterNodeConf({
        maxmemoryBytes: maxmemoryFor(memoryQuantityBytes("1Gi")),
        nodeTimeoutMs: 5000,
      }),
    );
    for (const directive of [
      "cluster-enabled yes",
      "cluster-config-file nodes.conf",
      "cluster-preferred-endpoint-type hostname",
      "appendonly yes",
      "maxmemory-policy allkeys-lru",
    ])
      assert.ok(conf.split("\n").includes(directive), directive);
    // Passwords come from the Secret at start; config files carry no auth directive at all.
    const configs = [
      conf,
      ...Object.values(find(stacks.prod.objects, "ConfigMap", "redis-broker-config").data as Any),
    ] as string[];
    for (const text of configs)
      assert.doesNotMatch(text, /^(requirepass|masterauth|sentinel auth-pass)/m);
  });

  it("forms the cluster with a Job over all six nodes, by DNS name", () => {
    const job = find(stacks.prod.objects, "Job", "redis-cluster-form-3x1");
    const c = containerOf(job, "cluster-form");
    assert.deepEqual(c.command, ["bash", "/scripts/cluster-form.sh"]);
    const env = envOf(c);
    assert.equal(env.REDIS_MASTERS, "3");
    assert.equal(env.REDIS_REPLICAS_PER_MASTER, "1");
    assert.deepEqual(
      env.REDIS_NODES.split(" "),
      [0, 1, 2, 3, 4, 5].map(
        (i) => `redis-${i}.redis-headless.stock-analysis.svc.cluster.local:6379`,
      ),
    );
    const scripts = find(stacks.prod.objects, "ConfigMap", "redis-scripts").data as Any;
    assert.equal(scripts["cluster-form.sh"], redisScripts()["cluster-form.sh"]);
    assert.ok((job.spec as Any).backoffLimit >= 1 && (job.spec as Any).activeDeadlineSeconds > 0);
  });

  it("runs the broker as a Sentinel-managed primary with replicas; Celery reads it through Secrets", () => {
    const sts = find(stacks.prod.objects, "StatefulSet", "redis-broker");
    assert.equal((sts.spec as Any).replicas, 3);
    const sentinel = containerOf(sts, "sentinel");
    assert.equal(envOf(sentinel).BROKER_SENTINELS.split(" ").length, 3, "three sentinels");
    const conf = find(stacks.prod.objects, "ConfigMap", "redis-broker-config").data as Any;
    assert.match(conf["broker.conf"], /^maxmemory-policy noeviction$/m);
    assert.match(
      conf["sentinel.conf"],
      /^sentinel monitor broker @PRIMARY_HOST@ @PRIMARY_PORT@ 2$/m,
    );
    assert.ok(
      !stacks.prod.objects.some((o) => o.kind === "Service" && o.metadata.name === "redis-broker"),
      "no plain Service that would also route to replicas",
    );
    for (const name of ["stock-analysis-celery", "stock-analysis-api"]) {
      const env = envOf(containerOf(find(stacks.prod.objects, "Deployment", name), name));
      assert.deepEqual(env.CELERY_BROKER_URL, {
        secretKeyRef: { name: "celery-broker", key: "broker-url" },
      });
      assert.deepEqual(env.CELERY_BROKER_TRANSPORT_OPTIONS, {
        secretKeyRef: { name: "celery-broker", key: "transport-options" },
      });
      assert.deepEqual(env.REDIS_URL, { secretKeyRef: { name: "redis-cache-url", key: "url" } });
    }
    for (const logical of ["redis-broker-celery", "redis-cache-url"]) {
      const r = stacks.prod.resources.find(
        (x) => x.type === "kubernetes:core/v1:Secret" && x.name === logical,
      );
      assert.ok(r, logical);
      assert.ok(
        r.secretPaths.some((p) => p.startsWith("stringData")),
        `${logical} stays a Pulumi secret`,
      );
    }
  });

  it("backs up daily at 03:00 keeping 30 days, never overlapping", () => {
    const cron = find(stacks.prod.objects, "CronJob", "redis-backup");
    const s = cron.spec as Any;
    assert.equal(s.schedule, "0 3 * * *");
    assert.equal(s.concurrencyPolicy, "Forbid");
    assert.ok(
      s.startingDeadlineSeconds > 0 &&
        s.successfulJobsHistoryLimit >= 1 &&
        s.failedJobsHistoryLimit >= 1,
    );
    assert.ok(s.jobTemplate.spec.activeDeadlineSeconds > 0 && s.jobTemplate.spec.backoffLimit >= 0);
    const env = envOf(containerOf(cron, "backup"));
    assert.equal(env.RETENTION_DAYS, "30");
    assert.equal(env.REDIS_CLUSTER_ENTRY, "redis.stock-analysis.svc.cluster.local:6379");
    assert.equal(env.BROKER_MASTER_NAME, "broker");
    assert.equal(env.BROKER_SENTINELS.split(" ").length, 3);
    const restore = find(stacks.prod.objects, "CronJob", "redis-restore");
    assert.equal((restore.spec as Any).suspend, true);
  });

  it("scripts/redis-restore runs the restore template with the chosen backup and target", () => {
    const template = find(stacks.prod.objects, "CronJob", "redis-restore");
    const dir = mkdtempSync(join(tmpdir(), "redis-restore-cli-"));
    try {
      // kubectl stand-in: `create job --from … -o json` prints the Job kubectl would derive from
      // the rendered template; `create -f -` records what the script submits.
      const job = {
        apiVersion: "batch/v1",
        kind: "Job",
        metadata: { name: "x" },
        spec: (template.spec as Any).jobTemplate.spec,
      };
      writeFileSync(join(dir, "job.json"), JSON.stringify(job));
      writeFileSync(
        join(dir, "kubectl"),
        [
          "#!/usr/bin/env bash",
          `case "$*" in`,
          // The server lookup of scripts/lib/kube-target.sh (the stack's context is dev's kind-*).
          `  "--context kind-stock-analysis config view"*) echo https://127.0.0.1:6443 ;;`,
          `  *"create job"*"--dry-run=client"*) cat "${dir}/job.json" ;;`,
          `  *"create -f -"*) cat >"${dir}/submitted.json" ;;`,
          // The script polls the Job's true conditions until Complete or Failed.
          `  *"get job/"*) echo "Complete " ;;`,
          `  *logs*) echo "restore log" ;;`,
          `  *) exit 9 ;;`,
          "esac",
        ].join("\n"),
        { mode: 0o755 },
      );
      const out = execFileSync(
        "bash",
        [
          join(__dirname, "../../scripts/redis-restore"),
          "redis-20260101T030000Z",
          "all",
          "--stack",
          "dev",
        ],
        {
          env: { ...process.env, KUBECTL: join(dir, "kubectl") },
          encoding: "utf8",
          timeout: 60_000,
        },
      );
      assert.match(out, /restore log/);
      const submitted = JSON.parse(readFileSync(join(dir, "submitted.json"), "utf8"));
      const c = submitted.spec.template.spec.containers[0];
      assert.deepEqual(c.command, [
        "bash",
        "/scripts/restore.sh",
        "$(RESTORE_BACKUP)",
        "$(RESTORE_TARGET)",
      ]);
      assert.equal(envOf(c).RESTORE_BACKUP, "redis-20260101T030000Z");
      assert.equal(envOf(c).RESTORE_TARGET, "all");
      assert.throws(() =>
        execFileSync(
          "bash",
          [join(__dirname, "../../scripts/redis-restore"), "../etc", "--stack", "dev"],
          {
            env: { ...process.env, KUBECTL: join(dir, "kubectl") },
            stdio: "pipe",
          },
        ),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("adds masters by config: 4 masters render 8 nodes and a new formation Job", async () => {
    const r = await render("prod", {
      redis: {
        cluster: {
          masters: 4,
          replicasPerMaster: 1,
          resources: { requests: { cpu: "500m", memory: "1Gi" }, limits: { memory: "1Gi" } },
          storage: { size: "10Gi" },
        },
        broker: { mode: "sentinel" },
      },
    });
    assert.equal((find(r.objects, "StatefulSet", "redis").spec as Any).replicas, 8);
    const env = envOf(
      containerOf(find(r.objects, "Job", "redis-cluster-form-4x1"), "cluster-form"),
    );
    assert.equal(env.REDIS_MASTERS, "4");
    assert.equal(env.REDIS_NODES.split(" ").length, 8);
  });
});

describe("redis in dev", () => {
  it("runs 3 masters without replicas and a standalone broker, tiny", () => {
    const sts = find(stacks.dev.objects, "StatefulSet", "redis");
    assert.equal((sts.spec as Any).replicas, 3);
    find(stacks.dev.objects, "Job", "redis-cluster-form-3x0");
    const broker = find(stacks.dev.objects, "StatefulSet", "redis-broker");
    assert.equal((broker.spec as Any).replicas, 1);
    assert.ok(!pod(broker).containers.some((c: Any) => c.name === "sentinel"));
    find(stacks.dev.objects, "Service", "redis-broker");
    for (const o of [sts, broker])
      for (const c of pod(o).containers)
        assert.ok(
          memoryQuantityBytes(c.resources.requests.memory) <= 64 * 2 ** 20,
          `${o.metadata.name}/${c.name}`,
        );
  });
});

describe("redis config", () => {
  it("refuses fewer than 3 masters and an even number of Sentinel servers", () => {
    assert.ok(!redisSchema.safeParse({ cluster: { masters: 2 } }).success);
    const even = redisSchema.safeParse({ broker: { mode: "sentinel", replicas: 4 } });
    assert.ok(!even.success);
    assert.match(even.error.issues[0].message, /must be odd/);
    assert.ok(redisSchema.safeParse({ broker: { mode: "sentinel", replicas: 5 } }).success);
  });
});
