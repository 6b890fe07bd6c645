/**
 * The metric catalogue against real exporters (Debian packages) scraping real PostgreSQL and
 * Redis on loopback: every name our rules and dashboards rely on must really be exported.
 * kube-state-metrics, kubelet, celery-exporter and ingress-nginx have no Debian package; their
 * catalogue entries follow upstream documentation.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { metricSource } from "../../components/monitoring/catalogue";
import {
  Daemon,
  scrapeMetricNames,
  startExporter,
  startPostgresPair,
  startRedisClusterNode,
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
});
