// The livenessProbe script of statefulset/postgresql, on a real PostgreSQL 15 member.
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { scriptPath } from "../../components/postgres/content";
import { PgCluster, runAsPostgres } from "../helpers/postgres";

let cluster: PgCluster;
const probe = () =>
  runAsPostgres(scriptPath("pg-liveness.sh"), [], {
    ...cluster.memberEnv(0),
    PGPORT: String(cluster.ports[0]),
    PG_LIVENESS_TIMEOUT: "2",
  });

before(async () => {
  cluster = await PgCluster.create({ members: 1 });
  await cluster.start(0);
  await cluster.waitAppReady(0);
});

after(async () => {
  const pm = cluster.postmasterPid(0);
  try {
    if (pm) process.kill(pm, "SIGCONT");
  } catch {
    /* crashed by the last case: the pid file is stale */
  }
  await cluster.stop(0);
});

it("passes while the member answers", async () => {
  const r = await probe();
  assert.equal(r.code, 0, r.stderr);
});

it("fails when the postmaster runs but does not respond", async () => {
  const pm = cluster.postmasterPid(0)!;
  process.kill(pm, "SIGSTOP");
  try {
    const r = await probe();
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`postmaster ${pm} does not respond`));
  } finally {
    process.kill(pm, "SIGCONT");
  }
  assert.equal((await probe()).code, 0, "recovers once the postmaster answers again");
});

it("passes when no postmaster runs (Patroni is cloning, rewinding or restarting it)", async () => {
  await cluster.crash(0);
  const r = await probe();
  assert.equal(r.code, 0, r.stderr);
});
