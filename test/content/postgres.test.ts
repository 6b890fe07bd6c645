import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pgHbaConf, postgresqlConf, quantityToBytes } from "../../components/postgres/content";

const members = ["postgresql_0", "postgresql_1", "postgresql_2"];

function setting(conf: string, key: string): string | undefined {
  return new RegExp(`^${key} = (.*)$`, "m").exec(conf)?.[1];
}

describe("postgresql.conf", () => {
  it("sizes memory from the container limit (prod 4Gi)", () => {
    const conf = postgresqlConf({
      memoryBytes: quantityToBytes("4Gi"),
      members,
      synchronous: true,
    });
    assert.equal(setting(conf, "shared_buffers"), "1024MB");
    assert.equal(setting(conf, "effective_cache_size"), "3072MB");
    assert.equal(setting(conf, "maintenance_work_mem"), "256MB");
    assert.equal(setting(conf, "work_mem"), "5MB");
  });

  it("enables replication, rewind, pg_stat_statements and scram", () => {
    const conf = postgresqlConf({
      memoryBytes: quantityToBytes("512Mi"),
      members,
      synchronous: true,
    });
    assert.equal(setting(conf, "wal_level"), "replica");
    assert.equal(setting(conf, "wal_log_hints"), "on");
    assert.equal(setting(conf, "hot_standby"), "on");
    assert.equal(setting(conf, "max_wal_senders"), "7");
    assert.equal(setting(conf, "max_replication_slots"), "7");
    assert.equal(setting(conf, "max_slot_wal_keep_size"), "'10GB'");
    assert.equal(setting(conf, "shared_preload_libraries"), "'pg_stat_statements'");
    assert.equal(setting(conf, "password_encryption"), "'scram-sha-256'");
    assert.equal(
      setting(conf, "synchronous_standby_names"),
      "'ANY 1 (postgresql_0, postgresql_1, postgresql_2)'",
    );
  });

  it("leaves replication asynchronous when sync is off or there is no replica", () => {
    for (const [m, sync] of [
      [members, false],
      [["postgresql_0"], true],
    ] as const) {
      const conf = postgresqlConf({
        memoryBytes: 512 * 2 ** 20,
        members: [...m],
        synchronous: sync,
      });
      assert.equal(setting(conf, "synchronous_standby_names"), "''");
    }
  });

  it("parameterises port, listen address and socket directory", () => {
    const conf = postgresqlConf({
      memoryBytes: 2 ** 28,
      members,
      synchronous: false,
      port: 6543,
      listenAddresses: "127.0.0.1",
      socketDirectory: "/tmp/x",
    });
    assert.equal(setting(conf, "port"), "6543");
    assert.equal(setting(conf, "listen_addresses"), "'127.0.0.1'");
    assert.equal(setting(conf, "unix_socket_directories"), "'/tmp/x'");
  });

  it("parses Kubernetes memory quantities", () => {
    assert.equal(quantityToBytes("512Mi"), 512 * 2 ** 20);
    assert.equal(quantityToBytes("1G"), 1e9);
    assert.throws(() => quantityToBytes("lots"));
  });
});

describe("pg_hba.conf", () => {
  it("uses scram-sha-256 for every TCP entry incl. replication, peer only for local postgres", () => {
    const hba = pgHbaConf();
    const rules = hba.split("\n").filter((l) => l && !l.startsWith("#"));
    assert.ok(
      rules.some((l) =>
        /^host\s+replication\s+replicator\s+0\.0\.0\.0\/0\s+scram-sha-256$/.test(l),
      ),
    );
    for (const l of rules.filter((r) => r.startsWith("host"))) assert.match(l, /scram-sha-256$/);
    assert.doesNotMatch(hba, /\b(trust|md5|password)\b/);
    assert.deepEqual(
      rules.filter((l) => l.endsWith("peer")),
      ["local   all          postgres              peer"],
    );
  });
});
