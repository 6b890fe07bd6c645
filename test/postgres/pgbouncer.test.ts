// PgBouncer on the rendered pgbouncer.ini in front of a real PostgreSQL 15 (loopback): auth via
// auth_query, transaction pooling under more clients than the pool, the exporter, and the
// idempotent bootstrap SQL.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import { after, before, describe, it } from "node:test";
import {
  AUTH_FUNCTION,
  POOLER_AUTH_USER,
  poolerExporterUrl,
} from "../../components/postgres/pgbouncer-content";
import { postgresPoolerSchema } from "../../components/config/postgres";
import { RunningPgBouncer, applyPoolerBootstrap, startPgBouncer } from "../helpers/pgbouncer";
import { PG_BIN, PgCluster } from "../helpers/postgres";

const execFileP = promisify(execFile);
const DB = "stock_analysis";
const AUTH_PASSWORD = "pooler-auth-pass";
const POOL = 3;

let cluster: PgCluster;
let bouncer: RunningPgBouncer;

/** psql through a port as a user; rejects with psql's stderr on failure. */
async function psql(
  port: number,
  user: string,
  password: string,
  sql: string,
  db = DB,
): Promise<string> {
  const { stdout } = await execFileP(
    `${PG_BIN}/psql`,
    ["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", String(port)].concat([
      "-U",
      user,
      "-d",
      db,
      "-c",
      sql,
    ]),
    { env: { ...process.env, PGPASSWORD: password, PGCONNECT_TIMEOUT: "5" }, timeout: 60_000 },
  );
  return stdout.trim();
}

const failure = (p: Promise<unknown>) =>
  p.then(
    () => assert.fail("expected the login to be refused"),
    (e: { stderr?: string }) => String(e.stderr ?? e),
  );

before(async () => {
  cluster = await PgCluster.create({ members: 1 });
  cluster.start(0);
  await cluster.waitAppReady(0);
  await applyPoolerBootstrap({
    port: cluster.ports[0],
    database: DB,
    superuserPassword: cluster.passwords.superuser,
    authPassword: AUTH_PASSWORD,
  });
  const pool = postgresPoolerSchema.parse({
    defaultPoolSize: POOL,
    minPoolSize: 0,
    reservePoolSize: 0,
  });
  bouncer = await startPgBouncer({
    ini: { pool, serverHost: "127.0.0.1", serverPort: cluster.ports[0], database: DB },
    authPassword: AUTH_PASSWORD,
  });
});

after(async () => {
  await bouncer?.stop();
  await cluster?.destroy();
});

describe("auth_query through the bootstrap function", () => {
  it("lets the app user in with the password from the Secret, as itself, on the primary", async () => {
    const r = await psql(
      bouncer.port,
      "stock_analysis",
      cluster.passwords.app,
      "select current_user || ' ' || pg_is_in_recovery()",
    );
    assert.equal(r, "stock_analysis false");
  });

  it("refuses a wrong password", async () => {
    const err = await failure(psql(bouncer.port, "stock_analysis", "not-the-password", "select 1"));
    assert.match(err, /SASL authentication failed|password authentication failed/);
  });

  it("refuses superusers and unknown databases (the lookup only serves ordinary roles)", async () => {
    const su = await failure(
      psql(bouncer.port, "postgres", cluster.passwords.superuser, "select 1"),
    );
    assert.match(su, /password authentication failed|no such user/);
    const otherDb = await failure(
      psql(bouncer.port, "stock_analysis", cluster.passwords.app, "select 1", "postgres"),
    );
    // PgBouncer answers an unknown database like a failed login (nothing to look the user up in).
    assert.match(otherDb, /no such database|SASL authentication failed/);
  });

  it("keeps the lookup role unprivileged: EXECUTE on the function only, no pg_shadow", async () => {
    const direct = (sql: string) => psql(cluster.ports[0], POOLER_AUTH_USER, AUTH_PASSWORD, sql);
    assert.equal(
      await direct(
        "select rolsuper::text || rolcreaterole::text || rolreplication::text from pg_roles where rolname = current_user",
      ),
      "falsefalsefalse",
    );
    const err = await failure(direct("select count(*) from pg_shadow"));
    assert.match(err, /permission denied/);
    const row = await direct(
      `select usename, left(passwd, 14) from ${AUTH_FUNCTION}('stock_analysis')`,
    );
    assert.equal(row, "stock_analysis|SCRAM-SHA-256$");
    assert.equal(await direct(`select count(*) from ${AUTH_FUNCTION}('postgres')`), "0");
  });
});

