// scripts/pg-restore against a recording fake kubectl: it creates a new PVC and a Job built from
// the verify CronJob's pod that runs pg-backrest-restore.sh on that PVC, and never touches the
// members. (pg-backrest-restore.sh itself runs for real in test/drills/pgbackrest.test.ts.)
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";

const ROOT = path.resolve(__dirname, "../..");
let work: string;

// The fake answers the calls pg-restore makes; `create -f` stores each created object as JSON.
const FAKE_KUBECTL = `#!/usr/bin/env bash
set -euo pipefail
# kube-target.sh: the stack's context prefixes every call; it asks for the API server first.
[ "$1" = --context ] && shift 2
[ "$1 $2" = "config view" ] && { echo "https://127.0.0.1:6443"; exit 0; }
echo "$*" >>"$FAKE_DIR/calls"
[ "$1" = -n ] && shift 2
case "$1 $2" in
  "get pvc") printf '%s' "\${FAKE_PVC_SIZE:-}" ;;
  "create job") cat "$FAKE_DIR/template.json" ;;
  "create -f") n=$(ls "$FAKE_DIR" | grep -c '^created-' || true); cat >"$FAKE_DIR/created-$n.json" ;;
  "get job") printf '%s' "$FAKE_JOB_STATUS" ;;
  "logs job/"*) echo "job log" ;;
  *) echo "unexpected kubectl $*" >&2; exit 1 ;;
esac
`;

// What `kubectl create job --from=cronjob/postgresql-backup-verify -o json` returns for the
// rendered CronJob (trimmed to the fields pg-restore reads or changes).
const TEMPLATE = {
  apiVersion: "batch/v1",
  kind: "Job",
  metadata: { name: "x" },
  spec: {
    template: {
      spec: {
        containers: [
          {
            name: "backup-verify",
            command: ["bash", "/scripts/pg-backrest-verify.sh"],
            env: [
              { name: "PGBACKREST_STANZA", value: "stock-analysis" },
              {
                name: "PGBACKREST_REPO1_S3_KEY",
                valueFrom: { secretKeyRef: { name: "postgresql-backup-s3", key: "access-key" } },
              },
              { name: "VERIFY_DIR", value: "/verify" },
              { name: "VERIFY_TABLES", value: "trades" },
            ],
            volumeMounts: [{ name: "verify", mountPath: "/verify" }],
          },
        ],
        volumes: [
          { name: "scripts", configMap: { name: "postgresql-scripts" } },
          {
            name: "verify",
            ephemeral: {
              volumeClaimTemplate: {
                spec: { storageClassName: "ssd", resources: { requests: { storage: "200Gi" } } },
              },
            },
          },
        ],
      },
    },
  },
};

before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "pg-restore-script-"));
  fs.writeFileSync(path.join(work, "kubectl"), FAKE_KUBECTL, { mode: 0o755 });
});
after(() => fs.rmSync(work, { recursive: true, force: true }));

function run(args: string[], env: Record<string, string>) {
  const dir = fs.mkdtempSync(path.join(work, "run-"));
  fs.writeFileSync(path.join(dir, "template.json"), JSON.stringify(TEMPLATE));
  const r = spawnSync("bash", [path.join(ROOT, "scripts/pg-restore"), ...args, "--stack", "dev"], {
    env: { PATH: process.env.PATH, KUBECTL: path.join(work, "kubectl"), FAKE_DIR: dir, ...env },
    encoding: "utf8",
    timeout: 60_000,
  });
  const calls = fs.existsSync(path.join(dir, "calls"))
    ? fs.readFileSync(path.join(dir, "calls"), "utf8").trim().split("\n")
    : [];
  const created = fs
    .readdirSync(dir)
    .filter((f) => f.startsWith("created-"))
    .sort()
    .map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), "utf8")));
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, calls, created };
}

describe("scripts/pg-restore", () => {
  it("restores a point in time into a new PVC sized like the members, in a Job from the verify pod", () => {
    const r = run(["--to", "2026-12-01 14:05:00+08", "--name", "pg-restored"], {
      FAKE_PVC_SIZE: "100Gi",
      FAKE_JOB_STATUS: "1/",
    });
    assert.equal(r.code, 0, r.stderr);
    const [pvc, job] = r.created;
    assert.equal(pvc.kind, "PersistentVolumeClaim");
    assert.equal(pvc.metadata.name, "pg-restored");
    assert.equal(pvc.spec.resources.requests.storage, "100Gi");
    assert.equal(pvc.spec.storageClassName, "ssd");
    const c = job.spec.template.spec.containers[0];
    assert.deepEqual(c.command, [
      "bash",
      "/scripts/pg-backrest-restore.sh",
      "--to",
      "2026-12-01 14:05:00+08",
    ]);
    const env = Object.fromEntries(c.env.map((e: { name: string }) => [e.name, e]));
    assert.equal(env.PGDATA.value, "/verify/pgdata");
    assert.ok(env.PGBACKREST_REPO1_S3_KEY, "keeps the credentials from the Secret");
    assert.ok(!env.VERIFY_DIR && !env.VERIFY_TABLES);
    assert.deepEqual(
      job.spec.template.spec.volumes.find((v: { name: string }) => v.name === "verify"),
      { name: "verify", persistentVolumeClaim: { claimName: "pg-restored" } },
    );
    // Never a member: no exec, no StatefulSet or Service change.
    assert.ok(!r.calls.some((c) => / (exec|patch|scale|delete) /.test(c)), r.calls.join("\n"));
    assert.match(r.stdout, /pvc\/pg-restored holds the restored PGDATA/);
  });

  it("restores the newest backup by default and reports a failed Job", () => {
    const r = run(["--size", "5Gi"], { FAKE_JOB_STATUS: "/1" });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /restore FAILED/);
    assert.deepEqual(r.created[1].spec.template.spec.containers[0].command, [
      "bash",
      "/scripts/pg-backrest-restore.sh",
    ]);
    assert.equal(r.created[0].spec.resources.requests.storage, "5Gi");
  });

  it("refuses a point in time without a time zone before calling kubectl", () => {
    const r = run(["--to", "2026-12-01 14:05:00"], { FAKE_JOB_STATUS: "1/" });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /explicit time zone/);
    assert.deepEqual(r.calls, []);
  });
});
