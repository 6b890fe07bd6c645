// Failure drills on three real Patroni members with synchronous_mode (test/helpers/patroni.ts),
// under a continuous write load through the read-write Service (a writer that records every
// acknowledged commit): the primary's postmaster SIGKILLed, its Patroni agent stopped (SIGTERM)
// and killed (SIGKILL, PostgreSQL left running), and its access to the API server cut. Each time:
// the cluster recovers without a human, the role label and the `postgresql` Service's endpoints
// follow the leader, no acknowledged commit is lost, and the old primary rejoins as a replica.
// Then a planned switchover through components/postgres/scripts/pg-switchover.sh.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { PatroniCluster, WriteLoad, isLeaderStatus } from "../helpers/patroni";
import { pidAlive, waitFor } from "../helpers/postgres";

const execFileP = promisify(execFile);
const SWITCHOVER = path.join(__dirname, "../../components/postgres/scripts/pg-switchover.sh");
const all = [0, 1, 2];
let c: PatroniCluster;
let load: WriteLoad;

before(async () => {
  c = await PatroniCluster.start({ members: 3, synchronous: true });
  const leader = await c.waitLeader(all, 120_000);
  await load_ready(leader);
});

async function load_ready(leader: number): Promise<void> {
  load = new WriteLoad(c);
  await load.create(leader);
  await steady();
  load.start();
  await waitFor("the first acknowledged write", async () => load.acked.length > 0, 60_000);
}

after(async () => {
  await load?.stop();
  if (load)
    console.log(
      `patroni drills: ${load.acked.length} acknowledged writes, ${load.errors} failed attempts`,
    );
  await c?.stop();
});

/** One leader, two running replicas, a synchronous standby, labels and endpoints in line. */
async function steady(): Promise<number> {
  const leader = await c.waitLeader(all, 120_000);
  for (const i of all) if (i !== leader) await c.waitReplica(i, 120_000);
  await waitFor("a synchronous standby", () => c.hasSyncStandby(leader), 60_000, 500);
  await waitFor(
    "role labels and endpoints in line",
    async () => {
      const l = c.roleLabels();
      return (
        all.every((i) => l[c.podName(i)] === (i === leader ? "master" : "replica")) &&
        c.endpointPods("postgresql").join() === c.podName(leader)
      );
    },
    60_000,
    500,
  );
  return leader;
}

const since = (t0: number) => ((Date.now() - t0) / 1000).toFixed(1);

interface Drill {
  /** Breaks the leader; returns a predicate telling whether member i, found leading, is a real
   *  (new or restarted) leader rather than the broken one still reporting. */
  disrupt(old: number): Promise<(i: number) => boolean>;
  /** Undoes the break (restarts the agent, heals the cut). */
  restore(old: number): Promise<void>;
  /** Patroni may keep the leader by restarting PostgreSQL in place. */
  inPlaceAllowed?: boolean;
}

