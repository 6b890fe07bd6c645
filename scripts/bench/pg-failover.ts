/**
 * PostgreSQL failover benchmark (see scripts/bench/pg-failover). Loopback only: three real Patroni
 * members with synchronous_mode on the simulated cluster (test/helpers/patroni.ts), a writer
 * through the `postgresql` Service's endpoints recording every acknowledged commit.
 */
import { execFile } from "node:child_process";
import * as path from "node:path";
import { promisify } from "node:util";
import { DEFAULT_TIMING, PatroniTiming, checkTiming } from "../../components/postgres/patroni";
import { PatroniCluster, WriteLoad, isLeaderStatus } from "../../test/helpers/patroni";
import { waitFor } from "../../test/helpers/postgres";

const execFileP = promisify(execFile);
const KILLS = Number(process.env.KILLS ?? 5);
const PLANNED = Number(process.env.PLANNED ?? 2);
const TIMING: PatroniTiming = {
  ttl: Number(process.env.TTL ?? DEFAULT_TIMING.ttl),
  loopWait: Number(process.env.LOOP_WAIT ?? DEFAULT_TIMING.loopWait),
  retryTimeout: Number(process.env.RETRY_TIMEOUT ?? DEFAULT_TIMING.retryTimeout),
};
const SWITCHOVER = path.join(__dirname, "../../components/postgres/scripts/pg-switchover.sh");
const all = [0, 1, 2];

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);
const median = (xs: number[]) => {
  const s = sorted(xs);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const sec = (ms: number) => (ms / 1000).toFixed(1);
function stats(xs: number[]): string {
  const s = sorted(xs);
  return `min ${sec(s[0])} / median ${sec(median(s))} / max ${sec(s[s.length - 1])} s (n=${s.length})`;
}

async function steady(c: PatroniCluster): Promise<number> {
  const leader = await c.waitLeader(all, 120_000);
  for (const i of all) if (i !== leader) await c.waitReplica(i, 120_000);
  await waitFor(
    "a synchronous standby, labels and endpoints in line",
    async () =>
      (await c.hasSyncStandby(leader)) && c.endpointPods("postgresql").join() === c.podName(leader),
    60_000,
    500,
  );
  return leader;
}

interface Round {
  promoted: number;
  endpoints: number;
  firstWrite: number;
}

/** SIGKILL of the leader's Patroni and postmaster (the container dies), then its restart. */
async function killRound(c: PatroniCluster, load: WriteLoad): Promise<Round> {
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
    async () => c.endpointPods("postgresql").join() === c.podName(leader),
    60_000,
    100,
  );
  const endpoints = Date.now() - t0;
  const ack = await waitFor("a write after the kill", async () => load.firstWriteAfter(t0), 60_000);
  c.startMember(old);
  await c.waitReplica(old, 120_000);
  return { promoted, endpoints, firstWrite: ack - t0 };
}

/** Baseline: a planned switchover with pg-switchover.sh to the synchronous standby. */
async function plannedRound(c: PatroniCluster, load: WriteLoad): Promise<Round> {
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
    async () => c.endpointPods("postgresql").join() === c.podName(target),
    60_000,
    100,
  );
  const endpoints = Date.now() - t0;
  const gap = load.maxGap(t0, t0 + promoted);
  await c.waitReplica(old, 120_000);
  return { promoted, endpoints, firstWrite: gap };
}

async function main() {
  checkTiming(TIMING);
  const started = Date.now();
  const c = await PatroniCluster.start({ members: 3, synchronous: true, timing: TIMING });
  const load = new WriteLoad(c);
  try {
    await load.create(await steady(c));
    load.start();
    const planned: Round[] = [];
    for (let k = 0; k < PLANNED; k++) planned.push(await plannedRound(c, load));
    const kills: Round[] = [];
    for (let k = 0; k < KILLS; k++) {
      const r = await killRound(c, load);
      kills.push(r);
      console.error(
        `kill ${k + 1}/${KILLS}: promoted ${sec(r.promoted)} s, endpoints ${sec(r.endpoints)} s, ` +
          `first write ${sec(r.firstWrite)} s`,
      );
    }
    const leader = await steady(c);
    await load.stop();
    const lost = await load.lostOn(leader);
    const pick = (rs: Round[], k: keyof Round) => rs.map((r) => r[k]);
    console.log(
      `PostgreSQL failover (Patroni ${(await c.status(leader))?.patroni?.version ?? "?"}, ` +
        `synchronous_mode, ttl ${TIMING.ttl} / loop_wait ${TIMING.loopWait} / retry_timeout ` +
        `${TIMING.retryTimeout}; ${KILLS} SIGKILLs of the leader's Patroni + postmaster)`,
    );
    console.log(`  new leader after               ${stats(pick(kills, "promoted"))}`);
    console.log(`  Service endpoints switched     ${stats(pick(kills, "endpoints"))}`);
    console.log(`  kill -> first write (rw path)  ${stats(pick(kills, "firstWrite"))}`);
    console.log(`  baseline planned switchover    ${stats(pick(planned, "promoted"))}`);
    console.log(`    its longest write gap        ${stats(pick(planned, "firstWrite"))}`);
    console.log(
      `  ratio kill/planned (median)    ` +
        `${(median(pick(kills, "firstWrite")) / median(pick(planned, "promoted"))).toFixed(1)}x; ` +
        `first write / ttl ${(median(pick(kills, "firstWrite")) / 1000 / TIMING.ttl).toFixed(2)}`,
    );
    console.log(
      `  acknowledged commits lost      ${lost.length} of ${load.acked.length} ` +
        `(${load.errors} failed write attempts)`,
    );
    console.log("  through PgBouncer              not measured (no PgBouncer test helper yet)");
    console.log(`total ${sec(Date.now() - started)} s`);
    if (lost.length) process.exitCode = 1;
  } catch (e) {
    c.failed = true;
    throw e;
  } finally {
    await load.stop();
    await c.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
