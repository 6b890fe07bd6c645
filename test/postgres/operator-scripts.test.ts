// scripts/pg-restore against a recording fake kubectl. The fake runs the
// restore Job's command for real: pg-restore.sh against a real PostgreSQL 15, as the Job would.
// The cluster is the stack's (scripts/lib/kube-target.sh; test/unit/kube-target.test.ts covers it).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { scriptPath } from "../../components/postgres/content";
import { PG_PATH, PgCluster, pgTempDir, runAsPostgres } from "../helpers/postgres";

const ROOT = path.resolve(__dirname, "../..");
let cluster: PgCluster;
let work: string;
let backupDir: string;

const FAKE_KUBECTL = `#!/usr/bin/env bash
# Recording fake kubectl: one line per call in $FAKE_LOG.
set -euo pipefail
if [ "$1 $3 $4" = "--context config view" ]; then printf 'https://127.0.0.1:6443'; exit 0; fi
echo "$*" >>"$FAKE_LOG"
[ "$1" = --context ] && shift 2
[ "$1" = -n ] && shift 2
case "$1 $2" in
  "get deployment") var="FAKE_REPLICAS_\${3//-/_}"; printf '%s' "\${!var}" ;;
  "get statefulset") printf '%s' "$FAKE_MEMBERS" ;;
  "scale deployment" | "patch service") ;;
  "get pods") ;;
  "create job") printf 'kind: Job\\nmetadata:\\n  name: %s\\n' "$3" ;;
  "set env") cat; for a in "$@"; do if [[ "$a" == BACKUP_NAME=* ]]; then printf '#env %s\\n' "$a"; fi; done ;;
  "create -f")
    spec="$(cat)"
    backup="$(sed -n 's/^#env BACKUP_NAME=//p' <<<"$spec")"
    rc=0
    BACKUP_NAME="$backup" "$FAKE_RESTORE" >"$FAKE_STATE/job.log" 2>&1 || rc=$?
    echo "$rc" >"$FAKE_STATE/job.rc" ;;
  "get job") if [ "$(cat "$FAKE_STATE/job.rc")" = 0 ]; then printf '1/'; else printf '/1'; fi ;;
  "logs job/"*) cat "$FAKE_STATE/job.log" ;;
  exec*) pod="$2"; [[ " \${FAKE_DOWN_PODS:-} " == *" $pod "* ]] && exit 1; echo "exec ok" ;;
  *) echo "fake kubectl: unexpected $*" >&2; exit 3 ;;
esac
`;

function run(
  script: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string; calls: string[] }> {
  const log = path.join(work, `calls-${Date.now()}.log`);
  fs.writeFileSync(log, "");
  return new Promise((resolve) => {
    const p = spawn("bash", [path.join(ROOT, script), ...args], {
      env: {
        PATH: PG_PATH,
        KUBECTL: path.join(work, "kubectl"),
        FAKE_LOG: log,
        FAKE_STATE: work,
        FAKE_RESTORE: path.join(work, "restore-job"),
        ...env,
      },
    });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    p.on("close", (code) =>
      resolve({
        code: code ?? -1,
        stdout,
        stderr,
        calls: fs.readFileSync(log, "utf8").trim().split("\n").filter(Boolean),
      }),
    );
  });
}

before(async () => {
  work = pgTempDir("pg-operator-");
  backupDir = pgTempDir("pg-operator-backups-");
  cluster = await PgCluster.create({ members: 1 });
  await cluster.start(0);
  await cluster.waitAppReady(0);
  await cluster.sql(
    0,
    "create table stocks (id int primary key, v text); insert into stocks select g, md5(g::text) from generate_series(1, 5000) g",
    "stock_analysis",
    "stock_analysis",
  );
  const env = {
    PGHOST: "127.0.0.1",
    PGPORT: String(cluster.ports[0]),
    PG_PASSWORD_FILE: path.join(cluster.root, "secrets/superuser"),
    BACKUP_DIR: backupDir,
  };
  const b = await runAsPostgres(scriptPath("pg-backup.sh"), [], env);
  assert.equal(b.code, 0, b.stderr);
  fs.writeFileSync(path.join(work, "kubectl"), FAKE_KUBECTL, { mode: 0o755 });
  // What the restore Job's container runs: the in-pod script, as postgres, with the Job's env.
  fs.writeFileSync(
    path.join(work, "restore-job"),
    `#!/usr/bin/env bash\nexec setpriv --reuid=postgres --regid=postgres --init-groups env ${Object.entries(
      env,
    )
      .map(([k, v]) => `${k}=${v}`)
      .join(" ")} BACKUP_NAME="$BACKUP_NAME" bash ${scriptPath("pg-restore.sh")}\n`,
    { mode: 0o755 },
  );
});

after(async () => {
  await cluster?.destroy();
  for (const d of [work, backupDir]) if (d) fs.rmSync(d, { recursive: true, force: true });
});

const replicas = {
  FAKE_REPLICAS_stock_analysis_api: "5",
  FAKE_REPLICAS_stock_analysis_celery: "3",
};

describe("scripts/pg-restore", () => {
  it("scales API and Celery to 0, restores with pg-restore.sh, scales back to the previous counts", async () => {
    await cluster.sql(0, "delete from stocks where id > 100", "stock_analysis");
    const r = await run("scripts/pg-restore", ["--stack", "dev"], replicas);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.equal(await cluster.sql(0, "select count(*) from stocks", "stock_analysis"), "5000");
    const scale = r.calls.filter((c) => c.includes(" scale "));
    assert.deepEqual(scale, [
      "--context kind-stock-analysis -n stock-analysis scale deployment stock-analysis-api --replicas=0",
      "--context kind-stock-analysis -n stock-analysis scale deployment stock-analysis-celery --replicas=0",
      "--context kind-stock-analysis -n stock-analysis scale deployment stock-analysis-api --replicas=5",
      "--context kind-stock-analysis -n stock-analysis scale deployment stock-analysis-celery --replicas=3",
    ]);
    const i = (s: string) => r.calls.findIndex((c) => c.includes(s));
    assert.ok(i("get pods -l app=stock-analysis-celery -o name") < i("create job"));
    assert.ok(i("--replicas=0") < i("get pods -l app=stock-analysis-api"));
    assert.ok(i("--from=cronjob/postgresql-restore") < i("--replicas=5"));
    assert.match(r.stdout, /restore succeeded/);
  });

  it("scales back to the previous counts when the restore fails, leaving the database as it was", async () => {
    await cluster.sql(0, "delete from stocks where id > 10", "stock_analysis");
    const r = await run("scripts/pg-restore", ["--stack", "dev", "backup-20000101T000000Z"], {
      FAKE_REPLICAS_stock_analysis_api: "2",
      FAKE_REPLICAS_stock_analysis_celery: "1",
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /restore FAILED/);
    assert.match(r.stdout, /no backup backup-20000101T000000Z/);
    assert.deepEqual(r.calls.slice(-2), [
      "--context kind-stock-analysis -n stock-analysis scale deployment stock-analysis-api --replicas=2",
      "--context kind-stock-analysis -n stock-analysis scale deployment stock-analysis-celery --replicas=1",
    ]);
    assert.equal(await cluster.sql(0, "select count(*) from stocks", "stock_analysis"), "10");
  });

  it("refuses to start when it cannot read the current replica counts", async () => {
    const r = await run("scripts/pg-restore", ["--stack", "dev"], {
      FAKE_REPLICAS_stock_analysis_api: "5",
    });
    assert.notEqual(r.code, 0);
    assert.equal(r.calls.filter((c) => c.includes(" scale ")).length, 0);
  });
});
