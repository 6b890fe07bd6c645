// Benchmark: our backup/restore (components/postgres/scripts) against the manual's
// `pg_dump | gzip` + `gunzip; psql <` on the same pgbench database (failover: scripts/bench/pg-failover).
// Run as root on a machine with PostgreSQL 15 (Debian postgresql-15): scripts/bench/pg-backup
//   BENCH_SCALE   pgbench scale factor (default 50: 5M accounts rows)
//   BENCH_JOBS    parallel workers for our backup/restore (default 2)
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { scriptPath } from "../../components/postgres/content";
import { PG_BIN, PG_PATH, PgCluster, pgTempDir, runAsPostgres } from "../../test/helpers/postgres";

const scale = Number(process.env.BENCH_SCALE ?? 50);
const jobs = process.env.BENCH_JOBS ?? "2";

function pgUid(): { uid: number; gid: number } {
  const line = fs
    .readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((l) => l.startsWith("postgres:"))!
    .split(":");
  return { uid: Number(line[2]), gid: Number(line[3]) };
}

/** Runs a shell command line as postgres; resolves with elapsed seconds, rejects on failure. */
function timed(cmd: string, env: Record<string, string>): Promise<number> {
  const start = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    const p = spawn("bash", ["-o", "pipefail", "-c", cmd], {
      env: { PATH: PG_PATH, LANG: "C.UTF-8", HOME: "/tmp", ...env },
      ...pgUid(),
      stdio: ["ignore", "ignore", "pipe"],
    });
    let err = "";
    p.stderr.on("data", (d) => (err += d));
    p.on("close", (code) =>
      code === 0
        ? resolve(Number(process.hrtime.bigint() - start) / 1e9)
        : reject(new Error(`${cmd} failed (${code}): ${err.slice(-2000)}`)),
    );
  });
}

async function timedScript(script: string, env: Record<string, string>): Promise<number> {
  const start = process.hrtime.bigint();
  const r = await runAsPostgres(scriptPath(script as never), [], env, 3_600_000);
  if (r.code !== 0) throw new Error(`${script} failed: ${r.stderr.slice(-2000)}`);
  return Number(process.hrtime.bigint() - start) / 1e9;
}

function duBytes(p: string): number {
  return Number(execFileSync("du", ["-sb", p], { encoding: "utf8" }).split("\t")[0]);
}

const fmt = (s: number) => `${s.toFixed(1)} s`;
const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

async function backupRestore(): Promise<void> {
  const cluster = await PgCluster.create({ members: 1 });
  const work = pgTempDir("pg-bench-");
  try {
    await cluster.start(0);
    await cluster.waitAppReady(0);
    const port = String(cluster.ports[0]);
    const pw = path.join(cluster.root, "secrets/superuser");
    const conn = {
      PGHOST: "127.0.0.1",
      PGPORT: port,
      PGUSER: "postgres",
      PGPASSWORD: cluster.passwords.superuser,
    };
    console.log(`pgbench -i -s ${scale} ...`);
    await timed(`pgbench -i -q -s ${scale} stock_analysis`, conn);
    const dbSize = await cluster.sql(0, "select pg_database_size('stock_analysis')");
    console.log(`database: ${mb(Number(dbSize))}`);
    const digest = async (db: string) =>
      cluster.sql(
        0,
        "select count(*) || ':' || sum(abalance) || ':' || sum(aid::bigint * bid) from pgbench_accounts",
        db,
      );
    const expected = await digest("stock_analysis");

    // The manual: pg_dump > file; gzip file   |   gunzip file; psql < file
    const manualDump = path.join(work, "manual.sql");
    const tManualBackup = await timed(
      `pg_dump stock_analysis > '${manualDump}' && gzip '${manualDump}'`,
      conn,
    );
    const manualSize = fs.statSync(`${manualDump}.gz`).size;
    await cluster.sql(0, "create database manual_restore");
    const tManualRestore = await timed(
      `gunzip '${manualDump}.gz' && psql -X -q -d manual_restore -f '${manualDump}' >/dev/null`,
      conn,
    );
    if ((await digest("manual_restore")) !== expected) throw new Error("manual restore differs");
    await cluster.sql(0, "drop database manual_restore");
    fs.rmSync(manualDump, { force: true });

    // Ours: the CronJob's pg-backup.sh and the restore Job's pg-restore.sh.
    const backupDir = path.join(work, "backups");
    fs.mkdirSync(backupDir);
    fs.chownSync(backupDir, pgUid().uid, pgUid().gid);
    const env = {
      PGHOST: "127.0.0.1",
      PGPORT: port,
      PG_PASSWORD_FILE: pw,
      BACKUP_DIR: backupDir,
      BACKUP_JOBS: jobs,
      RESTORE_JOBS: jobs,
    };
    const tOurBackup = await timedScript("pg-backup.sh", env);
    const [name] = fs.readdirSync(backupDir).filter((n) => n.startsWith("backup-"));
    const ourSize = duBytes(path.join(backupDir, name));
    await cluster.sql(
      0,
      "update pgbench_accounts set abalance = abalance + 1 where aid % 100 = 0",
      "stock_analysis",
    );
    const tOurRestore = await timedScript("pg-restore.sh", env);
    if ((await digest("stock_analysis")) !== expected) throw new Error("our restore differs");

    console.log("");
    console.log(
      `| pgbench scale ${scale} (${mb(Number(dbSize))}) | manual | ours (${jobs} jobs) | ratio |`,
    );
    console.log("|---|---|---|---|");
    console.log(
      `| backup time | ${fmt(tManualBackup)} | ${fmt(tOurBackup)} | ${(tManualBackup / tOurBackup).toFixed(2)}× faster |`,
    );
    console.log(
      `| backup size | ${mb(manualSize)} | ${mb(ourSize)} | ${(ourSize / manualSize).toFixed(2)}× the size |`,
    );
    console.log(
      `| restore time | ${fmt(tManualRestore)} | ${fmt(tOurRestore)} | ${(tManualRestore / tOurRestore).toFixed(2)}× faster |`,
    );
    console.log(
      "ours: backup incl. snapshot row counts, globals and SHA-256 manifest; restore incl. checksum check," +
        " row-count check, ANALYZE and swap. manual: restore into an empty database.",
    );
  } finally {
    await cluster.destroy();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (!fs.existsSync(`${PG_BIN}/postgres`)) throw new Error(`PostgreSQL 15 not found in ${PG_BIN}`);
  await backupRestore();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