describe("transaction pooling", () => {
  it("serves more clients than the pool with at most pool-size server connections", async () => {
    const clients = 4 * POOL + 3;
    const txPerClient = 4;
    // Each psql holds its client connection for all its transactions; each transaction holds a
    // server connection for ~100 ms, so clients must queue for the POOL server connections.
    const script = Array.from(
      { length: txPerClient },
      (_, i) => `BEGIN; SELECT pg_sleep(0.1); INSERT INTO pooled_writes VALUES (${i}); COMMIT;`,
    ).join("\n");
    await psql(cluster.ports[0], "postgres", cluster.passwords.superuser, "select 1", DB);
    await psql(
      bouncer.port,
      "stock_analysis",
      cluster.passwords.app,
      "create table if not exists pooled_writes (i int)",
    );
    let maxServer = 0;
    let maxWaiting = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const n = Number(
          await cluster.sql(
            0,
            `select count(*) from pg_stat_activity where datname = '${DB}' and usename = 'stock_analysis' and backend_type = 'client backend'`,
          ),
        );
        maxServer = Math.max(maxServer, n);
        const pool = (await bouncer.pools()).find(
          (p) => p.database === DB && p.user === "stock_analysis",
        );
        if (pool) maxWaiting = Math.max(maxWaiting, Number(pool.cl_waiting));
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const results = await Promise.all(
      Array.from(
        { length: clients },
        () =>
          new Promise<number>((resolve) => {
            const child = spawn(
              `${PG_BIN}/psql`,
              [
                "-X",
                "-q",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                String(bouncer.port),
              ].concat(["-U", "stock_analysis", "-d", DB]),
              {
                env: { ...process.env, PGPASSWORD: cluster.passwords.app },
                stdio: ["pipe", "ignore", "inherit"],
              },
            );
            child.stdin.end(script);
            child.on("close", (code) => resolve(code ?? -1));
          }),
      ),
    );
    sampling = false;
    await sampler;
    assert.deepEqual(
      results,
      results.map(() => 0),
      "every client finished all its transactions",
    );
    const rows = await psql(
      bouncer.port,
      "stock_analysis",
      cluster.passwords.app,
      "select count(*) from pooled_writes",
    );
    assert.equal(Number(rows), clients * txPerClient);
    assert.ok(maxServer >= 1, "the sampler saw the pool's server connections");
    assert.ok(maxServer <= POOL, `server connections peaked at ${maxServer} > pool ${POOL}`);
    assert.ok(maxWaiting > 0, "clients queued for the pool (more clients than servers)");
  });

  it("resets session state between clients (server_reset_query DISCARD ALL)", async () => {
    // Outside a transaction a SET is its own transaction; the next client may get that very
    // server connection and must not see the setting.
    const set = await psql(
      bouncer.port,
      "stock_analysis",
      cluster.passwords.app,
      "set work_mem = '77MB'; show work_mem",
    );
    assert.equal(set, "77MB");
    for (let i = 0; i < 2 * POOL; i++) {
      const seen = await psql(
        bouncer.port,
        "stock_analysis",
        cluster.passwords.app,
        "show work_mem",
      );
      assert.notEqual(seen, "77MB");
    }
  });
});

describe("exporter's access to the admin console", () => {
  // The pod's exporter (prometheus-community pgbouncer_exporter) logs in with
  // poolerExporterUrl() and reads these SHOW commands. Its binary is not installable here
  // (not on the Go module proxy; Debian's Python exporter fails on PgBouncer 1.18's SHOW STATS
  // columns), so this checks the contract it relies on with the very connection string.
  const url = () => poolerExporterUrl(bouncer.statsPassword, bouncer.port);
  const show = async (command: string) => {
    const { stdout } = await execFileP(
      `${PG_BIN}/psql`,
      ["-X", "-A", "-F", "\t", url(), "-c", command],
      { timeout: 10_000 },
    );
    return stdout.trim().split("\n");
  };

  it("reads STATS, POOLS, DATABASES, LISTS and CONFIG with the Secret's connection string", async () => {
    for (const c of ["SHOW STATS", "SHOW POOLS", "SHOW DATABASES", "SHOW LISTS", "SHOW CONFIG"])
      assert.ok((await show(c)).length > 1, `${c} returned rows`);
    const [header, ...rows] = await show("SHOW POOLS");
    const cols = header.split("\t");
    const app = rows
      .map((r) => Object.fromEntries(r.split("\t").map((v, i) => [cols[i], v])))
      .find((r) => r.database === DB && r.user === "stock_analysis");
    assert.ok(app, `no pool of ${DB}/stock_analysis in ${rows.join(" | ")}`);
    for (const k of ["cl_active", "cl_waiting", "sv_active", "sv_idle", "maxwait"])
      assert.match(app[k], /^\d+$/, `SHOW POOLS column ${k}`);
    const [cfgHeader, ...cfg] = await show("SHOW CONFIG");
    const kc = cfgHeader.split("\t").indexOf("key");
    const vc = cfgHeader.split("\t").indexOf("value");
    const setting = (k: string) => cfg.map((r) => r.split("\t")).find((r) => r[kc] === k)?.[vc];
    assert.equal(setting("pool_mode"), "transaction");
    assert.equal(setting("default_pool_size"), String(POOL));
  });

  it("cannot change anything: the stats user is refused admin commands", async () => {
    const err = await failure(show("PAUSE"));
    assert.match(err, /admin access needed/);
  });
});

describe("bootstrap SQL", () => {
  it("is idempotent and takes a new password on a re-run", async () => {
    const again = (authPassword: string) =>
      applyPoolerBootstrap({
        port: cluster.ports[0],
        database: DB,
        superuserPassword: cluster.passwords.superuser,
        authPassword,
      });
    const r = await again(AUTH_PASSWORD);
    assert.equal(r.stderr.replace(/^.*NOTICE:.*already exists, skipping\n?/gm, ""), "");
    assert.equal(
      await cluster.sql(0, `select count(*) from pg_roles where rolname = '${POOLER_AUTH_USER}'`),
      "1",
    );
    await again("rotated-pass");
    assert.equal(await psql(cluster.ports[0], POOLER_AUTH_USER, "rotated-pass", "select 1"), "1");
    const old = await failure(psql(cluster.ports[0], POOLER_AUTH_USER, AUTH_PASSWORD, "select 1"));
    assert.match(old, /password authentication failed/);
    // The password never reaches pg_stat_statements (when loaded) nor the server log.
    const stmts = await cluster
      .sql(0, "select count(*) from pg_stat_statements where query ilike '%rotated-pass%'", DB)
      .catch(() => "0");
    assert.equal(stmts, "0");
    assert.doesNotMatch(cluster.logs(0), /rotated-pass/);
    await again(AUTH_PASSWORD);
  });
});
