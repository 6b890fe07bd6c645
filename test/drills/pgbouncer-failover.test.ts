// Writes through PgBouncer survive an unattended Patroni failover with a bounded, counted burst
// of errors and no acknowledged commit lost. Three real Patroni members (synchronous mode) on the
// simulated cluster's API server (test/helpers/patroni.ts); a TCP forwarder plays the
// `postgresql` Service (it follows that Service's endpoints, i.e. the leader's role label and
// readiness); the real pgbouncer runs the rendered pgbouncer.ini (test/helpers/pgbouncer.ts) with
// the auth_query bootstrap the pooler's Job applies.
import assert from "node:assert/strict";
import * as net from "node:net";
import { after, before, test } from "node:test";
import { postgresPoolerSchema } from "../../components/config/postgres";
import { PatroniCluster } from "../helpers/patroni";
import { RunningPgBouncer, applyPoolerBootstrap, startPgBouncer } from "../helpers/pgbouncer";
import { freePort, psql, waitFor } from "../helpers/postgres";

const all = [0, 1, 2];
const DB = "stock_app";
const APP = { user: "stock_app", password: "app-pass" };
const AUTH_PASSWORD = "pooler-auth-pass";

let c: PatroniCluster;
let bouncer: RunningPgBouncer | undefined;
let forwarder: net.Server | undefined;
let target: number | undefined;
let refreshing = true;

/** A stand-in for Service `postgresql`: new connections go to its current endpoint. */
async function startForwarder(): Promise<number> {
  const port = await freePort();
  void (async () => {
    while (refreshing) {
      const pods = await c.endpointPodsAsync("postgresql").catch(() => []);
      const i = pods.length === 1 ? Number(/-(\d+)$/.exec(pods[0])?.[1]) : NaN;
      target = Number.isInteger(i) ? c.pgPorts[i] : undefined;
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  forwarder = net.createServer((client) => {
    if (target === undefined) {
      client.destroy();
      return;
    }
    const server = net.connect(target, "127.0.0.1");
    client.pipe(server).pipe(client);
    const close = () => {
      client.destroy();
      server.destroy();
    };
    client.on("error", close);
    server.on("error", close);
  });
  await new Promise<void>((r) => forwarder!.listen(port, "127.0.0.1", r));
  return port;
}

before(async () => {
  c = await PatroniCluster.start({ members: 3, synchronous: true });
});

after(async () => {
  refreshing = false;
  await bouncer?.stop();
  forwarder?.close();
  await c?.stop();
});

test("writes through PgBouncer survive a failover: bounded error burst, nothing acknowledged lost", async () =>
  c.guard(async () => {
    const leader = await c.waitLeader(all, 90_000);
    for (const i of all) if (i !== leader) await c.waitReplica(i, 120_000);
    await c.sql(leader, `create role ${APP.user} login password '${APP.password}'`);
    await c.sql(leader, `create database ${DB} owner ${APP.user}`);
    await applyPoolerBootstrap({
      port: c.pgPorts[leader],
      database: DB,
      superuserPassword: c.passwords.superuser,
      authPassword: AUTH_PASSWORD,
    });
    await psql(c.pgPorts[leader], "create table t (id bigint primary key)", {
      user: APP.user,
      password: APP.password,
      db: DB,
    });
    const serverPort = await startForwarder();
    await waitFor("the Service stand-in to find the leader", async () => target !== undefined);
    bouncer = await startPgBouncer({
      ini: {
        pool: postgresPoolerSchema.parse({}),
        serverHost: "127.0.0.1",
        serverPort,
        database: DB,
      },
      authPassword: AUTH_PASSWORD,
    });
    const viaPooler = (q: string) =>
      psql(bouncer!.port, q, { user: APP.user, password: APP.password, db: DB, timeoutMs: 5000 });

    // The write load: one transaction at a time through the pooler, every outcome recorded.
    const acked: number[] = [];
    const errorsAt: number[] = [];
    let running = true;
    let next = 1;
    const load = (async () => {
      while (running) {
        const id = next++;
        try {
          if ((await viaPooler(`insert into t values (${id}) returning id`)) === String(id))
            acked.push(id);
        } catch {
          errorsAt.push(Date.now());
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    })();
    await waitFor("writes through the pooler", async () => acked.length >= 20, 60_000);
    assert.equal(errorsAt.length, 0, "no errors before the failover");
    // Steady before the break, as the other drills: with synchronous_mode Patroni promotes only
    // a recorded synchronous standby within maximum_lag_on_failover (the setup above, CREATE
    // DATABASE included, writes megabytes of WAL).
    await waitFor("a synchronous standby", () => c.hasSyncStandby(leader), 60_000, 500);
    for (const i of all)
      if (i !== leader)
        await waitFor(
          `member ${i} within maximum_lag_on_failover`,
          async () => (await c.restCode(i, "/replica?lag=1048576")) === 200,
          60_000,
          500,
        );

    // The leader's container dies: Patroni and PostgreSQL SIGKILLed.
    const killedAt = Date.now();
    const ackedBefore = acked.length;
    c.killPatroni(leader, "SIGKILL");
    c.killPostmaster(leader);
    const promoted = await c.waitLeader(
      all.filter((i) => i !== leader),
      120_000,
    );
    await waitFor(
      "20 writes through the pooler after the failover",
      async () => acked.length >= ackedBefore + 20,
      120_000,
      250,
    );
    running = false;
    await load;

    const burst = errorsAt.filter((t) => t >= killedAt);
    const window = burst.length ? (burst[burst.length - 1] - burst[0]) / 1000 : 0;
    const firstOk = (Date.now() - killedAt) / 1000;
    console.log(
      `pgbouncer failover: leader postgresql-${leader} -> postgresql-${promoted}; ` +
        `${burst.length} failed writes in a ${window.toFixed(1)} s burst; ` +
        `${acked.length - ackedBefore} writes acknowledged after the kill (${firstOk.toFixed(1)} s to the 20th)`,
    );
    // Bounded: the burst lasts no longer than Patroni's worst-case failover (ttl + loop_wait) plus
    // PgBouncer's login retry and the readiness/endpoint lag, with margin for a loaded machine.
    const bound = c.timing.ttl + c.timing.loopWait + 30;
    assert.ok(window <= bound, `error burst of ${window.toFixed(1)} s exceeds ${bound} s`);

    // Every acknowledged commit is on the new leader.
    const rows = await psql(c.pgPorts[promoted], "select id from t order by id", {
      user: APP.user,
      password: APP.password,
      db: DB,
    });
    const present = new Set(rows.split("\n").filter(Boolean).map(Number));
    const lost = acked.filter((id) => !present.has(id));
    assert.deepEqual(lost, [], `${lost.length} acknowledged commits lost`);
  })());
