import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  pgHbaEntries,
  postgresqlParameters,
  quantityToBytes,
} from "../../components/postgres/content";
import { hbaLine } from "../../components/postgres/patroni";

describe("postgresql parameters (handed to Patroni)", () => {
  it("sizes memory from the container limit (prod 4Gi)", () => {
    const p = postgresqlParameters({ memoryBytes: quantityToBytes("4Gi"), members: 3 });
    assert.equal(p.shared_buffers, "1024MB");
    assert.equal(p.effective_cache_size, "3072MB");
    assert.equal(p.maintenance_work_mem, "256MB");
    assert.equal(p.work_mem, "5MB");
  });

  it("enables replication, rewind, pg_stat_statements and scram", () => {
    const p = postgresqlParameters({ memoryBytes: quantityToBytes("512Mi"), members: 3 });
    assert.equal(p.wal_level, "replica");
    assert.equal(p.wal_log_hints, "on");
    assert.equal(p.hot_standby, "on");
    assert.equal(p.max_wal_senders, 7);
    assert.equal(p.max_replication_slots, 7);
    assert.equal(p.max_slot_wal_keep_size, "10GB");
    assert.equal(p.shared_preload_libraries, "pg_stat_statements");
    assert.equal(p.password_encryption, "scram-sha-256");
  });

  it("leaves what Patroni owns to Patroni", () => {
    const p = postgresqlParameters({ memoryBytes: 2 ** 28, members: 2 });
    for (const k of [
      "listen_addresses",
      "port",
      "hba_file",
      "synchronous_standby_names",
      "primary_conninfo",
    ])
      assert.ok(!(k in p), `${k} must be left to Patroni`);
  });

  it("parses Kubernetes memory quantities", () => {
    assert.equal(quantityToBytes("512Mi"), 512 * 2 ** 20);
    assert.equal(quantityToBytes("1G"), 1e9);
    assert.throws(() => quantityToBytes("lots"));
  });
});

describe("pg_hba rows", () => {
  it("uses scram-sha-256 for every TCP entry incl. replication, peer only for local postgres", () => {
    const rules = pgHbaEntries().map(hbaLine);
    assert.ok(rules.includes("host replication replicator 0.0.0.0/0 scram-sha-256"));
    for (const l of rules.filter((r) => r.startsWith("host"))) assert.match(l, /scram-sha-256$/);
    assert.ok(!rules.some((l) => /\b(trust|md5|password)\b/.test(l)));
    assert.deepEqual(
      rules.filter((l) => l.endsWith("peer")),
      ["local all postgres peer"],
    );
  });
});
