// The weekly maintenance script on real PostgreSQL 15 (the very file CronJob
// postgresql-maintenance runs).
import assert from "node:assert/strict";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { scriptPath } from "../../components/postgres/content";
import { PgCluster, runAsPostgres } from "../helpers/postgres";

let cluster: PgCluster;
let env: Record<string, string>;

before(async () => {
  cluster = await PgCluster.create({ members: 1 });
  await cluster.start(0);
  await cluster.waitAppReady(0);
  env = {
    PGHOST: "127.0.0.1",
    PGPORT: String(cluster.ports[0]),
    PG_PASSWORD_FILE: path.join(cluster.root, "secrets/superuser"),
  };
  await cluster.sql(
    0,
    `create table prices (id bigserial primary key, symbol text, close numeric(12,4));
     insert into prices (symbol, close) select 'S' || (g % 500), g / 7.0 from generate_series(1, 20000) g;`,
    "stock_analysis",
    "stock_analysis",
  );
});

after(async () => {
  await cluster?.destroy();
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
