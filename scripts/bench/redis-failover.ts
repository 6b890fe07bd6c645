/**
 * Failover benchmark (see scripts/bench/redis-failover). Loopback only.
 */
import { Cluster, Redis } from "ioredis";
import { brokerConf, clusterNodeConf, sentinelConf } from "../../components/redis/content";
import {
  BrokerSet,
  ClusterNodes,
  Sandbox,
  TEST_PASSWORD,
  cli,
  freePort,
  parseInfo,
  sleep,
  waitFor,
} from "../../test/helpers/redis";

const KILLS = Number(process.env.KILLS ?? 5);
const NODE_TIMEOUT_MS = Number(process.env.NODE_TIMEOUT_MS ?? 5000);
const DOWN_AFTER_MS = Number(process.env.DOWN_AFTER_MS ?? 5000);
const LIMIT_MS = 60000;

function stats(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  const median = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return `min ${s[0]} / median ${median} / max ${s[s.length - 1]} ms (n=${s.length})`;
}
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * Writes every 20 ms; resolves with ms from `since()` (the victim's death, 0 until then) to the
 * first success of a write started after it.
 */
async function firstWriteAfter(
  write: () => Promise<unknown>,
  since: () => number,
): Promise<number> {
  const deadline = Date.now() + LIMIT_MS;
  while (Date.now() < deadline) {
    const t0 = since();
    try {
      await Promise.race([write(), sleep(1000).then(() => Promise.reject(new Error("slow")))]);
      if (t0 > 0) return Date.now() - t0;
    } catch {
      // failing over
    }
    await sleep(20);
  }
  throw new Error("writes never resumed");
}

async function benchCluster(sb: Sandbox) {
  const port = await freePort(Array.from({ length: 6 }, (_, i) => `127.0.51.${10 + i}`));
  const nodes = new ClusterNodes(
    sb,
    51,
    port,
    clusterNodeConf({ maxmemoryBytes: 64 << 20, nodeTimeoutMs: NODE_TIMEOUT_MS }),
  );
  nodes.define(6);
  await Promise.all(nodes.nodes.map((_, i) => nodes.start(i)));
  const formed = await nodes.form(3, 1);
  if (formed.code !== 0) throw new Error(formed.output);
  const client = new Cluster([{ host: nodes.nodes[0].ip, port }], {
    redisOptions: { password: TEST_PASSWORD },
    natMap: nodes.natMap,
    clusterRetryStrategy: () => 50,
  });
  client.on("error", () => undefined);
  const promotion: number[] = [];
  const writes: number[] = [];
  const planned: number[] = [];
  try {
    for (let k = 0; k < KILLS; k++) {
      const { master, replica } = await stableShard(nodes, k);
      const ri = nodes.indexOf(replica.hostname);
      const mi = nodes.indexOf(master.hostname);
      const key = await keyOwnedBy(client, master.slots);
      let killedAt = 0;
      const resumed = firstWriteAfter(
        () => client.set(key, String(Date.now())),
        () => killedAt,
      );
      await sleep(200);
      await nodes.kill(mi);
      killedAt = Date.now();
      promotion.push(
        await waitFor(
          "promotion",
          async () =>
            (await cli(nodes.nodes[ri].ip, port, ["ROLE"])).startsWith("master")
              ? Date.now() - killedAt
              : undefined,
          LIMIT_MS,
          20,
        ),
      );
      writes.push(await resumed);
      await nodes.start(mi);
      await waitFor(
        "old master back as replica",
        async () => {
          const info = parseInfo(await cli(nodes.nodes[mi].ip, port, ["INFO", "replication"]));
          return info.role === "slave" && info.master_link_status === "up";
        },
        LIMIT_MS,
      );
      await waitFor(
        "cluster ok",
        async () => (await nodes.clusterInfo(0)).cluster_state === "ok",
        LIMIT_MS,
      );
      // Baseline: planned switchover of the same shard back to its original master.
      const t0 = Date.now();
      await cli(nodes.nodes[mi].ip, port, ["CLUSTER", "FAILOVER"]);
      planned.push(
        await waitFor(
          "planned failover",
          async () =>
            (await cli(nodes.nodes[mi].ip, port, ["ROLE"])).startsWith("master")
              ? Date.now() - t0
              : undefined,
          LIMIT_MS,
          20,
        ),
      );
      await waitFor(
        "cluster ok",
        async () => (await nodes.clusterInfo(ri)).cluster_state === "ok",
        LIMIT_MS,
      );
    }
  } finally {
    client.disconnect();
  }
  return { promotion, writes, planned };
}

/**
 * The k-th shard (rotating) once the whole cluster agrees: every node's view gives the same
 * master for it, the master answers ROLE master and its replica is synced to it.
 */
async function stableShard(nodes: ClusterNodes, k: number) {
  return waitFor(
    "a settled shard",
    async () => {
      if ((await nodes.clusterInfo(0)).cluster_state !== "ok") return undefined;
      const view = await nodes.view(0);
      const masters = view
        .filter((n) => n.flags.includes("master") && n.slots.length > 0)
        .sort((a, b) => a.slots[0].localeCompare(b.slots[0]));
      const master = masters[k % masters.length];
      const replica = view.find((n) => n.masterId === master?.id);
      if (!master || !replica) return undefined;
      const m = nodes.nodes[nodes.indexOf(master.hostname)];
      const r = nodes.nodes[nodes.indexOf(replica.hostname)];
      const mInfo = parseInfo(await cli(m.ip, m.port, ["INFO", "replication"]));
      const rInfo = parseInfo(await cli(r.ip, r.port, ["INFO", "replication"]));
      const synced =
        mInfo.role === "master" &&
        rInfo.role === "slave" &&
        rInfo.master_link_status === "up" &&
        rInfo.master_host === m.ip;
      return synced ? { master, replica } : undefined;
    },
    LIMIT_MS,
    100,
  );
}

/** A key served by the master owning `ranges` (CLUSTER NODES slot ranges like "0-5460"). */
async function keyOwnedBy(client: Cluster, ranges: string[]): Promise<string> {
  const spans = ranges.filter((r) => !r.startsWith("[")).map((r) => r.split("-").map(Number));
  for (let i = 0; i < 100000; i++) {
    const slot = Number(await client.call("CLUSTER", "KEYSLOT", `bench:${i}`));
    if (spans.some(([lo, hi = lo]) => slot >= lo && slot <= hi)) return `bench:${i}`;
  }
  throw new Error("no key found for the master");
}

/**
 * Waits until all sentinels name the same primary, it is the only master, and both replicas
 * replicate it with the link up; returns its index.
 */
async function stablePrimary(broker: BrokerSet, port: number): Promise<number> {
  const found = await waitFor(
    "a stable primary with two synced replicas",
    async () => {
      const views = await Promise.all([0, 1, 2].map((s) => broker.primaryIndex(s)));
      if (views.some((v) => v !== views[0] || v < 0)) return undefined;
      const infos = await Promise.all(
        broker.nodes.map(async (n) => parseInfo(await cli(n.ip, port, ["INFO", "replication"]))),
      );
      const ok = infos.every((info, i) =>
        i === views[0]
          ? info.role === "master" && info.connected_slaves === "2"
          : info.role === "slave" &&
            info.master_link_status === "up" &&
            info.master_host === broker.nodes[views[0]].name,
      );
      return ok ? { index: views[0] } : undefined;
    },
    LIMIT_MS,
    100,
  );
  return found.index;
}

async function benchSentinel(sb: Sandbox) {
  const hosts = [0, 1, 2].map((i) => `127.0.52.${10 + i}`);
  const port = await freePort(hosts);
  let sentinelPort = await freePort(hosts);
  while (sentinelPort === port) sentinelPort = await freePort(hosts);
  const broker = new BrokerSet(
    sb,
    52,
    port,
    sentinelPort,
    brokerConf({ maxmemoryBytes: 64 << 20 }),
    sentinelConf({ masterName: "broker", downAfterMs: DOWN_AFTER_MS, failoverTimeoutMs: 30000 }),
    3,
    true,
  );
  await broker.startAll();
  const client = new Redis({
    sentinels: broker.nodes.map((n) => ({ host: n.ip, port: sentinelPort })),
    name: "broker",
    password: TEST_PASSWORD,
    sentinelPassword: TEST_PASSWORD,
    natMap: broker.natMap,
    updateSentinels: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => 50,
    // After a switchover the old primary answers READONLY: ask the sentinels again, as redis-py does.
    reconnectOnError: (err) => err.message.startsWith("READONLY"),
  });
  client.on("error", () => undefined);
  const promotion: number[] = [];
  const writes: number[] = [];
  const planned: number[] = [];
  try {
    for (let k = 0; k < KILLS; k++) {
      const old = await stablePrimary(broker, port);
      const watcher = (old + 1) % 3;
      let killedAt = 0;
      const resumed = firstWriteAfter(
        () => client.lpush("celery", "x"),
        () => killedAt,
      );
      await sleep(200);
      await broker.kill(old);
      killedAt = Date.now();
      promotion.push(
        await waitFor(
          "sentinel promotion",
          async () =>
            (await broker.primaryIndex(watcher)) !== old ? Date.now() - killedAt : undefined,
          LIMIT_MS,
          20,
        ),
      );
      writes.push(await resumed);
      await broker.start(old);
      // Baseline: planned SENTINEL FAILOVER of the settled set.
      const before = await stablePrimary(broker, port);
      const t0 = Date.now();
      await cli(broker.nodes[watcher].ip, sentinelPort, ["SENTINEL", "FAILOVER", "broker"]);
      planned.push(
        await waitFor(
          "planned sentinel failover",
          async () => {
            const p = await broker.primaryIndex(watcher);
            if (p === before || p < 0) return undefined;
            const info = parseInfo(await cli(broker.nodes[p].ip, port, ["INFO", "replication"]));
            return info.role === "master" ? Date.now() - t0 : undefined;
          },
          LIMIT_MS,
          20,
        ),
      );
    }
  } finally {
    client.disconnect();
  }
  return { promotion, writes, planned };
}

async function main() {
  const sb = new Sandbox("redis-bench");
  for (const sig of ["SIGINT", "SIGTERM"] as const)
    process.once(sig, () => void sb.cleanup().then(() => process.exit(130)));
  try {
    const started = Date.now();
    const c = await benchCluster(sb);
    console.log(
      `Redis Cluster 3x(1+1), cluster-node-timeout ${NODE_TIMEOUT_MS} ms, ${KILLS} master SIGKILLs:`,
    );
    console.log(`  replica promoted after         ${stats(c.promotion)}`);
    console.log(`  client writes resumed after    ${stats(c.writes)}`);
    console.log(`  baseline CLUSTER FAILOVER      ${stats(c.planned)}`);
    console.log(
      `  ratio crash/planned (median)   ${(median(c.promotion) / median(c.planned)).toFixed(1)}x; ` +
        `promotion/node-timeout ${(median(c.promotion) / NODE_TIMEOUT_MS).toFixed(2)}`,
    );
    const s = await benchSentinel(sb);
    console.log(
      `Broker 1 primary + 2 replicas, 3 sentinels, down-after ${DOWN_AFTER_MS} ms, ${KILLS} primary SIGKILLs:`,
    );
    console.log(`  sentinel promoted after        ${stats(s.promotion)}`);
    console.log(`  client writes resumed after    ${stats(s.writes)}`);
    console.log(`  baseline SENTINEL FAILOVER     ${stats(s.planned)}`);
    console.log(
      `  ratio crash/planned (median)   ${(median(s.promotion) / median(s.planned)).toFixed(1)}x; ` +
        `promotion/down-after ${(median(s.promotion) / DOWN_AFTER_MS).toFixed(2)}`,
    );
    console.log(`total ${((Date.now() - started) / 1000).toFixed(0)} s`);
  } finally {
    await sb.cleanup();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
