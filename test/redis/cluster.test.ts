/**
 * Redis Cluster on real Redis 7: formation by the Job's script from the generated redis.conf,
 * idempotence, key spread, scale-up, failover without losing WAIT-acknowledged writes, and
 * rejoin after nodes come back with new addresses.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Cluster, Redis } from "ioredis";
import { clusterNodeConf } from "../../components/redis/content";
import { ClusterNodes, Sandbox, TEST_PASSWORD, cli, freePort, waitFor } from "../helpers/redis";

const NODE_TIMEOUT_MS = 1000;
// Promotion needs node-timeout to flag the master, then the replica's election delay
// (500 ms + up to 500 ms random + rank); the margin absorbs a loaded 2-core CI machine.
const FAILOVER_MARGIN_MS = 6000;
const SUBNET = 41;

describe("redis cluster", { timeout: 180000 }, () => {
  const sb = new Sandbox("redis-cluster");
  let nodes: ClusterNodes;
  const written = new Map<string, string>();

  before(async () => {
    const port = await freePort(Array.from({ length: 8 }, (_, i) => `127.0.${SUBNET}.${10 + i}`));
    nodes = new ClusterNodes(
      sb,
      SUBNET,
      port,
      clusterNodeConf({ maxmemoryBytes: 64 * 1024 * 1024, nodeTimeoutMs: NODE_TIMEOUT_MS }),
    );
    nodes.define(6);
    await Promise.all(nodes.nodes.map((_, i) => nodes.start(i)));
  });

  after(() => sb.cleanup());

  it("forms 3 masters + 1 replica each with the Job's script", async () => {
    const r = await nodes.form(3, 1);
    assert.equal(r.code, 0, r.output);
    for (let i = 0; i < 6; i++) {
      const info = await nodes.clusterInfo(i);
      assert.equal(info.cluster_state, "ok", `node ${i}`);
      assert.equal(info.cluster_known_nodes, "6");
    }
    const view = await nodes.view(0);
    const masters = view.filter((n) => n.flags.includes("master"));
    const replicas = view.filter((n) => n.flags.includes("slave"));
    assert.equal(masters.length, 3);
    assert.equal(replicas.length, 3);
    for (const m of masters) {
      assert.equal(replicas.filter((r) => r.masterId === m.id).length, 1, `replicas of ${m.id}`);
    }
    // Identities are DNS names: every node announces its pod hostname.
    assert.deepEqual(view.map((n) => n.hostname).sort(), nodes.nodes.map((n) => n.name).sort());
  });

  it("does nothing when run again on a formed cluster", async () => {
    const before = (await nodes.view(0))
      .map((n) => `${n.id} ${n.flags.join()} ${n.slots.join()}`)
      .sort();
    const r = await nodes.form(3, 1);
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, /nothing to do/);
    const afterRun = (await nodes.view(0))
      .map((n) => `${n.id} ${n.flags.join()} ${n.slots.join()}`)
      .sort();
    assert.deepEqual(afterRun, before);
  });

  it("spreads keys over every master and redirects clients by DNS name", async () => {
    const client = new Cluster([{ host: nodes.nodes[0].ip, port: nodes.port }], {
      redisOptions: { password: TEST_PASSWORD },
      natMap: nodes.natMap,
    });
    try {
      for (let k = 0; k < 600; k++) written.set(`spread:${k}`, `v${k}`);
      await Promise.all([...written].map(([k, v]) => client.set(k, v)));
      const masters = (await nodes.view(0)).filter((n) => n.flags.includes("master"));
      let total = 0;
      for (const m of masters) {
        const size = Number(await cli(m.ip, m.port, ["DBSIZE"]));
        assert.ok(size > 100, `master ${m.hostname} holds ${size} of 600 keys`);
        total += size;
      }
      assert.equal(total, 600);
      // Clients are told DNS names, not IPs.
      const slots = (await client.cluster("SLOTS")) as unknown as [
        number,
        number,
        [string, number],
      ][];
      for (const [, , [endpoint]] of slots)
        assert.match(endpoint, /^redis-\d\.redis-headless\.test$/);
    } finally {
      client.disconnect();
    }
  });

  it("promotes the replica of a SIGKILLed master in time and keeps every WAIT-acknowledged write", async () => {
    const view = await nodes.view(0);
    const master = view.find((n) => n.flags.includes("master") && n.slots.length > 0)!;
    const replica = view.find((n) => n.masterId === master.id)!;
    const mi = nodes.indexOf(master.hostname);
    const ri = nodes.indexOf(replica.hostname);
    const conn = new Redis({
      host: master.ip,
      port: master.port,
      password: TEST_PASSWORD,
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      lazyConnect: true,
      retryStrategy: () => null,
    });
    const acknowledged: string[] = [];
    let killedAt = 0;
    try {
      await conn.connect();
      // Keys owned by this master (hash tag chosen so the slot is in its range).
      const tag = await findTagOwnedBy(conn);
      for (let k = 0; ; k++) {
        const key = `{${tag}}:acked:${k}`;
        if (k === 150) {
          killedAt = Date.now();
          void nodes.kill(mi);
        }
        try {
          await conn.set(key, String(k));
          const replicated = Number(await conn.call("WAIT", "1", "200"));
          if (replicated >= 1) acknowledged.push(key);
        } catch {
          break;
        }
      }
    } finally {
      conn.disconnect();
    }
    assert.ok(
      acknowledged.length >= 100,
      `only ${acknowledged.length} acknowledged writes before the kill`,
    );
    const promotedAfter = await waitFor(
      "replica promotion",
      async () => {
        const role = await cli(nodes.nodes[ri].ip, nodes.port, ["ROLE"]);
        return role.startsWith("master") ? Date.now() - killedAt : undefined;
      },
      NODE_TIMEOUT_MS + FAILOVER_MARGIN_MS,
      50,
    );
    console.log(
      `replica promoted ${promotedAfter} ms after SIGKILL (node timeout ${NODE_TIMEOUT_MS} ms)`,
    );
    await waitFor(
      "cluster_state ok after failover",
      async () => (await nodes.clusterInfo(ri)).cluster_state === "ok",
      10000,
    );
    const promoted = nodes.nodes[ri];
    for (const key of acknowledged) {
      assert.notEqual(
        await cli(promoted.ip, promoted.port, ["GET", key]),
        "",
        `lost acknowledged ${key}`,
      );
    }
    // The old master comes back as a replica of the promoted one.
    await nodes.start(mi);
    await waitFor(
      "old master to rejoin as replica",
      async () =>
        (await nodes.view(ri)).find((n) => n.hostname === master.hostname)?.masterId === replica.id,
      15000,
    );
  });

  it("rejoins when every node restarts with a new address under the same DNS name", async () => {
    const idsBefore = (await nodes.view(0)).map((n) => `${n.hostname} ${n.id}`).sort();
    await Promise.all(nodes.nodes.map((_, i) => nodes.kill(i)));
    nodes.nodes.forEach((_, i) => nodes.readdress(i, `127.0.${SUBNET}.${110 + i}`));
    await Promise.all(nodes.nodes.map((_, i) => nodes.start(i)));
    for (let i = 0; i < nodes.nodes.length; i++) {
      await waitFor(
        `node ${i} cluster_state ok`,
        async () => (await nodes.clusterInfo(i)).cluster_state === "ok",
        20000,
      );
    }
    const view = await nodes.view(0);
    assert.deepEqual(
      view.map((n) => `${n.hostname} ${n.id}`).sort(),
      idsBefore,
      "same node identities",
    );
    for (const n of view) {
      assert.equal(n.ip, sb.lookup(n.hostname), `${n.hostname} seen at its new address`);
      assert.ok(
        !n.flags.includes("fail") && !n.flags.includes("noaddr"),
        `${n.hostname}: ${n.flags}`,
      );
    }
    const client = new Cluster([{ host: nodes.nodes[0].ip, port: nodes.port }], {
      redisOptions: { password: TEST_PASSWORD },
      natMap: nodes.natMap,
    });
    try {
      for (const [k, v] of written) assert.equal(await client.get(k), v);
    } finally {
      client.disconnect();
    }
  });

  it("adds a master and a replica and rebalances when masters grows to 4", async () => {
    nodes.define(8);
    await Promise.all([nodes.start(6), nodes.start(7)]);
    const r = await nodes.form(4, 1);
    assert.equal(r.code, 0, r.output);
    const view = await nodes.view(0);
    const masters = view.filter((n) => n.flags.includes("master"));
    assert.equal(masters.length, 4);
    for (const m of masters) {
      assert.ok(m.slots.length > 0, `${m.hostname} owns slots`);
      assert.equal(
        view.filter((n) => n.masterId === m.id).length,
        1,
        `${m.hostname} has one replica`,
      );
    }
    const again = await nodes.form(4, 1);
    assert.equal(again.code, 0, again.output);
    assert.match(again.output, /nothing to do/);
    const client = new Cluster([{ host: nodes.nodes[0].ip, port: nodes.port }], {
      redisOptions: { password: TEST_PASSWORD },
      natMap: nodes.natMap,
    });
    try {
      for (const [k, v] of written) assert.equal(await client.get(k), v);
    } finally {
      client.disconnect();
    }
  });
});

describe("redis cluster formation safety", { timeout: 60000 }, () => {
  const sb = new Sandbox("redis-partial");
  after(() => sb.cleanup());

  it("refuses to touch a partially formed cluster", async () => {
    const port = await freePort(["127.0.47.10", "127.0.47.11", "127.0.47.12"]);
    const nodes = new ClusterNodes(
      sb,
      47,
      port,
      clusterNodeConf({ maxmemoryBytes: 64 * 1024 * 1024, nodeTimeoutMs: NODE_TIMEOUT_MS }),
      "partial",
    );
    nodes.define(3);
    await Promise.all([0, 1, 2].map((i) => nodes.start(i)));
    // As if a create died after assigning some slots: one node owns slots, none sees all 16384.
    await cli(nodes.nodes[0].ip, port, ["CLUSTER", "ADDSLOTSRANGE", "0", "5460"]);
    const r = await nodes.form(3, 0);
    assert.notEqual(r.code, 0);
    assert.match(r.output, /partially formed cluster/);
    const info = await nodes.clusterInfo(1);
    assert.equal(info.cluster_known_nodes, "1", "no node was joined");
    assert.equal(info.cluster_slots_assigned, "0");
  });
});

/** A hash tag whose slot this master serves. */
async function findTagOwnedBy(conn: Redis): Promise<string> {
  const myId = String(await conn.call("CLUSTER", "MYID"));
  const slots = (await conn.call("CLUSTER", "SLOTS")) as [
    number,
    number,
    [string, number, string],
  ][];
  const mine = slots.filter(([, , m]) => m[2] === myId);
  for (let t = 0; t < 10000; t++) {
    const slot = Number(await conn.call("CLUSTER", "KEYSLOT", `t${t}`));
    if (mine.some(([lo, hi]) => slot >= lo && slot <= hi)) return `t${t}`;
  }
  throw new Error("no tag found");
}
