// pg-roles.sh, which Patroni runs as post_bootstrap (once) and as a callback (on start, restart
// and role change), on a real PostgreSQL 15: roles, database and extension exist after bootstrap;
// a rotated password takes effect when the member starts as leader; replicas are left alone.
import assert from "node:assert/strict";
import * as path from "node:path";
import { after, before, it } from "node:test";
import { scriptPath } from "../../components/postgres/content";
import { PgCluster, runAsPostgres, writePgFile } from "../helpers/postgres";

let cluster: PgCluster;
const callback = (...args: string[]) =>
  runAsPostgres(scriptPath("pg-roles.sh"), args, cluster.memberEnv(0));
/** The app role logs in with the password the test currently expects (cluster.passwords.app). */
const appLogin = () =>
  cluster.sql(0, "select current_user", "stock_analysis", "stock_analysis").then(
    () => true,
    () => false,
  );

before(async () => {
  cluster = await PgCluster.create();
  await cluster.start(0); // initdb + pg-roles.sh <url>, as Patroni's bootstrap does
});

after(() => cluster.destroy());

it("bootstrap creates the app role and database, the monitoring role and pg_stat_statements", async () => {
  assert.equal(
    await cluster.sql(0, "select current_user", "stock_analysis", "stock_analysis"),
    "stock_analysis",
  );
  assert.equal(
    await cluster.sql(0, "select pg_has_role('monitoring', 'pg_monitor', 'member')"),
    "t",
  );
  assert.equal(
    await cluster.sql(
      0,
      "select count(*) from pg_extension where extname = 'pg_stat_statements'",
      "stock_analysis",
    ),
    "1",
  );
  assert.equal(
    await cluster.sql(0, "select rolreplication from pg_roles where rolname = 'replicator'"),
    "t",
  );
});

it("as a callback on a replica it changes nothing; on the leader it re-applies rotated passwords", async () => {
  const file = path.join(cluster.root, "secrets/app");
  writePgFile(file, "rotated-app-pass");
  const onReplica = await callback("on_start", "replica", "postgresql");
  assert.equal(onReplica.code, 0, onReplica.stderr);
  assert.ok(await appLogin(), "a replica callback must not touch roles");

  cluster.passwords.app = "rotated-app-pass";
  const onLeader = await callback("on_role_change", "master", "postgresql");
  assert.equal(onLeader.code, 0, onLeader.stderr);
  assert.ok(await appLogin(), "the leader applies the Secret's new password");
  // Idempotent: running it again changes nothing and succeeds.
  assert.equal((await callback("on_restart", "master", "postgresql")).code, 0);
});

it("as the new leader's callback during its promotion it waits for writes, then applies the passwords", async () => {
  const file = path.join(cluster.root, "secrets/app");
  writePgFile(file, "promoted-app-pass");
  // The member restarts as a standby (no upstream) and is promoted a few seconds after the
  // callback starts, as Patroni runs on_role_change while the promotion is still under way.
  await cluster.stop(0);
  writePgFile(path.join(cluster.memberEnv(0).PGDATA, "standby.signal"), "");
  await cluster.start(0);
  assert.equal(await cluster.sql(0, "select pg_is_in_recovery()"), "t");
  const running = callback("on_role_change", "master", "postgresql");
  await new Promise((r) => setTimeout(r, 3000));
  assert.equal(await cluster.sql(0, "select pg_promote()"), "t");
  const r = await running;
  assert.equal(r.code, 0, r.stderr);
  cluster.passwords.app = "promoted-app-pass";
  assert.ok(
    await appLogin(),
    "the new leader applies the Secret's password once it accepts writes",
  );
});

it("refuses other argument shapes", async () => {
  const r = await callback("a", "b");
  assert.equal(r.code, 2);
  assert.match(r.stderr, /usage/);
});
