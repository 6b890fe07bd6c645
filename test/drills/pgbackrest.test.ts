// pgBackRest on real tools: PostgreSQL 15 (a server bootstrapped as Patroni does), pgBackRest 2.x and a
// real S3 server (versitygw over TLS with a generated CA), driven by the very scripts the pods run:
// pg-backrest.sh (stanza, backups, retention), pg-backrest-restore.sh (restore / point in time into
// an empty data directory) and pg-backrest-verify.sh (scratch restore + checks). One S3 server and
// one PostgreSQL member for the whole file; the tests run in order and build on each other.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import {
  archiveParameters,
  fullBackupsToKeep,
  pgbackrestConf,
} from "../../components/postgres/backrest";
import { scriptPath } from "../../components/postgres/content";
import {
  PG_PATH,
  PgCluster,
  freePort,
  pgUser,
  runAsPostgres,
  waitFor,
  writePgFile,
} from "../helpers/postgres";
import { S3Server, startS3 } from "../helpers/s3";

const STANZA = "stock-analysis";
const ARCHIVE_TIMEOUT = 5;
let s3: S3Server;
let cluster: PgCluster;
let env: Record<string, string>;

/** Runs a shell command line as postgres; rejects with its output on failure. */
function sh(
  cmd: string,
  extraEnv: Record<string, string> = {},
  timeoutMs = 300_000,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn("bash", ["-o", "pipefail", "-c", cmd], {
      env: { PATH: PG_PATH, HOME: "/tmp", LANG: "C.UTF-8", ...env, ...extraEnv },
      uid: pgUser.uid,
      gid: pgUser.gid,
      stdio: ["ignore", "pipe", "pipe"],
      timeout: timeoutMs,
    });
    let out = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (out += d));
    p.on("close", (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${cmd} (${code}):\n${out}`)),
    );
  });
}

async function backrest(...args: string[]) {
  return runAsPostgres(scriptPath("pg-backrest.sh"), args, env);
}

interface InfoBackup {
  label: string;
  type: "full" | "diff" | "incr";
  reference: string[] | null;
  timestamp: { start: number; stop: number };
  info: { repository: { delta: number; size: number } };
  archive: { start: string; stop: string };
}
async function info(): Promise<{ backup: InfoBackup[]; archive: { min: string; max: string }[] }> {
  return JSON.parse(await sh("pgbackrest info --output=json"))[0];
}

/** A restored data directory brought up as a standalone server on its own port and socket. */
async function startRestored(dir: string): Promise<{ port: number; stop: () => Promise<void> }> {
  const port = await freePort();
  const run = path.join(dir, "run");
  fs.mkdirSync(run, { recursive: true });
  fs.chownSync(run, pgUser.uid, pgUser.gid);
  writePgFile(
    path.join(dir, "pg_hba.conf"),
    "host all all 127.0.0.1/32 trust\nlocal all all trust\n",
  );
  writePgFile(
    path.join(dir, "postgresql.conf"),
    [
      `data_directory = '${dir}/pgdata'`,
      `hba_file = '${dir}/pg_hba.conf'`,
      "listen_addresses = '127.0.0.1'",
      `port = ${port}`,
      `unix_socket_directories = '${run}'`,
      "archive_mode = off",
      "max_connections = 50",
      "shared_buffers = 32MB",
    ].join("\n") + "\n",
  );
  await sh(
    `pg_ctl start -D '${dir}/pgdata' -o "-c config_file=${dir}/postgresql.conf" -l '${dir}/pg.log' -w -t 120`,
  );
  return {
    port,
    stop: async () => {
      await sh(`pg_ctl stop -D '${dir}/pgdata' -m fast -w`).catch(() => undefined);
    },
  };
}

async function sqlAt(port: number, query: string, db = "stock_analysis"): Promise<string> {
  return (
    await sh(
      `psql -X -Atq -v ON_ERROR_STOP=1 -h 127.0.0.1 -p ${port} -U postgres -d ${db} -c "${query}"`,
    )
  ).trim();
}

function scratchDir(name: string): string {
  const d = path.join(cluster.root, name);
  fs.mkdirSync(d);
  fs.chownSync(d, pgUser.uid, pgUser.gid);
  return d;
}

before(async () => {
  s3 = await startS3();
  const conf = path.join(fs.mkdtempSync("/tmp/pgbackrest-conf-"), "pgbackrest.conf");
  fs.chmodSync(path.dirname(conf), 0o755);
  const archive = archiveParameters({
    stanza: STANZA,
    archiveTimeout: ARCHIVE_TIMEOUT,
    configPath: conf,
  });
  const creds = {
    PGBACKREST_REPO1_S3_KEY: s3.accessKey,
    PGBACKREST_REPO1_S3_KEY_SECRET: s3.secretKey,
  };
  cluster = await PgCluster.create({
    members: 1,
    // What Patroni puts into postgresql.conf from archiveParameters().
    extraConf: Object.entries(archive.parameters)
      .map(([k, v]) => `${k} = '${String(v).replace(/'/g, "''")}'`)
      .join("\n"),
    env: creds,
  });
  const root = cluster.root;
  fs.mkdirSync(path.join(root, "spool"));
  fs.chownSync(path.join(root, "spool"), pgUser.uid, pgUser.gid);
  writePgFile(
    conf,
    pgbackrestConf({
      stanza: STANZA,
      pgPath: path.join(root, "m0/data/pgdata"),
      pgPort: cluster.ports[0],
      pgSocketPath: path.join(root, "m0/run"),
      repos: [
        {
          endpoint: s3.host,
          port: s3.port,
          bucket: s3.bucket,
          region: s3.region,
          uriStyle: "path",
          path: "/stock-analysis/test",
          caFile: s3.caFile,
        },
      ],
      retentionFull: 99,
      compressType: "lz4",
      compressLevel: 1,
      processMax: 2,
      spoolPath: path.join(root, "spool"),
      lockPath: path.join(root, "lock"),
      archiveTimeoutSeconds: 60,
    }),
    0o644,
  );
  env = { ...creds, PGBACKREST_CONFIG: conf, PGBACKREST_STANZA: STANZA };
  await cluster.start(0);
  await cluster.waitAppReady(0);
  await cluster.sql(
    0,
    `create table trades (id bigserial primary key, symbol text not null, qty int not null, at timestamptz default clock_timestamp());
     create table stocks (symbol text primary key, name text);
     insert into stocks select 'S' || g, 'Company ' || g from generate_series(1, 300) g;
     insert into trades (symbol, qty) select 'S' || (g % 300 + 1), g from generate_series(1, 20000) g;`,
    "stock_analysis",
  );
});

