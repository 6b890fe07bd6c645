/**
 * Redis backups through a real S3 server (versitygw over TLS) with the real rclone: backup.sh
 * takes the LASTSAVE-confirmed RDBs and uploads them, the local copy and the data are wiped, and
 * restore.sh brings every key back from the object store alone. object-store.sh's retention
 * deletes exactly the backups past RETENTION_DAYS beyond the newest KEEP_MIN complete ones (and
 * stale incomplete uploads), a corrupted object fails the restore, a failed upload the backup.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { promisify } from "node:util";
import { Cluster } from "ioredis";
import { brokerConf, clusterNodeConf, sentinelConf } from "../../components/redis/content";
import { BrokerSet, ClusterNodes, Sandbox, TEST_PASSWORD, cli, freePort } from "../helpers/redis";
import { S3Server, startS3 } from "../helpers/s3";

const execFileP = promisify(execFile);
const DAY_MS = 86400 * 1000;

/** `redis-<UTC stamp>` of a moment `days` ago (what backup.sh names a backup taken then). */
function stampName(days: number): string {
  const t = new Date(Date.now() - days * DAY_MS);
  return `redis-${t
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z")}`;
}

describe("redis backups in an S3 object store (rclone, versitygw)", { timeout: 300000 }, () => {
  const sb = new Sandbox("redis-s3");
  let s3: S3Server;
  let source: ClusterNodes;
  let broker: BrokerSet;
  const expected = new Map<string, string>();

  /** object-store.sh's settings for a prefix in the test bucket, as the pod's env sets them. */
  const storeEnv = (prefix: string, extra: Record<string, string> = {}) => ({
    S3_ENDPOINT: s3.host,
    S3_PORT: String(s3.port),
    S3_BUCKET: s3.bucket,
    S3_REGION: s3.region,
    S3_URI_STYLE: "path",
    S3_PREFIX: prefix,
    S3_CA_FILE: s3.caFile,
    RCLONE_CONFIG_STORE_ACCESS_KEY_ID: s3.accessKey,
    RCLONE_CONFIG_STORE_SECRET_ACCESS_KEY: s3.secretKey,
    ...extra,
  });

  /** Every object key under a prefix, straight from the S3 API (rclone, recursive). */
  const objects = async (prefix: string): Promise<string[]> => {
    const { stdout } = await execFileP(
      "rclone",
      ["lsf", "-R", "--files-only", "--ca-cert", s3.caFile, `store:${s3.bucket}${prefix}`],
      { env: rcloneEnv(), timeout: 60_000 },
    );
    return stdout.trim().split("\n").filter(Boolean).sort();
  };
  const rcloneEnv = () => {
    const env: Record<string, string | undefined> = {
      ...process.env,
      RCLONE_CONFIG: "/dev/null",
      RCLONE_CONFIG_STORE_TYPE: "s3",
      RCLONE_CONFIG_STORE_PROVIDER: "Other",
      RCLONE_CONFIG_STORE_ENDPOINT: s3.url,
      RCLONE_CONFIG_STORE_REGION: s3.region,
      RCLONE_CONFIG_STORE_FORCE_PATH_STYLE: "true",
      RCLONE_CONFIG_STORE_ACCESS_KEY_ID: s3.accessKey,
      RCLONE_CONFIG_STORE_SECRET_ACCESS_KEY: s3.secretKey,
    };
    delete env.AWS_CA_BUNDLE;
    return env;
  };
  const rclone = (args: string[]) =>
    execFileP("rclone", ["--ca-cert", s3.caFile, ...args], { env: rcloneEnv(), timeout: 60_000 });

  const clusterClient = () =>
    new Cluster([{ host: source.nodes[0].ip, port: source.port }], {
      redisOptions: { password: TEST_PASSWORD },
      natMap: source.natMap,
    });

  before(async () => {
    s3 = await startS3({ bucket: "redis-backups" });
    const conf = clusterNodeConf({ maxmemoryBytes: 64 * 1024 * 1024, nodeTimeoutMs: 2000 });
    source = new ClusterNodes(
      sb,
      48,
      await freePort(["127.0.48.10", "127.0.48.11", "127.0.48.12"]),
      conf,
    );
    source.define(3);
    broker = new BrokerSet(
      sb,
      49,
      await freePort(["127.0.49.10"]),
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
    const client = clusterClient();
    try {
      const writes: Promise<unknown>[] = [];
      for (let k = 0; k < 500; k++) {
        expected.set(`s3:${k}`, `value-${k}`);
        writes.push(client.set(`s3:${k}`, `value-${k}`));
      }
      for (let k = 0; k < 20; k++) {
        expected.set(`s3ttl:${k}`, `expiring-${k}`);
        writes.push(client.set(`s3ttl:${k}`, `expiring-${k}`, "EX", 3600));
      }
      await Promise.all(writes);
    } finally {
      client.disconnect();
    }
    const b0 = broker.nodes[0];
    for (let k = 0; k < 50; k++) await cli(b0.ip, b0.port, ["LPUSH", "celery", `task-${k}`]);
  });

  after(async () => {
    await sb.cleanup();
    await s3?.stop();
  });

  const backupEnv = (backupDir: string, extra: Record<string, string> = {}) => ({
    REDIS_CLUSTER_ENTRY: `${source.nodes[0].name}:${source.port}`,
    REDIS_PASSWORD_FILE: sb.passwordFile,
    BROKER_ADDR: `${broker.nodes[0].name}:${broker.port}`,
    BROKER_PASSWORD_FILE: sb.passwordFile,
    BACKUP_DIR: backupDir,
    RETENTION_DAYS: "30",
    KEEP_MIN: "2",
    ...storeEnv("/stack/redis"),
    ...extra,
  });
  let backupName = "";

  it("round trip: backup uploads confirmed RDBs; after data and local copy are gone, restore brings every key back", async () => {
    const staging = sb.path("staging");
    const lastsave = () => Promise.all(source.nodes.map((n) => cli(n.ip, n.port, ["LASTSAVE"])));
    const before = await lastsave();
    const r = await sb.run("backup.sh", backupEnv(staging));
    assert.equal(r.code, 0, r.output);
    (await lastsave()).forEach((t, i) =>
      assert.ok(Number(t) > Number(before[i]), `LASTSAVE advanced on master ${i}`),
    );
    const list = await sb.run("object-store.sh", storeEnv("/stack/redis"), ["list"]);
    assert.equal(list.code, 0, list.output);
    backupName = list.output.trim().split("\n").pop()!;
    assert.match(backupName, /^redis-\d{8}T\d{6}Z$/);
    const stored = await objects("/stack/redis");
    assert.equal(stored.filter((k) => k.endsWith(".rdb")).length, 4, stored.join()); // 3 masters + broker
    assert.ok(stored.includes(`${backupName}/SHA256SUMS`), stored.join());
    assert.ok(stored.includes(`${backupName}/cluster/nodes.json`), stored.join());

    // Disaster: every key gone, the pod's scratch volume (the local copy) gone.
    await Promise.all(source.nodes.map((n) => cli(n.ip, n.port, ["FLUSHALL"])));
    const b0 = broker.nodes[0];
    await cli(b0.ip, b0.port, ["FLUSHALL"]);
    rmSync(staging, { recursive: true, force: true });
    const counts = await Promise.all(source.nodes.map((n) => cli(n.ip, n.port, ["DBSIZE"])));
    assert.deepEqual(counts, ["0", "0", "0"]);

    const restoreDir = sb.path("restore-scratch");
    const rr = await sb.run(
      "restore.sh",
      {
        ...backupEnv(restoreDir),
        RESTORE_WORK_DIR: sb.dir,
        RESTORE_TMP_PORT: String(await freePort(["127.0.0.1"])),
      },
      ["latest", "all"],
    );
    assert.equal(rr.code, 0, rr.output);
    assert.match(
      rr.output,
      new RegExp(`downloading store:redis-backups/stack/redis/${backupName}`),
    );
    const client = clusterClient();
    try {
      const total = (
        await Promise.all(source.nodes.map((n) => cli(n.ip, n.port, ["DBSIZE"])))
      ).reduce((a, s) => a + Number(s), 0);
      assert.equal(total, expected.size);
      for (const [k, v] of expected) assert.equal(await client.get(k), v, k);
      const ttl = await client.ttl("s3ttl:3");
      assert.ok(ttl > 3000 && ttl <= 3600, `TTL kept (${ttl})`);
    } finally {
      client.disconnect();
    }
    assert.equal(await cli(b0.ip, b0.port, ["LLEN", "celery"]), "50");
  });

  it("--list shows the complete backups in the store", async () => {
    const r = await sb.run("restore.sh", backupEnv(sb.path("list-scratch")), ["--list"]);
    assert.equal(r.code, 0, r.output);
    assert.equal(
      r.output
        .trim()
        .split("\n")
        .filter((l) => /^redis-/.test(l))
        .pop(),
      backupName,
    );
  });

  it("retention deletes exactly the backups past retentionDays beyond the newest keepMin, and stale partial uploads", async () => {
    const prefix = "/retention/redis";
    const local = sb.path("retention-local");
    const ages = { c45: 45, c40: 40, c35: 35, c31: 31, c10: 10, p50: 50, p5: 5 };
    const names = Object.fromEntries(
      Object.entries(ages).map(([k, d]) => [k, stampName(d)]),
    ) as Record<keyof typeof ages, string>;
    for (const [key, name] of Object.entries(names)) {
      const dir = `${local}/${name}`;
      mkdirSync(`${dir}/cluster`, { recursive: true });
      writeFileSync(`${dir}/cluster/node.rdb`, `rdb of ${key}`);
      writeFileSync(`${dir}/SHA256SUMS`, "checksums\n");
      const up = await sb.run("object-store.sh", storeEnv(prefix), ["upload", dir]);
      assert.equal(up.code, 0, up.output);
      // p*: an upload cut short before its SHA256SUMS (the completion marker) was written.
      if (key.startsWith("p"))
        await rclone(["deletefile", `store:${s3.bucket}${prefix}/${name}/SHA256SUMS`]);
    }
    const listed = await sb.run("object-store.sh", storeEnv(prefix), ["list"]);
    assert.deepEqual(
      listed.output
        .trim()
        .split("\n")
        .filter((l) => /^redis-/.test(l)),
      [names.c45, names.c40, names.c35, names.c31, names.c10],
      "list shows complete backups only, oldest first",
    );

    const r = await sb.run(
      "object-store.sh",
      storeEnv(prefix, { RETENTION_DAYS: "30", KEEP_MIN: "3" }),
      ["prune"],
    );
    assert.equal(r.code, 0, r.output);
    const left = [...new Set((await objects(prefix)).map((k) => k.split("/")[0]))].sort();
    // Kept: the newest 3 complete (10, 31, 35 days: two of them past 30 days) and the recent
    // partial upload; deleted: complete 40 and 45 days, partial 50 days.
    assert.deepEqual(left, [names.c35, names.c31, names.c10, names.p5].sort());

    // With KEEP_MIN 1 the 31- and 35-day-old ones go too; the newest is never deleted.
    const r2 = await sb.run(
      "object-store.sh",
      storeEnv(prefix, { RETENTION_DAYS: "30", KEEP_MIN: "1" }),
      ["prune"],
    );
    assert.equal(r2.code, 0, r2.output);
    const left2 = [...new Set((await objects(prefix)).map((k) => k.split("/")[0]))].sort();
    assert.deepEqual(left2, [names.c10, names.p5].sort());
  });

  it("a corrupted object in the store fails the restore before anything is written", async () => {
    const corrupt = sb.path("corrupt.rdb");
    writeFileSync(corrupt, "not the RDB that was checksummed");
    const stored = await objects("/stack/redis");
    const rdb = stored.find((k) => k.startsWith(`${backupName}/cluster/`) && k.endsWith(".rdb"))!;
    await rclone(["copyto", corrupt, `store:${s3.bucket}/stack/redis/${rdb}`]);
    const r = await sb.run(
      "restore.sh",
      {
        ...backupEnv(sb.path("corrupt-scratch")),
        RESTORE_WORK_DIR: sb.dir,
        RESTORE_TMP_PORT: String(await freePort(["127.0.0.1"])),
      },
      [backupName, "cluster"],
    );
    assert.notEqual(r.code, 0, r.output);
    assert.match(r.output, /checksums in .* do not match/);
  });

  it("a backup whose upload fails exits non-zero", async () => {
    const r = await sb.run(
      "backup.sh",
      backupEnv(sb.path("staging-fail"), { S3_BUCKET: "no-such-bucket" }),
    );
    assert.notEqual(r.code, 0, r.output);
    assert.match(r.output, /upload of redis-\d{8}T\d{6}Z failed/);
  });
});
