/**
 * Wiring of Redis backups to an object store: prod sends them off the cluster (no PVC), the pods
 * get rclone from its image, the store settings as env and the keys only from the Secret, egress
 * to the store's port; without a store (dev) the PVC stays. Bad store config: one clear message.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { ConfigError, loadConfig } from "../../components/config/load";
import { redisScripts } from "../../components/redis/content";
import type { K8sObject } from "../../scripts/lib/render-stack";
import { RenderResult, find, render } from "../helpers/render";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
const podOf = (o: K8sObject): Any => (o.spec as Any).jobTemplate.spec.template.spec;

describe("redis backups to an object store", { timeout: 240000 }, () => {
  let prod: RenderResult;
  let dev: RenderResult;
  let withCa: RenderResult;
  before(async () => {
    [prod, dev, withCa] = await Promise.all([
      render("prod"),
      render("dev"),
      render("dev", {
        redis: {
          backup: {
            objectStore: {
              endpoint: "minio.backup.internal",
              port: 9000,
              bucket: "redis",
              uriStyle: "host",
              caSecret: "backup-ca",
              credentialsSecret: "minio-keys",
            },
          },
        },
      }),
    ]);
  });

  it("prod: backup and restore pods use the store; no PVC holds backups", () => {
    assert.ok(
      !prod.objects.some(
        (o) => o.kind === "PersistentVolumeClaim" && o.metadata.name === "redis-backups",
      ),
    );
    for (const name of ["redis-backup", "redis-restore"]) {
      const spec = podOf(find(prod.objects, "CronJob", name));
      const c = spec.containers[0];
      const env = Object.fromEntries(c.env.map((e: Any) => [e.name, e]));
      assert.equal(env.S3_ENDPOINT.value, "s3.ap-east-1.amazonaws.com");
      assert.equal(env.S3_REGION.value, "ap-east-1");
      assert.equal(env.S3_BUCKET.value, "stock-analysis-backups");
      assert.equal(env.S3_PREFIX.value, "/stock-analysis/prod/redis");
      assert.equal(env.S3_URI_STYLE.value, "host");
      assert.equal(env.RCLONE.value, "/opt/rclone/rclone");
      // Keys only from the Secret, never a literal value.
      for (const [k, key] of [
        ["RCLONE_CONFIG_STORE_ACCESS_KEY_ID", "access-key"],
        ["RCLONE_CONFIG_STORE_SECRET_ACCESS_KEY", "secret-key"],
      ]) {
        assert.equal(env[k].value, undefined, k);
        assert.deepEqual(env[k].valueFrom, { secretKeyRef: { name: "redis-backup-s3", key } });
      }
      const init = spec.initContainers[0];
      assert.match(init.image, /^rclone\/rclone:\d+\.\d+\.\d+$/);
      assert.deepEqual(init.command, [
        "cp",
        "/usr/local/bin/rclone",
        "/etc/ssl/certs/ca-certificates.crt",
        "/opt/rclone/",
      ]);
      // Public CAs from rclone's image: the Redis image has no CA bundle.
      assert.equal(env.S3_CA_FILE.value, "/opt/rclone/ca-certificates.crt");
      const backups = spec.volumes.find((v: Any) => v.name === "backups");
      assert.deepEqual(backups, { name: "backups", emptyDir: { sizeLimit: "20Gi" } });
    }
  });

  it("the scripts ConfigMap carries object-store.sh, byte for byte", () => {
    const cm = find(prod.objects, "ConfigMap", "redis-backup-scripts");
    assert.equal((cm as Any).data["object-store.sh"], redisScripts()["object-store.sh"]);
  });

  it("egress to the store's port is allowed; dev without a store has none and keeps its PVC", () => {
    const egress = (o: RenderResult) =>
      (find(o.objects, "NetworkPolicy", "redis-backup-allow").spec as Any).egress;
    const ext = (o: RenderResult) => egress(o).filter((r: Any) => r.to.some((p: Any) => p.ipBlock));
    assert.deepEqual(
      ext(prod).map((r: Any) => r.ports),
      [[{ protocol: "TCP", port: 443 }]],
    );
    assert.deepEqual(
      ext(withCa).map((r: Any) => r.ports),
      [[{ protocol: "TCP", port: 9000 }]],
    );
    assert.deepEqual(ext(dev), []);
    find(dev.objects, "PersistentVolumeClaim", "redis-backups");
    assert.equal(podOf(find(dev.objects, "CronJob", "redis-backup")).initContainers, undefined);
  });

  it("a CA Secret is mounted and named to rclone; host-style addressing and own credentials", () => {
    const spec = podOf(find(withCa.objects, "CronJob", "redis-backup"));
    const env = Object.fromEntries(spec.containers[0].env.map((e: Any) => [e.name, e]));
    assert.equal(env.S3_CA_FILE.value, "/etc/redis-backup-s3-ca/ca.crt");
    assert.equal(env.S3_URI_STYLE.value, "host");
    assert.equal(env.S3_PORT.value, "9000");
    assert.equal(env.RCLONE_CONFIG_STORE_ACCESS_KEY_ID.valueFrom.secretKeyRef.name, "minio-keys");
    assert.deepEqual(
      spec.volumes.find((v: Any) => v.name === "s3-ca"),
      { name: "s3-ca", secret: { secretName: "backup-ca", defaultMode: 0o444 } },
    );
  });

  it("scripts/redis-restore --list runs restore.sh --list in the template's pod (store or PVC)", () => {
    const template = find(prod.objects, "CronJob", "redis-restore");
    const dir = mkdtempSync(join(tmpdir(), "redis-restore-list-"));
    try {
      const job = { apiVersion: "batch/v1", kind: "Job", metadata: { name: "x" } };
      writeFileSync(
        join(dir, "job.json"),
        JSON.stringify({ ...job, spec: (template.spec as Any).jobTemplate.spec }),
      );
      writeFileSync(
        join(dir, "kubectl"),
        [
          "#!/usr/bin/env bash",
          `case "$*" in`,
          // kube-target.sh asks for the context's API server first.
          `  *"config view"*) echo https://127.0.0.1:6443 ;;`,
          `  *"create job"*"--dry-run=client"*) cat "${dir}/job.json" ;;`,
          `  *"create -f -"*) cat >"${dir}/submitted.json" ;;`,
          `  *"get job/"*) echo "Complete " ;;`,
          `  *logs*) echo "redis-20261201T190000Z" ;;`,
          `  *) exit 9 ;;`,
          "esac",
        ].join("\n"),
        { mode: 0o755 },
      );
      const out = execFileSync(
        "bash",
        [join(__dirname, "../../scripts/redis-restore"), "--list", "--stack", "prod"],
        {
          env: { ...process.env, KUBECTL: join(dir, "kubectl") },
          encoding: "utf8",
          timeout: 60_000,
        },
      );
      assert.match(out, /redis-20261201T190000Z/);
      const c = JSON.parse(readFileSync(join(dir, "submitted.json"), "utf8")).spec.template.spec
        .containers[0];
      assert.deepEqual(c.command.slice(0, 3), ["bash", "/scripts/restore.sh", "$(RESTORE_BACKUP)"]);
      assert.equal(c.env.find((e: Any) => e.name === "RESTORE_BACKUP").value, "--list");
      // The listing pod reaches the store like a restore does.
      assert.equal(c.env.find((e: Any) => e.name === "S3_BUCKET").value, "stock-analysis-backups");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("bad store config fails with one message naming the key and the rule", () => {
    const bad = (objectStore: unknown, key: string, rule: RegExp) => {
      try {
        loadConfig({ "stock-analysis:redis": JSON.stringify({ backup: { objectStore } }) });
        assert.fail(`accepted ${JSON.stringify(objectStore)}`);
      } catch (e) {
        assert.ok(e instanceof ConfigError, String(e));
        assert.equal(e.problems.length, 1, e.message);
        assert.ok(
          e.problems[0].startsWith(`stock-analysis:redis.backup.objectStore.${key} = `),
          e.message,
        );
        assert.match(e.problems[0], rule);
      }
    };
    bad(
      { endpoint: "https://s3.example.com", bucket: "b-1" },
      "endpoint",
      /host name without scheme/,
    );
    bad({ endpoint: "s3.example.com", bucket: "Bad_Bucket" }, "bucket", /S3 bucket name/);
    bad(
      { endpoint: "s3.example.com", bucket: "ok-bucket", path: "relative" },
      "path",
      /absolute path/,
    );
    bad(
      { endpoint: "s3.example.com", bucket: "ok-bucket", uriStyle: "virtual" },
      "uriStyle",
      /path|host/,
    );
  });
});