after(async () => {
  await cluster?.destroy();
  if (env?.PGBACKREST_CONFIG)
    fs.rmSync(path.dirname(env.PGBACKREST_CONFIG), { recursive: true, force: true });
  await s3?.stop();
});

describe("pgBackRest to S3", () => {
  it("creates the stanza, checks archiving, and takes a full then an incremental backup", async () => {
    const init = await backrest("init");
    assert.equal(init.code, 0, init.stderr + init.stdout + s3.logs());
    // init is idempotent (every backup runs it) and skips stanza-create once the stanza exists.
    const again = await backrest("init");
    assert.equal(again.code, 0, again.stderr + again.stdout);
    assert.doesNotMatch(again.stdout + again.stderr, /stanza-create command begin/);
    const full = await backrest("backup", "full");
    assert.equal(full.code, 0, full.stderr);
    await cluster.sql(0, "update trades set qty = qty + 1 where id % 50 = 0", "stock_analysis");
    const incr = await backrest("backup", "incr");
    assert.equal(incr.code, 0, incr.stderr);
    const b = (await info()).backup;
    assert.deepEqual(
      b.map((x) => x.type),
      ["full", "incr"],
    );
    assert.deepEqual(b[1].reference, [b[0].label], "the incremental builds on the full");
    assert.ok(
      b[1].info.repository.delta < b[0].info.repository.delta / 2,
      `incremental stores only changed files: ${b[1].info.repository.delta} vs full ${b[0].info.repository.delta}`,
    );
    // The objects really are in the bucket (posix backend: one file per object).
    const backupDir = path.join(
      s3.dataDir,
      s3.bucket,
      "stock-analysis/test/backup",
      STANZA,
      b[0].label,
    );
    assert.ok(fs.existsSync(path.join(backupDir, "backup.manifest")), backupDir);
  });

  it("restores to a point in time between two writes: exactly the rows committed before it", async () => {
    await cluster.sql(0, "insert into trades (symbol, qty) values ('BEFORE', 1)", "stock_analysis");
    await new Promise((r) => setTimeout(r, 1100));
    const target = await cluster.sql(
      0,
      "select to_char(clock_timestamp(), 'YYYY-MM-DD HH24:MI:SS.US+00') from (select set_config('timezone','UTC',true)) x",
    );
    await new Promise((r) => setTimeout(r, 1100));
    await cluster.sql(0, "insert into trades (symbol, qty) values ('AFTER', 2)", "stock_analysis");
    const expected = await cluster.sql(
      0,
      `select count(*) from trades where at <= '${target}'`,
      "stock_analysis",
    );
    // Ship the segment holding both commits (the check forces a switch and waits for it).
    await sh("pgbackrest check");
    const dir = scratchDir("pitr");
    const r = await runAsPostgres(scriptPath("pg-backrest-restore.sh"), ["--to", target], {
      ...env,
      PGDATA: path.join(dir, "pgdata"),
      RESTORE_ARCHIVE_MODE: "off",
    });
    assert.equal(r.code, 0, r.stderr);
    const pg = await startRestored(dir);
    try {
      await waitFor(
        "PITR promotion",
        async () => (await sqlAt(pg.port, "select pg_is_in_recovery()")) === "f",
      );
      assert.equal(
        await sqlAt(pg.port, "select count(*) from trades where symbol = 'BEFORE'"),
        "1",
      );
      assert.equal(await sqlAt(pg.port, "select count(*) from trades where symbol = 'AFTER'"), "0");
      assert.equal(await sqlAt(pg.port, "select count(*) from trades"), expected);
    } finally {
      await pg.stop();
    }
  });

  it("refuses to restore over a data directory that holds anything", async () => {
    const r = await runAsPostgres(scriptPath("pg-backrest-restore.sh"), [], {
      ...env,
      PGDATA: path.join(cluster.root, "m0/data/pgdata"),
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /not empty/);
    assert.ok(await cluster.accepting(0), "the live member is untouched");
  });

  it("keeps the recovery point within archive_timeout under a pgbench load", async () => {
    const conn = `-h 127.0.0.1 -p ${cluster.ports[0]} -U postgres`;
    const pw = { PGPASSWORD: cluster.passwords.superuser };
    await sh(`pgbench -i -q -s 2 ${conn} stock_analysis`, pw);
    const load = sh(`pgbench -n -c 4 -j 2 -T 25 ${conn} stock_analysis`, pw, 120_000);
    const lags: number[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        await new Promise((r) => setTimeout(r, 4000));
        // A commit now: its WAL segment must reach the archive within archive_timeout (+ the
        // async push interval), not whenever the 16 MB segment fills.
        const lsn = await cluster.sql(
          0,
          "insert into trades (symbol, qty) values ('RPO', 0) returning pg_walfile_name(pg_current_wal_insert_lsn())",
          "stock_analysis",
        );
        const t0 = Date.now();
        await waitFor(
          `segment ${lsn} archived`,
          async () =>
            (await cluster.sql(
              0,
              `select coalesce(last_archived_wal >= '${lsn}', false) from pg_stat_archiver`,
            )) === "t",
          60_000,
          200,
        );
        lags.push((Date.now() - t0) / 1000);
      }
    } finally {
      await load;
    }
    // A failed push is retried by PostgreSQL (the segment stays in pg_wal); what counts is that
    // archiving recovered: the newest success is after the newest failure.
    const recovered = await cluster.sql(
      0,
      "select coalesce(last_failed_time is null or last_archived_time > last_failed_time, false) from pg_stat_archiver",
    );
    assert.equal(recovered, "t", "archiving recovered from any failure under load");
    // The goal: the recovery point stays within 60 s under load (archive_timeout here is
    // 5 s; a failed push that PostgreSQL retries can add tens of seconds on a loaded machine).
    for (const lag of lags)
      assert.ok(lag <= 60, `a commit reached the archive after ${lag} s (goal 60 s)`);
  });

  it("restores from the object store alone after the member's data is gone", async () => {
    await cluster.sql(0, "insert into trades (symbol, qty) values ('LAST', 3)", "stock_analysis");
    const expected = await cluster.sql(
      0,
      "select count(*) || ':' || sum(qty) from trades",
      "stock_analysis",
    );
    await sh("pgbackrest check");
    await cluster.stop(0);
    const pgdata = path.join(cluster.root, "m0/data/pgdata");
    fs.rmSync(pgdata, { recursive: true, force: true });
    fs.rmSync(path.join(cluster.root, "spool"), { recursive: true, force: true });
    fs.mkdirSync(path.join(cluster.root, "spool"));
    fs.chownSync(path.join(cluster.root, "spool"), pgUser.uid, pgUser.gid);
    const r = await runAsPostgres(scriptPath("pg-backrest-restore.sh"), [], {
      ...env,
      PGDATA: pgdata,
    });
    assert.equal(r.code, 0, r.stderr);
    // PostgreSQL starts on the restored directory (as Patroni would): it replays the archive,
    // promotes, and archives again (a new timeline).
    await cluster.start(0);
    await waitFor(
      "restored member to promote",
      async () => (await cluster.role(0)) === "primary",
      120_000,
      500,
    ).catch((e) => {
      throw new Error(`${String(e)}\n${cluster.logs(0).slice(-4000)}`);
    });
    assert.equal(
      await cluster.sql(0, "select count(*) || ':' || sum(qty) from trades", "stock_analysis"),
      expected,
    );
    assert.equal(
      await cluster.sql(0, "select count(*) from trades where symbol = 'LAST'", "stock_analysis"),
      "1",
    );
    const after = await backrest("backup", "full");
    assert.equal(after.code, 0, `backups go on after the restore: ${after.stderr}${after.stdout}`);
  });

  it("expires exactly the full backups the retention settings say", async () => {
    // Two more fulls (three in all since the incremental, plus the one after the restore).
    for (const t of ["full", "diff", "full"]) assert.equal((await backrest("backup", t)).code, 0);
    const before = (await info()).backup;
    const fulls = before.filter((b) => b.type === "full");
    assert.equal(fulls.length, 4);
    const now = Math.floor(Date.now() / 1000);
    // All within 7 days: nothing goes, even with a minimum of 1.
    let r = await runAsPostgres(scriptPath("pg-backrest.sh"), ["expire"], {
      ...env,
      BACKUP_RETENTION_DAYS: "7",
      BACKUP_MIN_FULL: "1",
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await info()).backup.length, before.length);
    // Ten days later every full is past the window: keep the newest one older than the window
    // and at least BACKUP_MIN_FULL = 2 in all, so the two newest fulls (and the diff on the
    // second) stay, the two oldest and everything built on them go.
    const later = now + 10 * 86400;
    assert.equal(
      fullBackupsToKeep(
        fulls.map((b) => b.timestamp.stop),
        later,
        7,
        2,
      ),
      2,
    );
    const keep = (
      await runAsPostgres(scriptPath("pg-backrest.sh"), ["keep-count", "1"], {
        ...env,
        BACKUP_RETENTION_DAYS: "7",
        BACKUP_MIN_FULL: "2",
        BACKUP_NOW: String(later),
      })
    ).stdout.trim();
    assert.equal(keep, "2", "the script computes what fullBackupsToKeep computes");
    r = await runAsPostgres(scriptPath("pg-backrest.sh"), ["expire"], {
      ...env,
      BACKUP_RETENTION_DAYS: "7",
      BACKUP_MIN_FULL: "2",
      BACKUP_NOW: String(later),
    });
    assert.equal(r.code, 0, r.stderr);
    const kept = (await info()).backup;
    const keptFulls = fulls.slice(-2).map((b) => b.label);
    const expectedLabels = before
      .filter((b) => keptFulls.includes(b.type === "full" ? b.label : (b.reference ?? [])[0]))
      .map((b) => b.label);
    assert.deepEqual(
      kept.map((b) => b.label),
      expectedLabels,
    );
    // WAL older than the oldest kept full's start is gone too.
    const oldestKept = kept[0];
    assert.ok(
      (await info()).archive[0].min.slice(8) >= oldestKept.archive.start.slice(8),
      "archive starts at the oldest kept backup",
    );
  });

  it("verifies the newest backup in a scratch restore and reports its row counts", async () => {
    const dir = scratchDir("verify");
    const metrics = path.join(dir, "metrics.prom");
    const r = await runAsPostgres(scriptPath("pg-backrest-verify.sh"), [], {
      ...env,
      VERIFY_DIR: dir,
      VERIFY_PORT: String(await freePort()),
      VERIFY_TABLES: "trades stocks",
      VERIFY_METRICS_FILE: metrics,
    });
    assert.equal(r.code, 0, r.stderr);
    const m = fs.readFileSync(metrics, "utf8");
    assert.match(m, /^pg_backup_verify_success\{stanza="stock-analysis"\} 1$/m);
    const trades = await cluster.sql(0, "select count(*) from trades", "stock_analysis");
    assert.match(m, new RegExp(`table="trades"\\} ${trades}$`, "m"));
    assert.match(m, /table="stocks"\} 300$/m);
    assert.ok(!fs.existsSync(path.join(dir, "pgdata")), "scratch data removed");
  });

  const verify = async (name: string) => {
    const dir = scratchDir(name);
    const metrics = path.join(dir, "metrics.prom");
    const r = await runAsPostgres(scriptPath("pg-backrest-verify.sh"), [], {
      ...env,
      VERIFY_DIR: dir,
      VERIFY_PORT: String(await freePort()),
      VERIFY_TABLES: "trades",
      VERIFY_METRICS_FILE: metrics,
    });
    return { ...r, metrics: fs.existsSync(metrics) ? fs.readFileSync(metrics, "utf8") : "" };
  };
  const newestBackupFiles = async () => {
    const b = (await info()).backup;
    const dir = path.join(
      s3.dataDir,
      s3.bucket,
      "stock-analysis/test/backup",
      STANZA,
      b[b.length - 1].label,
    );
    const files: string[] = [];
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true }))
        if (e.isDirectory()) walk(path.join(d, e.name));
        else files.push(path.join(d, e.name));
    };
    // Data files: pg_data/ (files above the bundle limit) and bundle/ (repo1-bundle=y).
    walk(dir);
    return files
      .filter((f) => !path.basename(f).startsWith("backup.manifest"))
      .filter((f) => fs.statSync(f).size > 64)
      .sort();
  };

  it("fails verification when a backup object is corrupted", async () => {
    const [victim] = await newestBackupFiles();
    const saved = fs.readFileSync(victim);
    const bad = Buffer.from(saved);
    bad[Math.floor(bad.length / 2)] ^= 0xff;
    fs.writeFileSync(victim, bad);
    try {
      const r = await verify("verify-corrupt");
      assert.notEqual(r.code, 0, "a flipped byte must fail verification");
      assert.match(r.metrics, /pg_backup_verify_success\{stanza="stock-analysis"\} 0/);
      assert.match(r.stderr, /FAILED: pgbackrest verify/, "found by pgbackrest verify");
    } finally {
      fs.writeFileSync(victim, saved);
    }
  });

  it("fails verification when a backup object is missing", async () => {
    const files = await newestBackupFiles();
    const victim = files[files.length - 1];
    const saved = fs.readFileSync(victim);
    fs.rmSync(victim);
    try {
      const r = await verify("verify-missing");
      assert.notEqual(r.code, 0, "a missing object must fail verification");
      assert.match(r.stderr, /FAILED: pgbackrest verify/, "found by pgbackrest verify");
    } finally {
      fs.writeFileSync(victim, saved);
    }
  });
});
