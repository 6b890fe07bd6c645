/**
 * Backup and restore on real Redis 7: backup.sh takes one confirmed RDB per master, the topology
 * and the broker RDB, atomically, and prunes by age without going below the newest KEEP_MIN;
 * restore.sh puts every key (values, types, TTLs) back, into a cluster with another layout.
 * A failing backup exits non-zero and leaves nothing behind.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, readdirSync, utimesSync } from "node:fs";
import { Cluster } from "ioredis";
import { brokerConf, clusterNodeConf, sentinelConf } from "../../components/redis/content";
import { BrokerSet, ClusterNodes, Sandbox, TEST_PASSWORD, cli, freePort } from "../helpers/redis";

const DAY_S = 86400;

/** Creates an empty backup dir `redis-<stamp>` whose stamp and mtime are `daysAgo` old. */
function fakeBackup(dir: string, daysAgo: number): string {
  const t = new Date(Date.now() - daysAgo * DAY_S * 1000);
  const name = `redis-${t
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z")}`;
  mkdirSync(`${dir}/${name}`, { recursive: true });
  utimesSync(`${dir}/${name}`, t, t);
  return name;
}

function listBackups(dir: string): string[] {
  return readdirSync(dir).sort();
}

describe("redis backup and restore", { timeout: 180000 }, () => {
  const sb = new Sandbox("redis-backup");
  let source: ClusterNodes;
  let target: ClusterNodes;
  let broker: BrokerSet;
  const backupDir = sb.path("backups");
  const expected = new Map<string, unknown>();
  const ttlKeys: string[] = [];

  const clusterClient = (nodes: ClusterNodes) =>
    new Cluster([{ host: nodes.nodes[0].ip, port: nodes.port }], {
      redisOptions: { password: TEST_PASSWORD },
      natMap: nodes.natMap,
    });

  const backupEnv = (extra: Record<string, string> = {}) => ({
    REDIS_CLUSTER_ENTRY: `${source.nodes[0].name}:${source.port}`,
    REDIS_PASSWORD_FILE: sb.passwordFile,
    BROKER_ADDR: `${broker.nodes[0].name}:${broker.port}`,
    BROKER_PASSWORD_FILE: sb.passwordFile,
    BACKUP_DIR: backupDir,
    RETENTION_DAYS: "30",
    KEEP_MIN: "2",
    ...extra,
  });

  before(async () => {
    const conf = clusterNodeConf({ maxmemoryBytes: 64 * 1024 * 1024, nodeTimeoutMs: 2000 });
    source = new ClusterNodes(
      sb,
      43,
      await freePort(["127.0.43.10", "127.0.43.11", "127.0.43.12"]),
      conf,
    );
    source.define(3);
    broker = new BrokerSet(
      sb,
      44,
      await freePort(["127.0.44.10"]),
      0,
      brokerConf({ maxmemoryBytes: 64 * 1024 * 1024 }),
      sentinelConf({ masterName: "broker" }),
      1,
      false,
    );
    await Promise.all([0, 1, 2].map((i) => source.start(i)));
    await broker.startAll();
    const formed = await source.form(3, 0);
    assert.equal(formed.code, 0, formed.output);

    const client = clusterClient(source);
    try {
      const writes: Promise<unknown>[] = [];
      for (let k = 0; k < 300; k++) {
        expected.set(`str:${k}`, `value-${k}`);
        writes.push(client.set(`str:${k}`, `value-${k}`));
      }
      for (let k = 0; k < 40; k++) {
        const h = { a: `${k}`, b: `x${k}` };
        expected.set(`hash:${k}`, h);
        writes.push(client.hset(`hash:${k}`, h));
        const l = [`l${k}-0`, `l${k}-1`, `l${k}-2`];
        expected.set(`list:${k}`, l);
        writes.push(client.rpush(`list:${k}`, ...l));
        expected.set(`zset:${k}`, ["m1", "1", "m2", String(k + 2)]);
        writes.push(client.zadd(`zset:${k}`, 1, "m1", k + 2, "m2"));
      }
      for (let k = 0; k < 20; k++) {
        expected.set(`ttl:${k}`, `expiring-${k}`);
        ttlKeys.push(`ttl:${k}`);
        writes.push(client.set(`ttl:${k}`, `expiring-${k}`, "EX", 3600));
      }
      await Promise.all(writes);
    } finally {
      client.disconnect();
    }
    const b0 = broker.nodes[0];
    for (let k = 0; k < 100; k++) await cli(b0.ip, b0.port, ["LPUSH", "celery", `task-${k}`]);
    await cli(b0.ip, b0.port, ["HSET", "unacked", "tag1", "payload1"]);
  });

  after(() => sb.cleanup());

  let backupName = "";

  it("writes one confirmed RDB per master, the topology and the broker RDB, and prunes old backups", async () => {
    const old = [fakeBackup(backupDir, 45), fakeBackup(backupDir, 40), fakeBackup(backupDir, 35)];
    const recent = fakeBackup(backupDir, 10);
    const lastsaveBefore = await Promise.all(
      source.nodes.map((n) => cli(n.ip, n.port, ["LASTSAVE"])),
    );
    const r = await sb.run("backup.sh", backupEnv());
    assert.equal(r.code, 0, r.output);
    const lastsaveAfter = await Promise.all(
      source.nodes.map((n) => cli(n.ip, n.port, ["LASTSAVE"])),
    );
    source.nodes.forEach((n, i) =>
      assert.ok(
        Number(lastsaveAfter[i]) > Number(lastsaveBefore[i]),
        `LASTSAVE advanced on ${n.name}`,
      ),
    );

    const names = listBackups(backupDir);
    backupName = names.filter((n) => !old.includes(n) && n !== recent)[0];
    assert.ok(backupName, `new backup among ${names}`);
    // Older than 30 days pruned; the 10-day-old one kept; no temp dir left.
    assert.deepEqual(names, [recent, backupName].sort());
    const dir = `${backupDir}/${backupName}`;
    const rdbs = readdirSync(`${dir}/cluster`).filter((f) => f.endsWith(".rdb"));
    assert.equal(rdbs.length, 3);
    const masterIds = (await source.view(0))
      .filter((n) => n.flags.includes("master"))
      .map((n) => n.id);
    for (const id of masterIds)
      assert.ok(
        rdbs.some((f) => f.includes(id)),
        `RDB for master ${id}`,
      );
    assert.ok(existsSync(`${dir}/cluster/nodes.json`));
    for (const id of masterIds)
      assert.match(readFileSync(`${dir}/cluster-nodes.txt`, "utf8"), new RegExp(id));
    assert.ok(existsSync(`${dir}/broker.rdb`));
    assert.equal(readFileSync(`${dir}/SHA256SUMS`, "utf8").trim().split("\n").length, 4);
  });

  it("never prunes below the newest KEEP_MIN backups", async () => {
    const dir = sb.path("backups-keep");
    const old = [43, 42, 41, 40].map((d) => fakeBackup(dir, d));
    const r = await sb.run("backup.sh", backupEnv({ BACKUP_DIR: dir, KEEP_MIN: "3" }));
    assert.equal(r.code, 0, r.output);
    const names = listBackups(dir);
    assert.equal(names.length, 3);
    // The new one plus the two newest old ones (40 and 41 days).
    assert.ok(names.includes(old[3]) && names.includes(old[2]), names.join());
  });

  it("restores every key into a fresh cluster with another layout, and the broker queue", async () => {
    target = new ClusterNodes(
      sb,
      45,
      await freePort(["127.0.45.10", "127.0.45.11", "127.0.45.12", "127.0.45.13"]),
      clusterNodeConf({ maxmemoryBytes: 64 * 1024 * 1024, nodeTimeoutMs: 2000 }),
      "restored",
    );
    target.define(4);
    await Promise.all([0, 1, 2, 3].map((i) => target.start(i)));
    const formed = await target.form(4, 0);
    assert.equal(formed.code, 0, formed.output);
    const b0 = broker.nodes[0];
    await cli(b0.ip, b0.port, ["FLUSHALL"]);

    const restoreEnv = {
      REDIS_CLUSTER_ENTRY: `${target.nodes[0].name}:${target.port}`,
      REDIS_PASSWORD_FILE: sb.passwordFile,
      BROKER_ADDR: `${b0.name}:${b0.port}`,
      BROKER_PASSWORD_FILE: sb.passwordFile,
      RESTORE_WORK_DIR: sb.dir,
      RESTORE_TMP_PORT: String(await freePort(["127.0.0.1"])),
    };
    // `latest` is what the operator's restore Job uses by default: the newest backup by name.
    const r = await sb.run("restore.sh", { ...restoreEnv, BACKUP_DIR: backupDir }, [
      "latest",
      "all",
    ]);
    assert.match(r.output, new RegExp(`from ${backupDir}/${backupName}`));
    assert.equal(r.code, 0, r.output);

    const client = clusterClient(target);
    try {
      assert.equal(
        (await Promise.all(target.nodes.map((n) => cli(n.ip, n.port, ["DBSIZE"])))).reduce(
          (a, s) => a + Number(s),
          0,
        ),
        expected.size,
      );
      for (const [key, value] of expected) {
        if (key.startsWith("hash:")) assert.deepEqual(await client.hgetall(key), value, key);
        else if (key.startsWith("list:"))
          assert.deepEqual(await client.lrange(key, 0, -1), value, key);
        else if (key.startsWith("zset:"))
          assert.deepEqual(await client.zrange(key, 0, -1, "WITHSCORES"), value, key);
        else assert.equal(await client.get(key), value, key);
      }
      for (const key of ttlKeys) {
        const ttl = await client.ttl(key);
        assert.ok(ttl > 3000 && ttl <= 3600, `${key} keeps its TTL (${ttl})`);
      }
    } finally {
      client.disconnect();
    }
    assert.equal(await cli(b0.ip, b0.port, ["LLEN", "celery"]), "100");
    assert.equal(await cli(b0.ip, b0.port, ["HGET", "unacked", "tag1"]), "payload1");
  });

  it("fails without leaving a partial backup when a master is down", async () => {
    const before = listBackups(backupDir);
    await source.kill(1);
    const r = await sb.run("backup.sh", backupEnv({ SAVE_TIMEOUT_S: "10" }));
    assert.notEqual(r.code, 0, r.output);
    assert.deepEqual(listBackups(backupDir), before);
  });
});
