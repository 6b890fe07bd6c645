// Backup, restore, verification and retention scripts on real PostgreSQL 15 (the very files the
// CronJobs and scripts/pg-restore run).
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { scriptPath } from "../../components/postgres/content";
import { PgCluster, pgTempDir, runAsPostgres, writePgFile } from "../helpers/postgres";

let cluster: PgCluster;
let backupDir: string;
let env: Record<string, string>;

const TABLES = ["stocks", "prices", "notes"];

async function fingerprint(db = "stock_analysis"): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const t of TABLES) {
    out[t] = await cluster.sql(
      0,
      `select count(*) || ':' || coalesce(md5(string_agg(x::text, '|' order by x::text)), '') from ${t} x`,
      db,
    );
  }
  out.seq = await cluster.sql(0, "select last_value from prices_id_seq", db);
  return out;
}

function backups(): string[] {
  return fs
    .readdirSync(backupDir)
    .filter((n) => n.startsWith("backup-"))
    .sort();
}

before(async () => {
  cluster = await PgCluster.create({ members: 1 });
  await cluster.start(0);
  await cluster.waitAppReady(0);
  backupDir = pgTempDir("pgbackups-");
  env = {
    PGHOST: "127.0.0.1",
    PGPORT: String(cluster.ports[0]),
    PG_PASSWORD_FILE: path.join(cluster.root, "secrets/superuser"),
    BACKUP_DIR: backupDir,
    BACKUP_JOBS: "2",
  };
  await cluster.sql(
    0,
    `create table stocks (symbol text primary key, name text not null, listed date);
     create table prices (id bigserial primary key, symbol text references stocks, at timestamptz, close numeric(12,4), meta jsonb);
     create index on prices (symbol, at);
     create table notes (id int primary key, body text);
     insert into stocks select 'S' || g, 'Company ' || g || E' \\t "quoted" ''x''', date '2000-01-01' + g from generate_series(1, 500) g;
     insert into prices (symbol, at, close, meta)
       select 'S' || (g % 500 + 1), timestamptz '2024-01-01' + g * interval '1 minute', g / 7.0,
              jsonb_build_object('v', g, 'tag', md5(g::text))
       from generate_series(1, 200000) g;
     insert into notes select g, repeat(md5(g::text), 20) || E'\\nline two' from generate_series(1, 2000) g;`,
    "stock_analysis",
    "stock_analysis",
  );
});

after(async () => {
  await cluster?.destroy();
  if (backupDir) fs.rmSync(backupDir, { recursive: true, force: true });
});

