// scripts/pg-restore and scripts/pg-failover against a recording fake kubectl. The fake runs the
// restore Job's command for real: pg-restore.sh against a real PostgreSQL 15, as the Job would.
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
echo "$*" >>"$FAKE_LOG"
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
  cluster.start(0);
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

// scripts/pg-restore (pgBackRest into a new volume) is tested in test/backup/pg-restore-script.test.ts.
describe("scripts/pg-failover", () => {
  it("pins the new primary on every member, promotes it, repoints the Service, prints the config line", async () => {
    const r = await run("scripts/pg-failover", ["1", "--stack", "prod"], {
      FAKE_MEMBERS: "3",
      FAKE_DOWN_PODS: "postgresql-0",
    });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.calls.slice(1), [
      "-n stock-analysis exec postgresql-0 -c postgresql -- bash /scripts/pg-failover.sh follow 1",
      "-n stock-analysis exec postgresql-2 -c postgresql -- bash /scripts/pg-failover.sh follow 1",
      "-n stock-analysis exec postgresql-1 -c postgresql -- bash /scripts/pg-failover.sh promote",
      '-n stock-analysis patch service postgresql --type merge -p {"spec":{"selector":{"statefulset.kubernetes.io/pod-name":"postgresql-1"}}}',
    ]);
    assert.match(r.stderr, /postgresql-0 unreachable/);
    assert.match(r.stdout, /^ {2}pulumi config set --path postgres\.primary 1 --stack prod$/m);
  });

  it("does not touch the Service when the promotion fails", async () => {
    const r = await run("scripts/pg-failover", ["2"], {
      FAKE_MEMBERS: "3",
      FAKE_DOWN_PODS: "postgresql-2",
    });
    assert.notEqual(r.code, 0);
    assert.ok(!r.calls.some((c) => c.includes("patch service")));
  });

  it("rejects an ordinal outside the StatefulSet", async () => {
    const r = await run("scripts/pg-failover", ["3"], { FAKE_MEMBERS: "3" });
    assert.equal(r.code, 2);
    assert.ok(!r.calls.some((c) => c.includes("exec")));
  });
});
