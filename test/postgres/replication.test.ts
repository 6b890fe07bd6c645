// The pod entrypoint on real PostgreSQL 15: bootstrap of a primary and two replicas, streaming,
// then an unplanned failover under synchronous-replication insert load with zero acknowledged
// commits lost, and the crashed primary rejoining as a replica of the new one.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { scriptPath } from "../../components/postgres/content";
import { PG_BIN, PgCluster, runAsPostgres, waitFor } from "../helpers/postgres";

let cluster: PgCluster;

before(async () => {
  cluster = await PgCluster.create({ members: 3, synchronous: true, primary: 0 });
});

after(async () => {
  if (process.env.DEBUG_PG) for (let i = 0; i < 3; i++) console.log(cluster.logs(i));
  await cluster?.destroy();
});

/** One client: sequential autocommit INSERTs over a persistent psql; an id counts as acknowledged
 * only when psql printed the RETURNING row, i.e. the server reported the commit. */
class InsertClient {
  acked: number[] = [];
  private proc?: ChildProcessWithoutNullStreams;
  private stopped = false;
  done: Promise<void>;

  constructor(
    private readonly id: number,
    private readonly target: () => number,
    private readonly c: PgCluster,
  ) {
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    let seq = 0;
    while (!this.stopped) {
      await new Promise<void>((resolve) => {
        const port = this.c.ports[this.target()];
        const p = spawn(
          `${PG_BIN}/psql`,
          [
            "-X",
            "-q",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
            String(port),
          ].concat(["-U", "stock_analysis", "-d", "stock_analysis"]),
          { env: { ...process.env, PGPASSWORD: this.c.passwords.app, PGCONNECT_TIMEOUT: "2" } },
        );
        this.proc = p;
        let buf = "";
        const next = () => {
          if (this.stopped) {
            p.stdin.end();
            return;
          }
          seq += 1;
          p.stdin.write(
            `insert into load (id) values (${this.id * 10_000_000 + seq}) returning id;\n`,
          );
        };
        p.stdout.on("data", (d: Buffer) => {
          buf += d.toString();
          let nl: number;
          while ((nl = buf.indexOf("\n")) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (/^\d+$/.test(line)) {
              this.acked.push(Number(line));
              next();
            }
          }
        });
        p.stderr.resume();
        p.stdin.on("error", () => undefined);
        p.on("close", () => resolve());
        next();
      });
      if (!this.stopped) await new Promise((r) => setTimeout(r, 200));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.proc?.stdin.end();
    await this.done;
  }
}

describe("postgres entrypoint: primary + 2 replicas", () => {
  it("bootstraps a primary (initdb, roles, database, pg_stat_statements) and two streaming replicas", async () => {
    cluster.start(0);
    await cluster.waitAppReady(0);
    cluster.start(1);
    cluster.start(2);
    await cluster.waitStreaming(1);
    await cluster.waitStreaming(2);
    assert.equal(await cluster.role(1), "standby");
    assert.equal(await cluster.role(2), "standby");
    const slots = await cluster.sql(
      0,
      "select string_agg(slot_name || ':' || active, ',' order by slot_name) from pg_replication_slots",
    );
    assert.equal(slots, "postgresql_1:true,postgresql_2:true");
    assert.equal(
      await cluster.sql(
        0,
        "select sync_state from pg_stat_replication order by application_name limit 1",
      ),
      "quorum",
    );
    assert.equal(
      await cluster.sql(
        0,
        "select extname from pg_extension where extname = 'pg_stat_statements'",
        "stock_analysis",
      ),
      "pg_stat_statements",
    );
    // scram everywhere: the app role logs in over TCP with its password.
    assert.equal(
      await cluster.sql(0, "select current_user", "stock_analysis", "stock_analysis"),
      "stock_analysis",
    );
  });

  it("replicates writes on the primary to both replicas", async () => {
    await cluster.sql(
      0,
      "create table load (id bigint primary key, at timestamptz default now()); insert into load select g from generate_series(1, 1000) g",
      "stock_analysis",
      "stock_analysis",
    );
    for (const i of [1, 2]) {
      await waitFor(
        `rows on member ${i}`,
        async () =>
          (await cluster.sql(i, "select count(*) from load", "stock_analysis")) === "1000",
      );
    }
    await assert.rejects(
      cluster.sql(1, "insert into load (id) values (0)", "stock_analysis"),
      /read-only/,
    );
  });

  it("loses no acknowledged commit when the primary is killed and member 1 is promoted", async () => {
    let primary = 0;
    const clients = [1, 2, 3, 4].map((n) => new InsertClient(n, () => primary, cluster));
    await waitFor("load to run", async () => clients.every((c) => c.acked.length > 50), 30_000);
    await cluster.crash(0);
    const killedAt = Date.now();
    const ackedBeforeKill = clients.reduce((n, c) => n + c.acked.length, 0);
    primary = 1;
    cluster.setPrimary(1); // what `pulumi config set postgres.primary 1 && pulumi up` does
    await cluster.waitRole(1, "primary");
    await waitFor(
      "writes on the new primary",
      async () => clients.reduce((n, c) => n + c.acked.length, 0) > ackedBeforeKill + 200,
      60_000,
    );
    const failoverMs = Date.now() - killedAt;
    await Promise.all(clients.map((c) => c.stop()));
    const acked = clients.flatMap((c) => c.acked).filter((id) => id > 1000);
    const present = new Set(
      (await cluster.sql(1, "select id from load where id > 1000", "stock_analysis"))
        .split("\n")
        .filter(Boolean)
        .map(Number),
    );
    const lost = acked.filter((id) => !present.has(id));
    assert.ok(acked.length > 200, `too little load: ${acked.length}`);
    assert.deepEqual(lost, [], `${lost.length} acknowledged commits lost of ${acked.length}`);
    console.log(
      `failover: ${acked.length} acknowledged commits, none lost; kill -> writes ${failoverMs} ms`,
    );
    // The other replica follows the new primary.
    await cluster.waitStreaming(2);
    await waitFor(
      "member 2 to catch up",
      async () =>
        (await cluster.sql(2, "select count(*) from load", "stock_analysis")) ===
        (await cluster.sql(1, "select count(*) from load", "stock_analysis")),
    );
  });

  it("brings the crashed old primary back as a replica of the new primary (pg_rewind)", async () => {
    cluster.start(0);
    await cluster.waitRole(0, "standby");
    await cluster.waitStreaming(0);
    await cluster.sql(1, "insert into load (id) values (99999999)", "stock_analysis");
    await waitFor(
      "row on rejoined member 0",
      async () =>
        (await cluster.sql(
          0,
          "select count(*) from load where id = 99999999",
          "stock_analysis",
        )) === "1",
    );
    assert.match(cluster.logs(0), /rewinding onto member 1/);
    const slots = await cluster.sql(
      1,
      "select string_agg(slot_name || ':' || active, ',' order by slot_name) from pg_replication_slots",
    );
    assert.equal(slots, "postgresql_0:true,postgresql_2:true");
  });

  it("switches over declaratively back to member 0: 1 steps down and rejoins", async () => {
    cluster.setPrimary(0);
    await cluster.waitRole(0, "primary");
    await cluster.waitRole(1, "standby");
    await cluster.waitStreaming(1);
    await cluster.waitStreaming(2);
    await cluster.sql(0, "insert into load (id) values (99999998)", "stock_analysis");
    for (const i of [1, 2]) {
      await waitFor(
        `row on member ${i}`,
        async () =>
          (await cluster.sql(
            i,
            "select count(*) from load where id = 99999998",
            "stock_analysis",
          )) === "1",
      );
    }
  });

  it("emergency failover (pg-failover.sh) promotes member 2 while the config still names 0", async () => {
    await cluster.crash(0);
    const follow = await runAsPostgres(
      scriptPath("pg-failover.sh"),
      ["follow", "2"],
      cluster.memberEnv(1),
    );
    assert.equal(follow.code, 0, follow.stderr);
    const promote = await runAsPostgres(
      scriptPath("pg-failover.sh"),
      ["promote"],
      cluster.memberEnv(2),
      150_000,
    );
    assert.equal(promote.code, 0, promote.stderr);
    assert.equal(await cluster.role(2), "primary");
    await cluster.sql(2, "insert into load (id) values (99999997)", "stock_analysis");
    await cluster.waitStreaming(1);
    // The old primary comes back with the stale config (0) and must follow 2, not start as primary.
    cluster.start(0);
    await cluster.waitRole(0, "standby");
    await cluster.waitStreaming(0);
    assert.equal(await cluster.role(2), "primary");
    // Committing `postgres.primary 2` ends the emergency state: the pins disappear.
    cluster.setPrimary(2);
    await waitFor("overrides to be cleared", async () =>
      [0, 1, 2].every((i) => !fs.existsSync(path.join(cluster.root, `m${i}/primary.override`))),
    );
    const status = await runAsPostgres(
      scriptPath("pg-failover.sh"),
      ["status"],
      cluster.memberEnv(1),
    );
    assert.match(status.stdout, /member=1 role=standby configured=2 override=none/);
  });
});