describe("backup and restore", () => {
  let original: Record<string, string>;

  it("backs up atomically with a manifest, row counts and globals", async () => {
    original = await fingerprint();
    const r = await runAsPostgres(scriptPath("pg-backup.sh"), [], env);
    assert.equal(r.code, 0, r.stderr);
    const [name] = backups();
    assert.match(name, /^backup-\d{8}T\d{6}Z$/);
    assert.deepEqual(
      fs.readdirSync(backupDir).filter((n) => n.startsWith(".")),
      [],
      "no temp dir left behind",
    );
    const dir = path.join(backupDir, name);
    assert.ok(fs.readdirSync(path.join(dir, "db")).some((f) => f.endsWith(".dat.zst")));
    assert.match(
      fs.readFileSync(path.join(dir, "globals.sql"), "utf8"),
      /CREATE ROLE stock_analysis/,
    );
    const counts = fs.readFileSync(path.join(dir, "rowcounts.tsv"), "utf8");
    assert.match(counts, /^public\tprices\t200000$/m);
    // Every file but the manifest itself is covered.
    const manifest = fs.readFileSync(path.join(dir, "MANIFEST.sha256"), "utf8");
    assert.match(manifest, /toc\.dat/);
    assert.match(manifest, /rowcounts\.tsv/);
  });

  it("restores (replace mode) to identical row counts and checksums, keeping the old database", async () => {
    await cluster.sql(
      0,
      "delete from prices where id % 3 = 0; update notes set body = 'changed'; insert into stocks values ('NEW', 'new', null)",
      "stock_analysis",
    );
    assert.notDeepEqual(await fingerprint(), original);
    const r = await runAsPostgres(scriptPath("pg-restore.sh"), [], env);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await fingerprint(), original);
    const dbs = await cluster.sql(
      0,
      "select datname from pg_database where datname like 'stock_analysis%' order by 1",
    );
    const pre = dbs.split("\n").find((d) => d.startsWith("stock_analysis_pre_restore_"));
    assert.ok(pre, dbs);
    assert.equal(
      await cluster.sql(0, "select count(*) from stocks where symbol = 'NEW'", pre),
      "1",
    );
    assert.equal(
      await cluster.sql(
        0,
        "select pg_get_userbyid(datdba) from pg_database where datname = 'stock_analysis'",
      ),
      "stock_analysis",
    );
    // The app still owns and can write its tables after the swap.
    await cluster.sql(
      0,
      "insert into notes values (999999, 'after restore')",
      "stock_analysis",
      "stock_analysis",
    );
  });

  it("verifies the newest backup by a scratch restore, and fails on a truncated file", async () => {
    await new Promise((r) => setTimeout(r, 1100)); // backup names have one-second resolution
    const gz = await runAsPostgres(scriptPath("pg-backup.sh"), [], {
      ...env,
      BACKUP_COMPRESSION: "gzip",
    });
    assert.equal(gz.code, 0, gz.stderr);
    const ok = await runAsPostgres(scriptPath("pg-verify.sh"), [], env);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, /verification of backup-\S+ passed/);
    assert.equal(
      await cluster.sql(
        0,
        "select count(*) from pg_database where datname = 'stock_analysis_verify'",
      ),
      "0",
    );

    const newest = backups().at(-1)!;
    const db = path.join(backupDir, newest, "db");
    const biggest = fs
      .readdirSync(db)
      .filter((f) => f !== "toc.dat")
      .map((f) => path.join(db, f))
      .sort((a, b) => fs.statSync(b).size - fs.statSync(a).size)[0];
    fs.truncateSync(biggest, Math.floor(fs.statSync(biggest).size / 2));
    const bad = await runAsPostgres(scriptPath("pg-verify.sh"), [], env);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /failed checksum verification/);
  });

  it("rejects a backup whose data no longer matches its row counts even with a fresh manifest", async () => {
    // Tamper consistently (manifest regenerated), so only the row-count check can catch it.
    const newest = backups()[0];
    const dir = path.join(backupDir, newest);
    fs.writeFileSync(
      path.join(dir, "rowcounts.tsv"),
      fs.readFileSync(path.join(dir, "rowcounts.tsv"), "utf8").replace("\t200000", "\t200001"),
    );
    execFileSync("bash", [
      "-c",
      "cd \"$1\" && find . -type f ! -name MANIFEST.sha256 -printf '%P\\0' | xargs -0 sha256sum > MANIFEST.sha256",
      "_",
      dir,
    ]);
    const r = await runAsPostgres(scriptPath("pg-restore.sh"), [], {
      ...env,
      BACKUP_NAME: newest,
      RESTORE_MODE: "scratch",
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /prices has 200000 rows, backup had 200001/);
  });

  it("exits non-zero and leaves no backup when the server is unreachable", async () => {
    const before = backups();
    const r = await runAsPostgres(scriptPath("pg-backup.sh"), [], { ...env, PGPORT: "1" });
    assert.notEqual(r.code, 0);
    assert.deepEqual(backups(), before);
    assert.deepEqual(
      fs.readdirSync(backupDir).filter((n) => n.startsWith(".")),
      [],
    );
  });
});

