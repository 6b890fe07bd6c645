/**
 * PostgreSQL failover benchmark (see scripts/bench/pg-failover). Loopback only: three real Patroni
 * members with synchronous_mode on the simulated cluster (test/helpers/patroni.ts). Two writers
 * run through every kill: one straight to the `postgresql` Service's endpoints (the read-write
 * path), one through a real PgBouncer on the shipped pgbouncer.ini whose upstream follows the
 * same endpoints (test/helpers/pgbouncer.ts). Every acknowledged commit is recorded and looked
 * for on the last leader.
 */
import { execFile } from "node:child_process";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { loadConfig } from "../../components/config/load";
import { postgresPoolerSchema } from "../../components/config/postgres";
import {
  PatroniTiming,
  READINESS_PERIOD_SECONDS,
  checkTiming,
} from "../../components/postgres/patroni";
import { PatroniCluster, WriteLoad, isLeaderStatus } from "../../test/helpers/patroni";
import {
  PoolerWriteLoad,
  RunningPgBouncer,
  ServiceForwarder,
  applyPoolerBootstrap,
  followService,
  startPgBouncer,
} from "../../test/helpers/pgbouncer";
import { psql, waitFor } from "../../test/helpers/postgres";
import { readStackConfig } from "../lib/render-stack";

