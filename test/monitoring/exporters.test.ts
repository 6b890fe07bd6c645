/**
 * The metric catalogue against real exporters (Debian packages) scraping real PostgreSQL and
 * Redis on loopback: every name our rules and dashboards rely on must really be exported.
 * kube-state-metrics, kubelet, celery-exporter and ingress-nginx have no Debian package; their
 * catalogue entries follow upstream documentation.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { metricSource } from "../../components/monitoring/catalogue";
import { celeryQueueKeys } from "../../components/redis/content";
import {
  Daemon,
  scrapeMetricNames,
  startExporter,
  startPostgresPair,
  run,
  startRedisClusterNode,
  startRedisServer,
} from "../helpers/monitoring-daemons";

const stops: (() => unknown)[] = [];
const exporters: Daemon[] = [];

function missing(id: string, scraped: Set<string>): string[] {
  return metricSource(id).metrics.filter((m) => !scraped.has(m));
}

describe("metric catalogue vs real exporters", () => {
  let pg: Awaited<ReturnType<typeof startPostgresPair>>;
  let redis: Awaited<ReturnType<typeof startRedisClusterNode>>;
  before(async () => {
    pg = await startPostgresPair();
    stops.push(pg.stop);
    redis = await startRedisClusterNode();
    stops.push(redis.stop);
  });
  after(async () => {
    for (const e of exporters) await e.stop();
    for (const s of stops.reverse()) await s();
  });

  test("node_exporter exports every catalogued node metric", async () => {
    const e = await startExporter("prometheus-node-exporter", (listen) => [
      `--web.listen-address=${listen}`,
    ]);
    exporters.push(e.daemon);
    assert.deepEqual(missing("node-exporter", await scrapeMetricNames(e.url)), []);
  });

  test("postgres_exporter on a primary with a streaming replica exports every catalogued pg metric", async () => {
    const e = await startExporter(
      "prometheus-postgres-exporter",
      (listen) => [`--web.listen-address=${listen}`],
      {
        DATA_SOURCE_NAME: pg.primaryDsn,
      },
    );
    exporters.push(e.daemon);
    // pg_stat_replication rows appear once the replica has connected.
    let names = new Set<string>();
    for (let i = 0; i < 50; i++) {
      names = await scrapeMetricNames(e.url);
      if (names.has("pg_stat_replication_pg_wal_lsn_diff")) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.deepEqual(missing("postgres-exporter", names), []);
    const text = await (await fetch(e.url)).text();
    assert.match(text, /^pg_up 1$/m);
    assert.match(text, /^pg_stat_replication_pg_wal_lsn_diff\{[^}]*state="streaming"[^}]*\} /m);
  });

  test("redis_exporter on a cluster-enabled node exports every catalogued redis metric", async () => {
    const e = await startExporter("prometheus-redis-exporter", (listen) => [
      `--web.listen-address=${listen}`,
      `--redis.addr=${redis.addr}`,
    ]);
    exporters.push(e.daemon);
    const names = await scrapeMetricNames(e.url);
    assert.deepEqual(missing("redis-exporter", names), []);
    const text = await (await fetch(e.url)).text();
    assert.match(text, /^redis_up 1$/m);
    // A lone node without slots reports cluster_state:fail, which is what RedisClusterNotOk reads.
    assert.match(text, /^redis_cluster_state 0$/m);
  });

  test("redis_exporter with the broker's key setting exports each Celery queue's length as redis_key_size", async () => {
    const broker = await startRedisServer();
    stops.push(broker.stop);
    const cli = (...args: string[]) => run("redis-cli", ["-p", String(broker.port), ...args]);
    // Celery's Redis transport keeps a queue as a list named after it (LPUSH, BRPOP).
    const pushed = cli("LPUSH", "celery", "t1", "t2", "t3", "t4");
    assert.equal(pushed.output.trim(), "4", pushed.output);
    cli("LPUSH", "reports", "r1");
    cli("RPOP", "reports"); // emptied: Redis deletes the list
    // The very env value the broker pods' sidecars get (components/redis/redis-broker.ts).
    const e = await startExporter(
      "prometheus-redis-exporter",
      (listen) => [`--web.listen-address=${listen}`, `--redis.addr=${broker.addr}`],
      { REDIS_EXPORTER_CHECK_SINGLE_KEYS: celeryQueueKeys(["celery", "reports"]) },
    );
    exporters.push(e.daemon);
    assert.deepEqual(missing("redis-exporter-broker", await scrapeMetricNames(e.url)), []);
    const text = await (await fetch(e.url)).text();
    assert.match(text, /^redis_key_size\{db="db0",key="celery"\} 4$/m);
    // An empty queue reads 0, not a missing series.
    assert.match(text, /^redis_key_size\{db="db0",key="reports"\} 0$/m);
  });
});
