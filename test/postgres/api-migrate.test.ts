/**
 * The migration Job's scripts, run for real against PostgreSQL 15 on loopback: the init
 * container's pre-migrate-backup.sh and the default migration command exactly as rendered
 * (components/config/migration.ts), with only the pod's paths pointed at temp files.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import {
  backupScriptPath,
  migrateContainerCommand,
  migrationScripts,
} from "../../components/app/migration";
import { DEFAULT_MIGRATION_COMMAND } from "../../components/config/migration";
import {
  PG_PATH,
  PgCluster,
  pgTempDir,
  pgUser,
  runAsPostgres,
  writePgFile,
} from "../helpers/postgres";

/** Runs `command` as OS user postgres (the pod's psql runs as a non-root user too). */
function runCommand(
  command: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command[0], command.slice(1), {
      env: { PATH: PG_PATH, HOME: os.tmpdir(), LANG: "C.UTF-8", ...env },
      uid: pgUser.uid,
      gid: pgUser.gid,
      stdio: ["ignore", "ignore", "pipe"],
      timeout: 120_000,
    });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code: code ?? -1, stderr }));
  });
}

describe("the Job's scripts against a real PostgreSQL", () => {
  let cluster: PgCluster;
  let work: string;
  let databaseUrl: string;
  const schema = () =>
    cluster.sql(
      0,
      `select string_agg(table_name || '.' || column_name, ',' order by table_name, column_name)
         from information_schema.columns c
         join information_schema.tables t using (table_schema, table_name)
        where table_schema = 'public' and t.table_type = 'BASE TABLE'`,
      "stock_analysis",
    );

  before(async () => {
    cluster = await PgCluster.create({ members: 1 });
    cluster.start(0);
    await cluster.waitAppReady(0);
    work = pgTempDir("migrate-");
    databaseUrl = `postgresql://stock_analysis:${cluster.passwords.app}@127.0.0.1:${cluster.ports[0]}/stock_analysis`;
    await cluster.sql(
      0,
      `create table stocks (symbol text primary key, name text not null);
       insert into stocks select 'S' || g, 'Company ' || g from generate_series(1, 1000) g;`,
      "stock_analysis",
      "stock_analysis",
    );
  });
  after(async () => {
    await cluster?.destroy();
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  /**
   * The `migrate` container's command as rendered (the wrapper from the scripts ConfigMap's data,
   * then the default migration command), with the pod's paths pointed at the test's.
   */
  const migrationCommand = (sqlFile: string) => {
    const scripts = path.join(work, "scripts");
    for (const [name, text] of Object.entries(migrationScripts()))
      writePgFile(path.join(scripts, name), text, 0o555);
    return migrateContainerCommand(DEFAULT_MIGRATION_COMMAND).map((a, i) =>
      i === 0
        ? "/bin/sh" // the test's PATH may lack it; the pod's image has it on PATH
        : a === "$(DATABASE_URL)"
          ? databaseUrl
          : a.replace("/scripts/", `${scripts}/`).replace("/migrations/upgrade.sql", sqlFile),
    );
  };

  it("backup: a restorable dump of schema and data, atomically named, pruned to MIGRATE_BACKUP_KEEP", async () => {
    const dir = path.join(work, "backups");
    fs.mkdirSync(dir);
    fs.chownSync(dir, pgUser.uid, pgUser.gid);
    const env = {
      DATABASE_URL: databaseUrl,
      MIGRATE_BACKUP_DIR: dir,
      MIGRATE_BACKUP_KEEP: "2",
      MIGRATE_TAG: "t1",
    };
    for (let i = 0; i < 3; i++) {
      const r = await runAsPostgres(backupScriptPath, [], env);
      assert.equal(r.code, 0, r.stderr);
      await new Promise((res) => setTimeout(res, 1100)); // names carry the second
    }
    const dumps = fs.readdirSync(dir).sort();
    assert.equal(dumps.length, 2, dumps.join(" "));
    assert.ok(
      dumps.every((d) => /^pre-migrate-\d{8}T\d{6}Z-t1\.dump$/.test(d)),
      dumps.join(" "),
    );
    // Restore the newest into a scratch database the way docs/RUNBOOK.md does (as the superuser:
    // the dump carries the pg_stat_statements extension): the table and its 1000 rows come back.
    await cluster.sql(0, "create database scratch owner stock_analysis");
    const restore = await runCommand(
      [
        "pg_restore",
        "--clean",
        "--if-exists",
        "--single-transaction",
        "--exit-on-error",
        "--dbname=scratch",
        path.join(dir, dumps[1]),
      ],
      {
        PGHOST: "127.0.0.1",
        PGPORT: String(cluster.ports[0]),
        PGUSER: "postgres",
        PGPASSWORD: cluster.passwords.superuser,
      },
    );
    assert.equal(restore.code, 0, restore.stderr);
    assert.equal(await cluster.sql(0, "select count(*) from stocks", "scratch"), "1000");
  });

  it("backup: an unreachable database exits non-zero and leaves no file", async () => {
    const dir = path.join(work, "failed");
    fs.mkdirSync(dir);
    fs.chownSync(dir, pgUser.uid, pgUser.gid);
    const r = await runAsPostgres(backupScriptPath, [], {
      DATABASE_URL: databaseUrl.replace(`:${cluster.ports[0]}/`, ":1/"),
      MIGRATE_BACKUP_DIR: dir,
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /no migration runs without a fresh backup/);
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  it("migration: the default command applies the SQL", async () => {
    const sql = path.join(work, "upgrade-ok.sql");
    writePgFile(
      sql,
      "alter table stocks add column sector text;\ncreate table prices (symbol text references stocks, close numeric);\n",
      0o644,
    );
    const r = await runCommand(migrationCommand(sql));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      await schema(),
      "prices.close,prices.symbol,stocks.name,stocks.sector,stocks.symbol",
    );
  });

  it("migration: a failing statement exits non-zero and leaves the schema unchanged (one transaction)", async () => {
    const before = await schema();
    const sql = path.join(work, "upgrade-bad.sql");
    writePgFile(
      sql,
      "alter table stocks add column listed date;\ncreate table notes (id int);\nselect 1 / 0;\ncreate table never (id int);\n",
      0o644,
    );
    const r = await runCommand(migrationCommand(sql));
    assert.notEqual(r.code, 0, "a failed migration must fail the Job");
    assert.match(r.stderr, /division by zero/);
    assert.equal(await schema(), before, "statements before the error were rolled back");
    assert.equal(await cluster.sql(0, "select count(*) from stocks", "stock_analysis"), "1000");
  });

  it("migration: an API image without psql fails with one line naming psql, nothing applied", async () => {
    const before = await schema();
    const sql = path.join(work, "upgrade-no-psql.sql");
    writePgFile(sql, "create table never (id int);\n", 0o644);
    const r = await runCommand(migrationCommand(sql), { PATH: path.join(work, "empty-bin") });
    assert.equal(r.code, 127, r.stderr);
    assert.deepEqual(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, /^migrate: 'psql' is not on the API image's PATH .*migration\.command/);
    assert.equal(await schema(), before);
  });

  it("migration: an API image without the SQL file fails with one line naming it, nothing applied", async () => {
    const before = await schema();
    const missing = path.join(work, "migrations/upgrade.sql");
    const r = await runCommand(migrationCommand(missing));
    assert.equal(r.code, 66, r.stderr);
    assert.deepEqual(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
    assert.equal(
      r.stderr,
      `migrate: migration file ${missing} is missing or unreadable (the API image must contain it, or set migration.command; docs/RUNBOOK.md, "Upgrading")\n`,
    );
    assert.equal(await schema(), before);
  });
});
