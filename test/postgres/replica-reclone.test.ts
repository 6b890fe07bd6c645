// A replica whose slot was invalidated by max_slot_wal_keep_size cannot stream again: the
// entrypoint first tries pg_rewind, then re-clones it from the primary on its own.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { PgCluster, waitFor } from "../helpers/postgres";

let cluster: PgCluster;

before(async () => {
  cluster = await PgCluster.create({
    members: 2,
    maxSlotWalKeepSize: "1MB",
    walKeepSize: "0",
    rejoinAfter: 5,
  });
});

after(async () => {
  await cluster?.destroy();
});

describe("replica beyond the WAL retention cap", () => {
  it("is re-cloned automatically and streams again", async () => {
    cluster.start(0);
    await cluster.waitAppReady(0);
    cluster.start(1);
    await cluster.waitStreaming(1);
    await cluster.stop(1);
    // ~50 MB of WAL with the replica away: its slot falls beyond the 1MB cap and is invalidated.
    await cluster.sql(
      0,
      "create table filler as select g, repeat('x', 500) pad from generate_series(1, 80000) g",
      "stock_analysis",
    );
    for (let i = 0; i < 3; i++) await cluster.sql(0, "select pg_switch_wal(); checkpoint");
    assert.equal(
      await cluster.sql(
        0,
        "select wal_status from pg_replication_slots where slot_name = 'postgresql_1'",
      ),
      "lost",
    );
    cluster.start(1);
    await waitFor("re-clone", async () => /re-cloning/.test(cluster.logs(1)), 90_000, 500);
    await cluster.waitStreaming(1, 120_000);
    assert.equal(await cluster.sql(1, "select count(*) from filler", "stock_analysis"), "80000");
    assert.equal(
      await cluster.sql(
        0,
        "select wal_status from pg_replication_slots where slot_name = 'postgresql_1'",
      ),
      "reserved",
    );
  });
});