const execFileP = promisify(execFile);
const KILLS = Number(process.env.KILLS ?? 5);
const PLANNED = Number(process.env.PLANNED ?? 2);
const STACK = process.env.STACK ?? "prod";
/** The stack's postgres.failover (what its members run), each value overridable. */
const stackTiming = (() => {
  const { config, secretKeys } = readStackConfig(STACK);
  return loadConfig(config, secretKeys).postgres.failover;
})();
const TIMING: PatroniTiming = {
  ttl: Number(process.env.TTL ?? stackTiming.ttl),
  loopWait: Number(process.env.LOOP_WAIT ?? stackTiming.loopWait),
  retryTimeout: Number(process.env.RETRY_TIMEOUT ?? stackTiming.retryTimeout),
};
const READINESS_PERIOD = Number(process.env.READINESS_PERIOD ?? READINESS_PERIOD_SECONDS);
const SWITCHOVER = path.join(__dirname, "../../components/postgres/scripts/pg-switchover.sh");
const MAX_LAG = 1024 * 1024; // patroniDynamicConfig's maximum_lag_on_failover default
const all = [0, 1, 2];
const APP = { user: "stock_app", password: "app-pass", db: "stock_app" };
const AUTH_PASSWORD = "pooler-auth-pass";

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const median = (xs: number[]) => {
  const s = sorted(xs);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const sec = (ms: number) => (ms / 1000).toFixed(1);
const loadavg = () => os.loadavg()[0].toFixed(1);
function stats(xs: number[], unit = (v: number) => `${sec(v)}`, suffix = " s"): string {
  const s = sorted(xs);
  return (
    `min ${unit(s[0])} / median ${unit(median(s))} / max ${unit(s[s.length - 1])}${suffix}` +
    ` (n=${s.length})`
  );
}

/** Leader, replicas streaming, a synchronous standby within maximum_lag_on_failover, endpoints on the leader. */
async function steady(c: PatroniCluster): Promise<number> {
  const leader = await c.waitLeader(all, 120_000);
  for (const i of all) if (i !== leader) await c.waitReplica(i, 120_000);
  await waitFor(
    "a synchronous standby within maximum_lag_on_failover, labels and endpoints in line",
    async () => {
      if (!(await c.hasSyncStandby(leader))) return false;
      for (const i of all)
        if (i !== leader && (await c.restCode(i, `/replica?lag=${MAX_LAG}`)) !== 200) return false;
      return (await c.endpointPodsAsync("postgresql")).join() === c.podName(leader);
    },
    60_000,
    500,
  );
  return leader;
}

interface Round {
  promoted: number;
  endpoints: number;
  /** kill -> first acknowledged write, straight to the Service's endpoints. */
  firstWrite: number;
  /** kill -> first acknowledged write through PgBouncer. */
  pooledWrite: number;
  /** Failed attempts between the kill and the first acknowledged write, each path. */
  burst: number;
  pooledBurst: number;
  load: string;
}

const countIn = (ts: number[], from: number, to: number) =>
  ts.filter((t) => t >= from && t <= to).length;

/** SIGKILL of the leader's Patroni and postmaster (the container dies), then its restart. */
async function killRound(
  c: PatroniCluster,
  load: WriteLoad,
  pooled: PoolerWriteLoad,
): Promise<Round> {
  const old = await steady(c);
  const t0 = Date.now();
  c.killPatroni(old);
  c.killPostmaster(old);
  const others = all.filter((i) => i !== old);
  const leader = await waitFor(
    "a new leader",
    async () => {
      for (const i of others) if (isLeaderStatus(await c.status(i))) return i + 1;
      return undefined;
    },
    (TIMING.ttl + 60) * 1000,
    100,
  ).then((i) => i - 1);
  const promoted = Date.now() - t0;
  await waitFor(
    "the Service's endpoints on the new leader",
    async () => (await c.endpointPodsAsync("postgresql")).join() === c.podName(leader),
    60_000,
    100,
  );
  const endpoints = Date.now() - t0;
  const ack = await waitFor("a write after the kill", async () => load.firstWriteAfter(t0), 60_000);
  const pooledAck = await waitFor(
    "a write through PgBouncer after the kill",
    async () => pooled.firstWriteAfter(t0),
    60_000,
  );
  const round: Round = {
    promoted,
    endpoints,
    firstWrite: ack - t0,
    pooledWrite: pooledAck - t0,
    burst: countIn(load.errorsAt, t0, ack),
    pooledBurst: countIn(pooled.errorsAt, t0, pooledAck),
    load: loadavg(),
  };
  c.startMember(old);
  await c.waitReplica(old, 120_000);
  return round;
}

/** Baseline: a planned switchover with pg-switchover.sh to the synchronous standby. */
async function plannedRound(c: PatroniCluster, load: WriteLoad): Promise<number[]> {
  const old = await steady(c);
  const target = await waitFor(
    "the synchronous standby",
    async () => {
      for (const i of all) if (i !== old && (await c.restCode(i, "/sync")) === 200) return i + 1;
      return undefined;
    },
    30_000,
  ).then((i) => i - 1);
  const t0 = Date.now();
  await execFileP("bash", [SWITCHOVER, c.podName(target)], {
    env: {
      PATH: process.env.PATH,
      PATRONI_MEMBERS: all.map((i) => `${c.podName(i)}=${c.restUrl(i)}`).join(" "),
      PATRONI_RESTAPI_USERNAME: c.restUser,
      PATRONI_RESTAPI_PASSWORD: c.passwords.restapi,
    },
  });
  const promoted = Date.now() - t0;
  await waitFor(
    "the Service's endpoints on the new leader",
    async () => (await c.endpointPodsAsync("postgresql")).join() === c.podName(target),
    60_000,
    100,
  );
  const gap = load.maxGap(t0, t0 + promoted);
  await c.waitReplica(old, 120_000);
  return [promoted, gap];
}

/** The app's role and database, the pooler's auth_query bootstrap, and the pooled writer's table. */
async function preparePooler(c: PatroniCluster, leader: number): Promise<void> {
  await c.sql(leader, `create role ${APP.user} login password '${APP.password}'`);
  await c.sql(leader, `create database ${APP.db} owner ${APP.user}`);
  await applyPoolerBootstrap({
    port: c.pgPorts[leader],
    database: APP.db,
    superuserPassword: c.passwords.superuser,
    authPassword: AUTH_PASSWORD,
  });
  await psql(c.pgPorts[leader], "create table pooler_load (id bigint primary key)", APP);
}

async function main() {
  checkTiming(TIMING);
  const started = Date.now();
  const startLoad = loadavg();
  const c = await PatroniCluster.start({
    members: 3,
    synchronous: true,
    timing: TIMING,
    readinessPeriodMs: READINESS_PERIOD * 1000,
  });
  const load = new WriteLoad(c);
  let forwarder: ServiceForwarder | undefined;
  let bouncer: RunningPgBouncer | undefined;
  let pooled: PoolerWriteLoad | undefined;
  try {
    const first = await steady(c);
    await load.create(first);
    await preparePooler(c, first);
    forwarder = await followService(c, "postgresql");
    await waitFor("the Service stand-in to find the leader", async () => forwarder!.target());
    bouncer = await startPgBouncer({
      ini: {
        pool: postgresPoolerSchema.parse({}),
        serverHost: "127.0.0.1",
        serverPort: forwarder.port,
        database: APP.db,
      },
      authPassword: AUTH_PASSWORD,
    });
    pooled = new PoolerWriteLoad(bouncer.port, APP);
    load.start();
    pooled.start();
    await waitFor(
      "writes on both paths",
      async () => load.acked.length >= 10 && pooled!.acked.length >= 10,
    );
    const planned: number[][] = [];
    for (let k = 0; k < PLANNED; k++) planned.push(await plannedRound(c, load));
    const kills: Round[] = [];
    for (let k = 0; k < KILLS; k++) {
      const r = await killRound(c, load, pooled);
      kills.push(r);
      console.error(
        `kill ${k + 1}/${KILLS}: promoted ${sec(r.promoted)} s, endpoints ${sec(r.endpoints)} s, ` +
          `first write ${sec(r.firstWrite)} s (${r.burst} failed), through PgBouncer ` +
          `${sec(r.pooledWrite)} s (${r.pooledBurst} failed); load average ${r.load}`,
      );
    }
    const leader = await steady(c);
    await load.stop();
    await pooled.stop();
    const lost = await load.lostOn(leader);
    const pooledRows = await psql(c.pgPorts[leader], "select id from pooler_load", {
      password: c.passwords.superuser,
      db: APP.db,
      timeoutMs: 60_000,
    });
    const have = new Set(pooledRows.split("\n").filter(Boolean).map(Number));
    const pooledLost = pooled.acked.filter((id) => !have.has(id));
    const pick = (k: keyof Omit<Round, "load">) => kills.map((r) => r[k]);
    const count = (v: number) => String(v);
    const medianFirst = median(pick("firstWrite"));
    const medianPlanned = median(planned.map((p) => p[0]));
    console.log(
      `PostgreSQL failover (Patroni ${(await c.status(leader))?.patroni?.version ?? "?"}, ` +
        `synchronous_mode, stack ${STACK}'s timing unless overridden: ttl ${TIMING.ttl} / loop_wait ${TIMING.loopWait} / retry_timeout ` +
        `${TIMING.retryTimeout}, readiness probe every ${READINESS_PERIOD} s; ${KILLS} SIGKILLs ` +
        `of the leader's Patroni + postmaster)`,
    );
    console.log(
      `  load average (1 min)             start ${startLoad}, per kill ` +
        `${kills.map((r) => r.load).join(" ")}, end ${loadavg()} (${os.cpus().length} cores)`,
    );
    console.log(`  new leader after                 ${stats(pick("promoted"))}`);
    console.log(`  Service endpoints switched       ${stats(pick("endpoints"))}`);
    console.log(`  kill -> first write (rw path)    ${stats(pick("firstWrite"))}`);
    console.log(`    failed writes in the burst     ${stats(pick("burst"), count, "")}`);
    console.log(`  kill -> first write (PgBouncer)  ${stats(pick("pooledWrite"))}`);
    console.log(`    failed writes in the burst     ${stats(pick("pooledBurst"), count, "")}`);
    console.log(`  baseline planned switchover      ${stats(planned.map((p) => p[0]))}`);
    console.log(`    its longest write gap          ${stats(planned.map((p) => p[1]))}`);
    console.log(
      `  ratio kill/planned (median)      rw ${(medianFirst / medianPlanned).toFixed(1)}x, ` +
        `PgBouncer ${(median(pick("pooledWrite")) / medianPlanned).toFixed(1)}x; ` +
        `rw first write / ttl ${(medianFirst / 1000 / TIMING.ttl).toFixed(2)}`,
    );
    console.log(
      `  acknowledged commits lost        rw ${lost.length} of ${load.acked.length}, ` +
        `PgBouncer ${pooledLost.length} of ${pooled.acked.length} ` +
        `(failed attempts in the whole run: ${load.errors}, ${pooled.errorsAt.length})`,
    );
    console.log(`total ${sec(Date.now() - started)} s`);
    if (lost.length || pooledLost.length) process.exitCode = 1;
  } catch (e) {
    c.failed = true;
    throw e;
  } finally {
    await load.stop();
    await pooled?.stop();
    await bouncer?.stop();
    await forwarder?.stop();
    await c.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
