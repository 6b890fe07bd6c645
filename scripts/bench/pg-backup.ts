// Benchmark: our backup/restore against the manual's on the same data, same run.
// Run as root on a machine with PostgreSQL 15 (Debian postgresql-15) and pgBackRest:
//   scripts/bench/pg-backup
// pgBackRest with the stack's backup config (the members' pgbackrest.conf as
// rendered, pointed at a local versitygw over TLS) against the manual's `pg_dump | gzip` /
// `gunzip -c | psql`, on a pgbench set and a many-table set, each in its own fresh server.
//   BENCH_SCALE         pgbench scale factor (default 50, the minimum: 5M accounts rows)
//   BENCH_TABLES        tables of the many-table set (default 300), BENCH_TABLE_ROWS rows each
//                       (default 15000; a primary key and two indexes per table)
//   BENCH_DATASETS      pgbench,tables (default both)
//   BENCH_STACK         stack whose postgres.backup config is measured (default prod)
//   BENCH_COMPRESS_TYPE, BENCH_COMPRESS_LEVEL, BENCH_PROCESS_MAX, BENCH_ARCHIVE_TIMEOUT,
//   BENCH_DIFF_TYPE     override one knob of that config (to compare before changing a default)
//   BENCH_RPO           0: skip the recovery-point measurement (pgbench set only; default 1)
//   BENCH_LOAD_SECONDS  pgbench load while measuring the recovery point (default 60)
//   BENCH_LIGHT_SECONDS light load (1 transaction/s) while measuring it (default 180)
import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { loadConfig } from "../../components/config/load";
import type { PostgresConfig } from "../../components/config/postgres";
import { archiveParameters } from "../../components/postgres/backrest";
import { memberBackrestConf } from "../../components/postgres/backup-jobs";
import { scriptPath } from "../../components/postgres/content";
import { S3Server, startS3 } from "../../test/helpers/s3";
import {
  PG_BIN,
  PG_PATH,
  PgCluster,
  freePort,
  pgTempDir,
  psql,
  waitFor,
} from "../../test/helpers/postgres";
import { readStackConfig } from "../lib/render-stack";

type BackupConfig = PostgresConfig["backup"];

function envInt(name: string, def: number, min: number): number {
  const v = Number(process.env[name] ?? def);
  if (!Number.isInteger(v) || v < min) throw new Error(`${name} must be a whole number >= ${min}`);
  return v;
}
const scale = envInt("BENCH_SCALE", 50, 1);
const tables = envInt("BENCH_TABLES", 300, 10);
const tableRows = envInt("BENCH_TABLE_ROWS", 15000, 10);
const rpoOn = process.env.BENCH_RPO !== "0";
const loadSeconds = envInt("BENCH_LOAD_SECONDS", 60, 5);
const lightSeconds = envInt("BENCH_LIGHT_SECONDS", 180, 5);

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
      // BENCH_VERBOSE=1: pgBackRest's own timestamped log on stdout (where the time goes).
      stdio: ["ignore", process.env.BENCH_VERBOSE === "1" ? "inherit" : "ignore", "pipe"],
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

const fmt = (s: number) => `${s.toFixed(1)} s`;
const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;

interface Dataset {
  name: string;
  /** What the table header says about it. */
  describe: string;
  load(q: Query, conn: Record<string, string>): Promise<void>;
  /** The change the incremental/differential backup follows. */
  change(q: Query): Promise<void>;
  /** What "changed" means here (printed). */
  changed: string;
  /** A query whose result is identical exactly when the data is. */
  digest: string;
}

type Query = (sql: string, db?: string) => Promise<string>;

function pgbenchSet(): Dataset {
  return {
    name: "pgbench",
    describe: `pgbench scale ${scale}`,
    load: async (_q, conn) => void (await timed(`pgbench -i -q -s ${scale} stock_analysis`, conn)),
    // pgbench has four tables, one holding 99% of the data: a tenth of its rows instead.
    change: async (q) =>
      void (await q("update pgbench_accounts set abalance = abalance + 1 where aid % 10 = 0")),
    changed: "a tenth of the accounts rows updated",
    digest:
      "select (select count(*) || ':' || sum(abalance) from pgbench_accounts) || '/' || " +
      "(select count(*) from pgbench_history)",
  };
}

const tableName = (i: number) => `quotes_${String(i).padStart(4, "0")}`;