describe("maintenance (pg-maintenance.sh)", () => {
  it("vacuums and analyzes every database", async () => {
    await cluster.sql(0, "select pg_stat_reset()", "stock_analysis");
    const r = await runAsPostgres(scriptPath("pg-maintenance.sh"), [], env);
    assert.equal(r.code, 0, r.stderr);
    const stats = await cluster.sql(
      0,
      "select vacuum_count > 0 and analyze_count > 0 from pg_stat_user_tables where relname = 'prices'",
      "stock_analysis",
    );
    assert.equal(stats, "t");
  });

  it("fails when the server is unreachable", async () => {
    const r = await runAsPostgres(scriptPath("pg-maintenance.sh"), [], { ...env, PGPORT: "1" });
    assert.notEqual(r.code, 0);
  });
});

describe("retention (pg-backup-prune.sh)", () => {
  /** A small intact backup dir (manifest valid) with a faked age in days. */
  function fake(dir: string, ageDays: number, intact = true): string {
    const name = `backup-${String(100 + ageDays)}-fake`;
    const d = path.join(dir, name);
    writePgFile(path.join(d, "backup.meta"), `name=${name}\n`, 0o644);
    writePgFile(path.join(d, "db/toc.dat"), `toc of ${name}\n`.repeat(100), 0o644);
    execFileSync("bash", [
      "-c",
      'cd "$1" && sha256sum backup.meta db/toc.dat > MANIFEST.sha256',
      "_",
      d,
    ]);
    if (!intact) fs.truncateSync(path.join(d, "db/toc.dat"), 10);
    execFileSync("touch", ["-d", `${ageDays} days ago`, d]);
    return name;
  }

  async function prune(dir: string, days: number, keepMin: number): Promise<string[]> {
    execFileSync("chown", ["-R", "postgres:postgres", dir]);
    const r = await runAsPostgres(scriptPath("pg-backup-prune.sh"), [], {
      BACKUP_DIR: dir,
      BACKUP_RETENTION_DAYS: String(days),
      BACKUP_KEEP_MIN: String(keepMin),
    });
    assert.equal(r.code, 0, r.stderr);
    return fs.readdirSync(dir).sort();
  }

  it("deletes backups older than the retention and keeps younger ones", async () => {
    const dir = pgTempDir("prune-");
    const names = [1, 2, 3, 10, 29, 31, 40, 50].map((d) => fake(dir, d));
    const kept = await prune(dir, 30, 3);
    assert.deepEqual(kept, names.slice(0, 5).sort());
    fs.rmSync(dir, { recursive: true });
  });

  it("never goes below the newest N intact backups, however old", async () => {
    const dir = pgTempDir("prune-");
    const names = [40, 41, 42, 43, 44].map((d) => fake(dir, d));
    assert.deepEqual(await prune(dir, 30, 3), names.slice(0, 3).sort());
    fs.rmSync(dir, { recursive: true });
  });

  it("does not count damaged backups towards the minimum", async () => {
    const dir = pgTempDir("prune-");
    const damaged = fake(dir, 35, false);
    const a = fake(dir, 36);
    const b = fake(dir, 37);
    fake(dir, 38);
    const young = fake(dir, 5, false); // damaged but within retention: age policy only
    const kept = await prune(dir, 30, 2);
    assert.deepEqual(kept, [a, b, young].sort());
    assert.ok(!kept.includes(damaged));
    fs.rmSync(dir, { recursive: true });
  });

  it("removes temp dirs of crashed runs after 6 hours only", async () => {
    const dir = pgTempDir("prune-");
    const keep = fake(dir, 1);
    fs.mkdirSync(path.join(dir, ".partial-old"));
    fs.mkdirSync(path.join(dir, ".partial-new"));
    execFileSync("touch", ["-d", "7 hours ago", path.join(dir, ".partial-old")]);
    assert.deepEqual(await prune(dir, 30, 1), [".partial-new", keep]);
    fs.rmSync(dir, { recursive: true });
  });
});