async function runDrill(name: string, d: Drill): Promise<void> {
  const old = await steady();
  const rewindsBefore = (
    fs.readFileSync(c.logFile(old), "utf8").match(/pg_rewind exit code=0/g) ?? []
  ).length;
  const t0 = Date.now();
  const real = await d.disrupt(old);
  const candidates = d.inPlaceAllowed ? all : all.filter((i) => i !== old);
  const leader = await waitFor(
    "a leader after the drill",
    async () => {
      for (const i of candidates) if (real(i) && isLeaderStatus(await c.status(i))) return i + 1;
      return undefined;
    },
    (c.timing.ttl + 60) * 1000,
    250,
  ).then((i) => i - 1);
  const elected = since(t0);
  const inPlace = leader === old;
  await waitFor(
    `the master label on ${c.podName(leader)}`,
    async () => c.roleLabels()[c.podName(leader)] === "master",
    30_000,
    250,
  );
  const labelled = since(t0);
  let endpoints = "";
  try {
    await waitFor(
      `endpoints of Service postgresql = ${c.podName(leader)} only`,
      async () => c.endpointPods("postgresql").join() === c.podName(leader),
      30_000,
      250,
    );
    endpoints = since(t0);
  } catch {
    endpoints = `not before restore (${c.endpointPods("postgresql").join()})`;
  }
  const tElected = t0 + Number(elected) * 1000;
  await waitFor(
    "an acknowledged write after the leader was elected",
    async () => load.firstWriteAfter(tElected),
    60_000,
  );
  // The first write started after the break and acknowledged; the longest time without any.
  const firstWrite = ((load.firstWriteAfter(t0)! - t0) / 1000).toFixed(1);
  const outage = (load.maxGap(t0, tElected) / 1000).toFixed(1);
  await d.restore(old);
  if (!inPlace) await c.waitReplica(old, 120_000);
  await steady();
  assert.equal(await c.leaders().then((l) => l.join()), String(leader), "one leader");
  // Every commit the writer saw acknowledged is on the leader, and replayed on the old primary.
  assert.deepEqual(await load.lostOn(leader), [], "acknowledged commits lost on the leader");
  await waitFor(
    `the old primary to replay every acknowledged commit`,
    async () => (await load.lostOn(old)).length === 0,
    60_000,
    500,
  );
  const rewound =
    (fs.readFileSync(c.logFile(old), "utf8").match(/pg_rewind exit code=0/g) ?? []).length >
    rewindsBefore;
  console.log(
    `drill ${name}: ${inPlace ? `${c.podName(old)} restarted in place, no promotion` : `${c.podName(old)} -> ${c.podName(leader)}`}; ` +
      `leader after ${elected} s, labelled ${labelled} s, endpoints ${endpoints}${/^\d/.test(endpoints) ? " s" : ""}, ` +
      `first write ${firstWrite} s, longest write gap ${outage} s; ${inPlace ? "" : `old primary rejoined${rewound ? " via pg_rewind" : ""}; `}` +
      `0 of ${load.acked.length} acknowledged commits lost, ${load.errors} failed attempts so far`,
  );
  assert.match(endpoints, /^\d/, `the Service's endpoints did not follow the leader: ${endpoints}`);
}