/** BENCH_TABLES tables of BENCH_TABLE_ROWS price rows each, a primary key and two indexes. */
function manyTableSet(): Dataset {
  const names = Array.from({ length: tables }, (_, i) => tableName(i + 1));
  const ddl = (t: string) =>
    `create table ${t} (id bigint primary key, symbol text not null, ts timestamptz not null,` +
    ` open numeric(12,4), high numeric(12,4), low numeric(12,4), close numeric(12,4), volume bigint);\n` +
    `insert into ${t} select g, 'S' || lpad((g % 400)::text, 4, '0'),` +
    ` timestamptz '2026-01-05 09:30+08' + g * interval '1 minute',` +
    ` round((50 + random() * 50)::numeric, 4), round((60 + random() * 50)::numeric, 4),` +
    ` round((40 + random() * 50)::numeric, 4), round((50 + random() * 50)::numeric, 4),` +
    ` (random() * 1e6)::bigint from generate_series(1, ${tableRows}) g;\n` +
    `create index ${t}_symbol_ts on ${t} (symbol, ts);\ncreate index ${t}_ts on ${t} (ts);\n`;
  return {
    name: "tables",
    describe: `${tables} tables × ${tableRows} rows, 3 indexes each`,
    load: async (_q, conn) => {
      // Two loaders (two cores); one file each, run by psql as the manual would.
      const dir = pgTempDir("pg-bench-load-");
      try {
        await Promise.all(
          [0, 1].map((part) => {
            const file = path.join(dir, `load-${part}.sql`);
            fs.writeFileSync(
              file,
              names
                .filter((_, i) => i % 2 === part)
                .map(ddl)
                .join(""),
            );
            fs.chmodSync(file, 0o644);
            return timed(`psql -X -q -v ON_ERROR_STOP=1 -d stock_analysis -f '${file}'`, conn);
          }),
        );
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
    change: async (q) => {
      for (const t of names.filter((_, i) => i % 10 === 9))
        await q(`update ${t} set close = close + 0.01 where id % 10 = 0`);
    },
    changed: `a tenth of the tables (${Math.floor(tables / 10)}) changed`,
    digest:
      "select sum(n) || ':' || sum(s) from (" +
      names.map((t) => `select count(*) n, sum(close) s from ${t}`).join(" union all ") +
      ") x",
  };
}

interface Figures {
  dataset: Dataset;
  dbSize: number;
  manualBackup: number;
  manualSize: number;
  manualRestore: number;
  full: number;
  fullSize: number;
  incr: number;
  incrSize: number;
  restore: number;
  /** Of which pgBackRest's restore (the rest: start, replay, promotion). */
  restoreFiles: number;
  rpoLoad?: number[];
  rpoLight?: number[];
}

/** Segment name -> time its archived object was written in the bucket (ms), from the S3 dir. */
function archivedSegments(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  if (!fs.existsSync(dir)) return out;
  for (const sub of fs.readdirSync(dir)) {
    const d = path.join(dir, sub);
    if (!fs.statSync(d).isDirectory()) continue;
    for (const f of fs.readdirSync(d)) {
      const m = /^([0-9A-F]{24})-/.exec(f);
      if (m) out.set(m[1], fs.statSync(path.join(d, f)).mtimeMs);
    }
  }
  return out;
}

/**
 * Recovery point: while `load` runs, commit a marker every `everyMs`; each marker's recovery point
 * is the time from its commit being acknowledged to its WAL segment's object existing in the
 * bucket (a failure in between loses it). Returns seconds per marker.
 */
async function recoveryPoint(
  q: Query,
  conn: Record<string, string>,
  archiveDir: string,
  load: string,
  seconds: number,
  everyMs: number,
  waitMs: number,
): Promise<number[]> {
  await q("create table if not exists rpo_marker (at timestamptz default clock_timestamp())");
  const running = timed(load, conn);
  const markers: { t0: number; seg: string }[] = [];
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    await q("insert into rpo_marker default values");
    const t0 = Date.now();
    // The commit record lies before the current write position: its segment or an earlier one.
    markers.push({ t0, seg: await q("select pg_walfile_name(pg_current_wal_lsn())") });
    await new Promise((r) => setTimeout(r, everyMs));
  }
  await running;
  const last = markers[markers.length - 1].seg;
  await waitFor(
    `segment ${last} in the bucket`,
    async () => archivedSegments(archiveDir).has(last),
    waitMs,
    500,
  );
  const got = archivedSegments(archiveDir);
  return markers.map((m) => (got.get(m.seg)! - m.t0) / 1000);
}

/**
 * One data set, one run: the manual's script as its pipe runs (`pg_dump | gzip > file`,
 * `gunzip -c file | psql`) against pgBackRest with the stack's backup config to a local S3 server
 * (versitygw over TLS): full backup, the configured diff/incr after a change, restore from the
 * bucket into an empty directory until the server accepts writes; optionally the recovery point.
 */
async function backrestRun(
  s3: S3Server,
  dataset: Dataset,
  backup: BackupConfig,
  rpo: boolean,
): Promise<Figures> {
  const work = pgTempDir("pg-bench-backrest-");
  const conf = path.join(work, "pgbackrest.conf");
  const repoPath = `/bench/${dataset.name}`;
  const archive = archiveParameters({
    stanza: backup.stanza,
    archiveTimeout: backup.archiveTimeout,
    configPath: conf,
  });
  const bk = {
    PGBACKREST_REPO1_S3_KEY: s3.accessKey,
    PGBACKREST_REPO1_S3_KEY_SECRET: s3.secretKey,
    // The test CA and a private lock dir: the pod paths of the shipped config do not exist here.
    PGBACKREST_REPO1_STORAGE_CA_FILE: s3.caFile,
    PGBACKREST_LOCK_PATH: path.join(work, "lock"),
    // Any other option to try without changing the config, e.g. PGBACKREST_REPO1_BUNDLE=y.
    ...Object.fromEntries(
      Object.entries(process.env).filter(
        (e): e is [string, string] => e[0].startsWith("PGBACKREST_") && e[1] !== undefined,
      ),
    ),
  };
  const cluster = await PgCluster.create({
    members: 1,
    extraConf: Object.entries(archive.parameters)
      .map(([k, v]) => `${k} = '${String(v).replace(/'/g, "''")}'`)
      .join("\n"),
    env: bk,
  });
  try {
    const dataDir = path.join(cluster.root, "m0/data");
    fs.mkdirSync(dataDir, { recursive: true });
    fs.chownSync(dataDir, pgUid().uid, pgUid().gid);
    // The members' pgbackrest.conf exactly as rendered, pointed at the local bucket.
    fs.writeFileSync(
      conf,
      memberBackrestConf(
        {
          ...backup,
          repo: {
            ...backup.repo!,
            endpoint: s3.host,
            port: s3.port,
            bucket: s3.bucket,
            region: s3.region,
            uriStyle: "path",
            path: repoPath,
          },
          repo2: undefined,
        },
        {
          dataDir,
          socketDir: path.join(cluster.root, "m0/run"),
          port: cluster.ports[0],
          backupStandby: false,
        },
      ),
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
    const env = { ...conn, ...bk, PGBACKREST_CONFIG: conf, PGBACKREST_STANZA: backup.stanza };
    const q: Query = (sql, db = "stock_analysis") =>
      psql(cluster.ports[0], sql, {
        db,
        password: cluster.passwords.superuser,
        timeoutMs: 3_600_000,
      });
    // As on first start: stanza-create and check, so the load's WAL is archived like in prod.
    await timed(`pgbackrest stanza-create && pgbackrest check`, env);
    console.log(`${dataset.describe}: loading ...`);
    await dataset.load(q, conn);
    await q("vacuum analyze");
    const dbSize = Number(await q("select pg_database_size('stock_analysis')"));
    const expected = await q(dataset.digest);
    // Quiet start for both sides: the load's WAL is in the bucket, its pages on disk.
    await q("checkpoint");
    await timed("pgbackrest check", env);

    console.log(`${dataset.describe} (${mb(dbSize)}): the manual's pg_dump | gzip ...`);
    const dump = path.join(work, "manual.sql.gz");
    const manualBackup = await timed(`pg_dump stock_analysis | gzip > '${dump}'`, conn);
    const manualSize = fs.statSync(dump).size;
    await q("create database manual_restore", "postgres");
    const manualRestore = await timed(
      `gunzip -c '${dump}' | psql -X -q -d manual_restore >/dev/null`,
      conn,
    );
    if ((await q(dataset.digest, "manual_restore")) !== expected)
      throw new Error(`${dataset.name}: the manual's restore differs from the source`);
    await q("drop database manual_restore", "postgres");
    fs.rmSync(dump);

    console.log(`${dataset.describe}: pgBackRest full, ${backup.diffType}, restore ...`);
    const full = await timed(`pgbackrest backup --type=full`, env);
    await dataset.change(q);
    const expectedAfter = await q(dataset.digest);
    const incr = await timed(`pgbackrest backup --type=${backup.diffType}`, env);
    const info = JSON.parse(
      execFileSync(
        "runuser",
        ["-u", "postgres", "--", "env"].concat(
          Object.entries(env).map(([k, v]) => `${k}=${v}`),
          ["pgbackrest", "info", "--output=json"],
        ),
        { encoding: "utf8" },
      ),
    )[0];
    const sets = info.backup as { type: string; info: { repository: { delta: number } } }[];
    const fullSize = sets[sets.length - 2].info.repository.delta;
    const incrSize = sets[sets.length - 1].info.repository.delta;

    // Restore from the bucket alone into an empty directory; done when it accepts writes.
    const dir = path.join(work, "restore");
    fs.mkdirSync(dir);
    fs.chownSync(dir, pgUid().uid, pgUid().gid);
    const port = await freePort();
    fs.writeFileSync(
      path.join(dir, "postgresql.conf"),
      `data_directory='${dir}/pgdata'\nport=${port}\nlisten_addresses='127.0.0.1'\n` +
        `unix_socket_directories='${dir}'\nhba_file='${dir}/pg_hba.conf'\narchive_mode=off\n`,
    );
    fs.writeFileSync(path.join(dir, "pg_hba.conf"), "host all all 127.0.0.1/32 trust\n");
    const restoreFiles = await timed(
      `PGDATA='${dir}/pgdata' bash '${scriptPath("pg-backrest-restore.sh")}'`,
      { ...env, RESTORE_ARCHIVE_MODE: "off" },
    );
    const restoreStart = await timed(
      `pg_ctl start -D '${dir}/pgdata' -o "-c config_file=${dir}/postgresql.conf" -l '${dir}/log' -w -t 3600 >/dev/null && ` +
        `until [ "$(psql -X -Atq -h 127.0.0.1 -p ${port} -d postgres -c 'select pg_is_in_recovery()')" = f ]; do sleep 0.2; done`,
      env,
    );
    const restore = restoreFiles + restoreStart;
    const restored = await psql(port, dataset.digest, { db: "stock_analysis", timeoutMs: 600_000 });
    await timed(`pg_ctl stop -D '${dir}/pgdata' -m fast -w >/dev/null`, env).catch(() => 0);
    fs.rmSync(dir, { recursive: true, force: true });
    if (restored !== expectedAfter)
      throw new Error(
        `${dataset.name}: pgBackRest's restore differs: ${restored} != ${expectedAfter}`,
      );

    const f: Figures = {
      dataset,
      dbSize,
      manualBackup,
      manualSize,
      manualRestore,
      full,
      fullSize,
      incr,
      incrSize,
      restore,
      restoreFiles,
    };
    if (rpo) {
      const archiveDir = path.join(
        s3.dataDir,
        s3.bucket,
        repoPath.slice(1),
        "archive",
        backup.stanza,
        "15-1",
      );
      const wait = (backup.archiveTimeout * 3 + 60) * 1000;
      console.log(`recovery point: ${loadSeconds} s of pgbench load ...`);
      f.rpoLoad = await recoveryPoint(
        q,
        conn,
        archiveDir,
        `pgbench -n -c 4 -j 2 -T ${loadSeconds} stock_analysis`,
        loadSeconds,
        3000,
        wait,
      );
      console.log(`recovery point: ${lightSeconds} s of light load (1 transaction/s) ...`);
      f.rpoLight = await recoveryPoint(
        q,
        conn,
        archiveDir,
        `pgbench -n -c 1 -R 1 -T ${lightSeconds} stock_analysis`,
        lightSeconds,
        7000,
        wait,
      );
    }
    return f;
  } finally {
    await cluster.destroy();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

const ratio = (base: number, ours: number) => base / ours;
const verdict = (ok: boolean) => (ok ? "met" : "**missed**");

function printFigures(f: Figures, backup: BackupConfig, what: string): void {
  const d = f.dataset;
  const rb = ratio(f.manualBackup, f.full);
  const ri = ratio(f.manualBackup, f.incr);
  const rr = ratio(f.manualRestore, f.restore);
  const restoreGoal = d.name === "tables" ? 3 : 1;
  console.log("");
  console.log(
    `| ${d.describe} (${mb(f.dbSize)}) | manual (\`pg_dump \\| gzip\`, \`gunzip -c \\| psql\`) | ${what} | ratio | goal |`,
  );
  console.log("|---|---|---|---|---|");
  console.log(
    `| full backup time | ${fmt(f.manualBackup)} | ${fmt(f.full)} | ${rb.toFixed(2)}× faster | ≥ 1×: ${verdict(rb >= 1)} |`,
  );
  console.log(
    `| stored size | ${mb(f.manualSize)} | ${mb(f.fullSize)} | ${(f.fullSize / f.manualSize).toFixed(2)}× the size | |`,
  );
  console.log(
    `| ${backup.diffType} backup after ${d.changed} | ${fmt(f.manualBackup)} (full dump) | ${fmt(f.incr)} (${mb(f.incrSize)}) | ${ri.toFixed(2)}× faster | ≥ 5×: ${verdict(ri >= 5)} |`,
  );
  console.log(
    `| restore until it accepts writes (ours: from S3 into an empty dir) | ${fmt(f.manualRestore)} | ${fmt(f.restore)} (restore ${fmt(f.restoreFiles)} + start ${fmt(f.restore - f.restoreFiles)}) | ${rr.toFixed(2)}× faster | ≥ ${restoreGoal}×: ${verdict(rr >= restoreGoal)} |`,
  );
  const rp = (xs: number[] | undefined, label: string, goal: number) => {
    if (!xs) return;
    const sorted = [...xs].sort((a, b) => a - b);
    const max = sorted[sorted.length - 1];
    console.log(
      `| recovery point, ${label} (archive_timeout ${backup.archiveTimeout} s; ${xs.length} commits: min / median / max) | 24 h (nightly dump) | ` +
        `${sorted[0].toFixed(1)} / ${sorted[Math.floor(sorted.length / 2)].toFixed(1)} / ${max.toFixed(1)} s | | ≤ ${goal} s: ${verdict(max <= goal)} |`,
    );
  };
  rp(f.rpoLoad, `pgbench load (4 clients, ${loadSeconds} s)`, 15);
  rp(f.rpoLight, `light load (1 tx/s, ${lightSeconds} s)`, 60);
}

/** The stack's backup config (BENCH_STACK, default prod), with BENCH_* knob overrides. */
function stackBackup(): BackupConfig {
  const stack = process.env.BENCH_STACK ?? "prod";
  const { config, secretKeys } = readStackConfig(stack);
  const b = loadConfig(config, secretKeys).postgres.backup;
  if (!b.repo) throw new Error(`stack ${stack}: postgres.backup.repo is not set`);
  const env = process.env;
  return {
    ...b,
    compressType: (env.BENCH_COMPRESS_TYPE as BackupConfig["compressType"]) ?? b.compressType,
    compressLevel: env.BENCH_COMPRESS_LEVEL ? Number(env.BENCH_COMPRESS_LEVEL) : b.compressLevel,
    processMax: env.BENCH_PROCESS_MAX ? Number(env.BENCH_PROCESS_MAX) : b.processMax,
    archiveTimeout: env.BENCH_ARCHIVE_TIMEOUT
      ? Number(env.BENCH_ARCHIVE_TIMEOUT)
      : b.archiveTimeout,
    diffType: (env.BENCH_DIFF_TYPE as BackupConfig["diffType"]) ?? b.diffType,
  };
}

async function pgbackrestVsManual(): Promise<void> {
  const backup = stackBackup();
  const what =
    `pgBackRest ${backup.compressType}-${backup.compressLevel}, process-max ${backup.processMax}, ` +
    `${process.env.PGBACKREST_REPO1_BUNDLE === "n" ? "no bundling" : "bundled"}, ` +
    `S3 over TLS (stack ${process.env.BENCH_STACK ?? "prod"})`;
  const sets = (process.env.BENCH_DATASETS ?? "pgbench,tables").split(",");
  const load = () =>
    os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(" / ");
  console.log(`load average (1/5/15 min) at start: ${load()}`);
  const s3 = await startS3();
  const results: Figures[] = [];
  try {
    for (const name of sets) {
      const d = name === "pgbench" ? pgbenchSet() : name === "tables" ? manyTableSet() : undefined;
      if (!d) throw new Error(`BENCH_DATASETS: unknown data set ${name} (pgbench, tables)`);
      results.push(await backrestRun(s3, d, backup, name === "pgbench" && rpoOn));
      console.log(`load average after ${name}: ${load()}`);
    }
  } finally {
    await s3.stop();
  }
  for (const f of results) printFigures(f, backup, what);
  console.log(`\nload average (1/5/15 min) at the end: ${load()}`);
}

async function main(): Promise<void> {
  if (!fs.existsSync(`${PG_BIN}/postgres`)) throw new Error(`PostgreSQL 15 not found in ${PG_BIN}`);
  await pgbackrestVsManual();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
