/**
 * The Celery broker under Sentinel on real Redis 7: three servers and three sentinels started by
 * the pods' entrypoints; SIGKILL of the primary promotes a replica, a Sentinel-aware client
 * (ioredis, configured from the Celery settings we generate) reconnects and keeps queueing,
 * no WAIT-acknowledged task is lost, and the old primary returns as a replica.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { brokerConf, celeryBrokerSettings, sentinelConf } from "../../components/redis/content";
import {
  BrokerSet,
  Sandbox,
  TEST_PASSWORD,
  cli,
  freePort,
  killProcess,
  parseInfo,
  waitFor,
} from "../helpers/redis";

const DOWN_AFTER_MS = 1000;
// Sentinel flags the primary after down-after, then elects a leader (randomised delay) and
// promotes; the margin absorbs a loaded 2-core CI machine.
const FAILOVER_MARGIN_MS = 10000;
const SUBNET = 42;

describe("redis broker under sentinel", { timeout: 120000 }, () => {
  const sb = new Sandbox("redis-broker");
  let broker: BrokerSet;

  before(async () => {
    const hosts = [0, 1, 2].map((i) => `127.0.${SUBNET}.${10 + i}`);
    const port = await freePort(hosts);
    let sentinelPort = await freePort(hosts);
    while (sentinelPort === port) sentinelPort = await freePort(hosts);
    broker = new BrokerSet(
      sb,
      SUBNET,
      port,
      sentinelPort,
      brokerConf({ maxmemoryBytes: 64 * 1024 * 1024 }),
      sentinelConf({ masterName: "broker", downAfterMs: DOWN_AFTER_MS, failoverTimeoutMs: 5000 }),
      3,
      true,
    );
    await broker.startAll();
  });

  after(() => sb.cleanup());

  it("starts broker-0 as primary with two replicas announced by DNS name", async () => {
    for (let s = 0; s < 3; s++) assert.equal(await broker.primaryIndex(s), 0);
    const replicas = (await cli(broker.nodes[0].ip, broker.port, ["INFO", "replication"])).split(
      "\n",
    );
    const announced = replicas
      .filter((l) => /^slave\d:/.test(l))
      .map((l) => /ip=([^,]+)/.exec(l)![1]);
    assert.deepEqual(announced.sort(), [broker.nodes[1].name, broker.nodes[2].name]);
  });

  it("fails over on SIGKILL of the primary; the client reconnects and no acknowledged task is lost", async () => {
    const settings = celeryBrokerSettings({
      password: TEST_PASSWORD,
      sentinels: broker.nodes.map((n) => ({ host: n.ip, port: broker.sentinelPort })),
      masterName: "broker",
    });
    // The client is configured from exactly what Celery receives.
    const sentinels = settings.url.split(";").map((u) => new URL(u));
    const opts = settings.transportOptions as {
      master_name: string;
      sentinel_kwargs: { password: string };
    };
    const client = new Redis({
      sentinels: sentinels.map((u) => ({ host: u.hostname, port: Number(u.port) })),
      name: opts.master_name,
      password: decodeURIComponent(sentinels[0].password),
      sentinelPassword: opts.sentinel_kwargs.password,
      db: Number(sentinels[0].pathname.slice(1)),
      natMap: broker.natMap,
      updateSentinels: false,
      maxRetriesPerRequest: null,
      retryStrategy: () => 100,
    });
    try {
      const acknowledged: string[] = [];
      for (let k = 0; k < 100; k++) {
        await client.lpush("celery", `task-${k}`);
        if (Number(await client.call("WAIT", "1", "500")) >= 1) acknowledged.push(`task-${k}`);
      }
      assert.ok(
        acknowledged.length >= 50,
        `only ${acknowledged.length} of 100 tasks acknowledged by a replica`,
      );
      const killedAt = Date.now();
      await broker.kill(0);
      const promotedAfter = await waitFor(
        "sentinels to promote a replica",
        async () => {
          const p = await broker.primaryIndex(1);
          return p > 0 ? Date.now() - killedAt : undefined;
        },
        DOWN_AFTER_MS + FAILOVER_MARGIN_MS,
        50,
      );
      // The client reconnects through the sentinels on its own and the next task lands.
      await client.lpush("celery", "after-failover");
      console.log(
        `sentinel promoted a replica ${promotedAfter} ms after SIGKILL; client wrote again after ${Date.now() - killedAt} ms`,
      );
      const primary = broker.nodes[await broker.primaryIndex(1)];
      assert.equal(
        parseInfo(await cli(primary.ip, primary.port, ["INFO", "replication"])).role,
        "master",
      );
      const queued = (await cli(primary.ip, primary.port, ["LRANGE", "celery", "0", "-1"])).split(
        "\n",
      );
      for (const t of acknowledged) assert.ok(queued.includes(t), `lost acknowledged ${t}`);
      assert.ok(queued.includes("after-failover"));
    } finally {
      client.disconnect();
    }
  });

  it("brings the old primary back as a replica of the new one", async () => {
    const primary = await broker.primaryIndex(1);
    await broker.start(0);
    await waitFor(
      "broker-0 to replicate the new primary",
      async () => {
        const info = parseInfo(await cli(broker.nodes[0].ip, broker.port, ["INFO", "replication"]));
        return (
          info.role === "slave" &&
          info.master_host === broker.nodes[primary].name &&
          info.master_link_status === "up"
        );
      },
      20000,
    );
    assert.equal(
      await cli(broker.nodes[0].ip, broker.port, ["LINDEX", "celery", "0"]),
      "after-failover",
    );
  });

  it("a restarted sentinel monitors the current primary, not the initial one", async () => {
    const primary = await broker.primaryIndex(1);
    assert.notEqual(primary, 0);
    await killProcess(broker.sentinels[0]!);
    await broker.startSentinel(0);
    assert.equal(await broker.primaryIndex(0), primary);
    await waitFor(
      "restarted sentinel to see both replicas and the other sentinels",
      async () => {
        const m = await broker.sentinelMaster(0);
        return m["num-slaves"] === "2" && m["num-other-sentinels"] === "2";
      },
      20000,
      200,
    );
  });
});