describe("Patroni failure drills under write load (synchronous_mode)", () => {
  test("SIGKILL of the primary's postmaster (Patroni alive)", async () =>
    c.guard(() =>
      runDrill("postmaster SIGKILL", {
        inPlaceAllowed: true,
        async disrupt(old) {
          const pm = c.killPostmaster(old);
          assert.ok(pm, "the primary has a postmaster");
          // The old member counts again only once it runs a new postmaster.
          return (i) =>
            i !== old || (c.postmasterPid(i) !== pm && pidAlive(c.postmasterPid(i) ?? 0));
        },
        async restore() {},
      }),
    )());

  test("SIGTERM of the primary's Patroni agent (it stops PostgreSQL and hands over)", async () =>
    c.guard(() =>
      runDrill("Patroni SIGTERM", {
        async disrupt(old) {
          c.killPatroni(old, "SIGTERM");
          await c.waitExited(old, 60_000);
          return () => true;
        },
        async restore(old) {
          c.startMember(old);
        },
      }),
    )());

  test("SIGKILL of the primary's Patroni agent alone (PostgreSQL keeps running)", async () =>
    c.guard(() =>
      runDrill("Patroni SIGKILL", {
        async disrupt(old) {
          c.killPatroni(old, "SIGKILL");
          return () => true;
        },
        async restore(old) {
          c.startMember(old);
        },
      }),
    )());

  test("the primary cut off from the API server (its DCS connection black-holed)", async () =>
    c.guard(() =>
      runDrill("DCS cut", {
        async disrupt(old) {
          c.cutDcs(old);
          return (i) => i !== old;
        },
        async restore(old) {
          c.healDcs(old);
        },
      }),
    )());

  const switchover = (member: string, env: Record<string, string> = {}) =>
    execFileP("bash", [SWITCHOVER, member], {
      env: {
        PATH: process.env.PATH,
        PATRONI_MEMBERS: all.map((i) => `${c.podName(i)}=${c.restUrl(i)}`).join(" "),
        PATRONI_RESTAPI_USERNAME: c.restUser,
        PATRONI_RESTAPI_PASSWORD: c.passwords.restapi,
        SWITCHOVER_TIMEOUT: "90",
        ...env,
      },
      timeout: 300_000,
    }).then(
      (r) => ({ code: 0, ...r }),
      (e: { code?: number; stdout?: string; stderr?: string }) => ({
        code: e.code ?? -1,
        stdout: e.stdout ?? "",
        stderr: e.stderr ?? "",
      }),
    );

  test("planned switchover with pg-switchover.sh: to an asynchronous replica, then a no-op", async () =>
    c.guard(async () => {
      const old = await steady();
      // The asynchronous replica: Patroni's switchover alone would refuse it.
      const target = await waitFor(
        "the asynchronous replica",
        async () => {
          for (const i of all)
            if (i !== old && (await c.restCode(i, "/async")) === 200) return i + 1;
          return undefined;
        },
        30_000,
      ).then((i) => i - 1);
      const ackedBefore = load.acked.length;
      const t0 = Date.now();
      const r = await switchover(c.podName(target));
      assert.equal(r.code, 0, `pg-switchover.sh failed: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`${c.podName(target)} leads`));
      // The target alone leads (a REST answer slower than 2 s on a loaded machine counts as none:
      // asked again for a few seconds).
      await waitFor(
        `${c.podName(target)} as the only leader`,
        async () => (await c.leaders()).join() === String(target),
        15_000,
        500,
      );
      await waitFor(
        "labels and endpoints on the new leader",
        async () =>
          c.roleLabels()[c.podName(target)] === "master" &&
          c.endpointPods("postgresql").join() === c.podName(target),
        30_000,
        250,
      );
      await waitFor("an acknowledged write after the switchover", async () =>
        load.ackedAt.some((t) => t > Date.now() - 2000),
      );
      // The synchronous_node_count raised for the switchover is back to its default.
      const config = (await (await fetch(`${c.restUrl(target)}/config`)).json()) as Record<
        string,
        unknown
      >;
      assert.equal(config.synchronous_node_count, undefined, JSON.stringify(config));
      await c.waitReplica(old, 120_000);
      await steady();
      assert.deepEqual(await load.lostOn(target), []);
      console.log(
        `switchover ${c.podName(old)} -> ${c.podName(target)} (async replica): ${since(t0)} s; ` +
          `${load.acked.length - ackedBefore} writes acknowledged meanwhile, 0 lost`,
      );

      // Idempotent: asking again changes nothing.
      const again = await switchover(c.podName(target));
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /already leads; nothing to do/);
      assert.deepEqual(await c.leaders(), [target]);
    })());

  test("pg-switchover.sh refuses an unhealthy candidate or an unknown member, in one line", async () =>
    c.guard(async () => {
      const leader = await steady();
      const replica = all.find((i) => i !== leader)!;
      const unknown = await switchover("postgresql-9");
      assert.equal(unknown.code, 2);
      assert.match(unknown.stderr, /no member 'postgresql-9'/);
      // A replica whose Patroni does not answer (frozen) is not a candidate.
      const pid = c.patroniPid(replica)!;
      process.kill(pid, "SIGSTOP");
      try {
        const r = await switchover(c.podName(replica));
        assert.equal(r.code, 1);
        assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
        assert.match(r.stderr, /not a healthy replica/);
      } finally {
        process.kill(pid, "SIGCONT");
      }
      assert.deepEqual(await c.leaders(), [leader], "no switchover happened");
      // A wrong password is refused by Patroni's REST API, and reported.
      await c.waitReplica(replica, 60_000);
      const r = await switchover(c.podName(replica), { PATRONI_RESTAPI_PASSWORD: "wrong" });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /401|refused/);
      assert.deepEqual(await c.leaders(), [leader], "no switchover happened");
    })());
});
