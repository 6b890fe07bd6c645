// Benchmark: our backup/restore (components/postgres/scripts) against the manual's
// `pg_dump | gzip` + `gunzip; psql <` on the same pgbench database, (failover: scripts/bench/pg-failover).
// Run as root on a machine with PostgreSQL 15 (Debian postgresql-15): scripts/bench/pg-backup
//   BENCH_SCALE   pgbench scale factor (default 50: 5M accounts rows)
//   BENCH_JOBS    parallel workers for our backup/restore (default 2)
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { archiveParameters, pgbackrestConf } from "../../components/postgres/backrest";
import { scriptPath } from "../../components/postgres/content";
import { startS3 } from "../../test/helpers/s3";
import {
  PG_BIN,
  PG_PATH,
  PgCluster,
  freePort,
  pgTempDir,
  runAsPostgres,
  waitFor,
} from "../../test/helpers/postgres";

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

/**
 * pgBackRest to a local S3 server (versitygw over TLS) against the manual's script as it really
 * runs: `pg_dump | gzip > file` and `gunzip -c file | psql` in one pipe each. Same database, same
 * run: backup time, stored size, restore time until the restored server accepts connections, and
 * the recovery point (commit -> its WAL in the archive) under a pgbench load.
 */
async function pgbackrestVsManual(): Promise<void> {
  const s3 = await startS3();
  const work = pgTempDir("pg-bench-backrest-");
  const conf = path.join(work, "pgbackrest.conf");
  const stanza = "bench";
  const archiveTimeout = 10;
  const archive = archiveParameters({ stanza, archiveTimeout, configPath: conf });
  const creds = {
    PGBACKREST_REPO1_S3_KEY: s3.accessKey,
    PGBACKREST_REPO1_S3_KEY_SECRET: s3.secretKey,
  };
  const cluster = await PgCluster.create({
    members: 1,
    extraConf: Object.entries(archive.parameters)
      .map(([k, v]) => `${k} = '${String(v).replace(/'/g, "''")}'`)
      .join("\n"),
    env: creds,
  });
  try {
    for (const d of ["spool", "lock"]) {
      fs.mkdirSync(path.join(work, d));
      fs.chownSync(path.join(work, d), pgUid().uid, pgUid().gid);
    }
    fs.writeFileSync(
      conf,
      pgbackrestConf({
        stanza,
        pgPath: path.join(cluster.root, "m0/data/pgdata"),
        pgPort: cluster.ports[0],
        pgSocketPath: path.join(cluster.root, "m0/run"),
        repos: [
          {
            endpoint: s3.host,
            port: s3.port,
            bucket: s3.bucket,
            region: s3.region,
            uriStyle: "path",
            path: "/bench",
            caFile: s3.caFile,
          },
        ],
        retentionFull: 9,
        compressType: "lz4",
        compressLevel: 1,
        processMax: Number(jobs),
        spoolPath: path.join(work, "spool"),
        lockPath: path.join(work, "lock"),
      }),
      { mode: 0o644 },
    );
    await cluster.start(0);
    await cluster.waitAppReady(0);
    const conn = {
      PGHOST: "127.0.0.1",
      PGPORT: String(cluster.ports[0]),
      PGUSER: "postgres",
      PGPASSWORD: cluster.passwords.superuser,
    };
    const env = { ...conn, ...creds, PGBACKREST_CONFIG: conf, PGBACKREST_STANZA: stanza };
    console.log(`pgbench -i -s ${scale} (pgBackRest run) ...`);
    await timed(`pgbench -i -q -s ${scale} stock_analysis`, conn);
    const dbSize = Number(await cluster.sql(0, "select pg_database_size('stock_analysis')"));
    const digest = () =>
      cluster.sql(
        0,
        "select count(*) || ':' || sum(abalance) from pgbench_accounts",
        "stock_analysis",
      );
    const expected = await digest();

    // The manual, as its script runs it: one pipe each way.
    const dump = path.join(work, "manual.sql.gz");
    const tManualBackup = await timed(`pg_dump stock_analysis | gzip > '${dump}'`, conn);
    const manualSize = fs.statSync(dump).size;
    await cluster.sql(0, "create database manual_restore");
    const tManualRestore = await timed(
      `gunzip -c '${dump}' | psql -X -q -d manual_restore >/dev/null`,
      conn,
    );
    await cluster.sql(0, "drop database manual_restore");

    // Ours: stanza + check, then a full backup.
    await timed(`pgbackrest stanza-create && pgbackrest check`, env);
    const tFull = await timed(`pgbackrest backup --type=full`, env);
    const info = JSON.parse(
      execFileSync(
        "runuser",
        [
          "-u",
          "postgres",
          "--",
          "env",
          ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
          "pgbackrest",
          "info",
          "--output=json",
        ],
        {
          encoding: "utf8",
        },
      ),
    )[0];
    const fullSize = info.backup[info.backup.length - 1].info.repository.delta as number;
    // Incremental after a tenth of the accounts rows changed.
    await cluster.sql(
      0,
      "update pgbench_accounts set abalance = abalance + 1 where aid % 10 = 0",
      "stock_analysis",
    );
    const tIncr = await timed(`pgbackrest backup --type=incr`, env);

    // Recovery point under load: commit a marker, time until its segment is archived.
    const load = timed(`pgbench -n -c 4 -j 2 -T 40 stock_analysis`, conn);
    const rpo: number[] = [];
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 5000));
      const wal = await cluster.sql(
        0,
        "select pg_walfile_name(pg_current_wal_insert_lsn()) from (select txid_current()) x",
        "stock_analysis",
      );
      const t0 = Date.now();
      await waitFor(
        "marker archived",
        async () =>
          (await cluster.sql(
            0,
            `select coalesce(last_archived_wal >= '${wal}', false) from pg_stat_archiver`,
          )) === "t",
        300_000,
        100,
      );
      rpo.push((Date.now() - t0) / 1000);
    }
    await load;
    await cluster.sql(0, "select pg_switch_wal()");
    await timed("pgbackrest check", env);
    const expectedAfter = await digest();

    // Restore into an empty directory and time until it accepts connections.
    const dir = path.join(work, "restore");
    fs.mkdirSync(dir);
    fs.chownSync(dir, pgUid().uid, pgUid().gid);
    const port = await freePort();
    fs.writeFileSync(
      path.join(dir, "postgresql.conf"),
      `data_directory='${dir}/pgdata'\nport=${port}\nlisten_addresses='127.0.0.1'\n` +
        `unix_socket_directories='${dir}'\nhba_file='${dir}/pg_hba.conf'\narchive_mode=off\n`,
    );
    fs.writeFileSync(
      path.join(dir, "pg_hba.conf"),
      "host all all 127.0.0.1/32 trust\nlocal all all trust\n",
    );
    const tRestore = await timed(
      `PGDATA='${dir}/pgdata' bash '${scriptPath("pg-backrest-restore.sh")}' && ` +
        `pg_ctl start -D '${dir}/pgdata' -o "-c config_file=${dir}/postgresql.conf" -l '${dir}/log' -w -t 3600 && ` +
        `until [ "$(psql -X -Atq -h 127.0.0.1 -p ${port} -d postgres -c 'select pg_is_in_recovery()')" = f ]; do sleep 0.2; done`,
      { ...env, PGUSER: "postgres" },
    );
    const restored = await timed(
      `[ "$(psql -X -Atq -h 127.0.0.1 -p ${port} -d stock_analysis -c "select count(*) || ':' || sum(abalance) from pgbench_accounts")" = '${expectedAfter}' ]`,
      env,
    ).then(
      () => "identical",
      () => "DIFFERS",
    );
    await timed(`pg_ctl stop -D '${dir}/pgdata' -m fast -w`, env).catch(() => 0);
    void expected;

    console.log("");
    console.log(
      `| pgbench scale ${scale} (${mb(dbSize)}) | manual (pipe) | pgBackRest lz4-1, ${jobs} processes, S3 over TLS | ratio |`,
    );
    console.log("|---|---|---|---|");
    console.log(
      `| full backup time | ${fmt(tManualBackup)} | ${fmt(tFull)} | ${(tManualBackup / tFull).toFixed(2)}× faster |`,
    );
    console.log(
      `| stored size | ${mb(manualSize)} | ${mb(fullSize)} | ${(fullSize / manualSize).toFixed(2)}× the size |`,
    );
    console.log(
      `| incremental after 10% of rows changed | ${fmt(tManualBackup)} (full dump) | ${fmt(tIncr)} | ${(tManualBackup / tIncr).toFixed(2)}× faster |`,
    );
    console.log(
      `| restore until accepting connections | ${fmt(tManualRestore)} | ${fmt(tRestore)} | ${(tManualRestore / tRestore).toFixed(2)}× faster |`,
    );
    console.log(
      `| recovery point under pgbench load (archive_timeout ${archiveTimeout} s) | 24 h (nightly dump) | max ${Math.max(...rpo).toFixed(1)} s (${rpo.map((x) => x.toFixed(1)).join(", ")}) | |`,
    );
    console.log(`restored data after load: ${restored} to the source`);
  } finally {
    await cluster.destroy();
    await s3.stop();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (!fs.existsSync(`${PG_BIN}/postgres`)) throw new Error(`PostgreSQL 15 not found in ${PG_BIN}`);
  const only = process.env.BENCH_ONLY;
  if (!only || only === "dump") await backupRestore();
  if (!only || only === "pgbackrest") await pgbackrestVsManual();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
