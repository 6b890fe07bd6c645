import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  REDIS_SCRIPT_NAMES,
  brokerConf,
  cacheClusterUrl,
  celeryBrokerSettings,
  clusterNodeConf,
  maxmemoryFor,
  memoryQuantityBytes,
  redisScripts,
  sentinelConf,
} from "../../components/redis/content";

const lines = (text: string) => text.split("\n");

describe("redis content", () => {
  it("sizes maxmemory as 70% of the container limit", () => {
    assert.equal(memoryQuantityBytes("1Gi"), 1073741824);
    assert.equal(memoryQuantityBytes("64M"), 64e6);
    assert.equal(maxmemoryFor(1000), 700);
    assert.throws(() => memoryQuantityBytes("lots"));
    assert.throws(() => maxmemoryFor(0));
  });

  it("cluster node conf carries the node timeout and cache eviction, broker conf never evicts", () => {
    const node = lines(clusterNodeConf({ maxmemoryBytes: 123, nodeTimeoutMs: 2500 }));
    assert.ok(node.includes("cluster-node-timeout 2500"));
    assert.ok(node.includes("maxmemory 123"));
    assert.ok(node.includes("maxmemory-policy allkeys-lru"));
    assert.throws(() => clusterNodeConf({ maxmemoryBytes: 1, nodeTimeoutMs: 10 }));
    const broker = lines(brokerConf({ maxmemoryBytes: 456 }));
    assert.ok(broker.includes("maxmemory-policy noeviction"));
    assert.ok(broker.includes("appendonly yes"));
    assert.ok(!broker.some((l) => l.startsWith("cluster-")));
  });

  it("sentinel template puts resolve-hostnames before the monitor line", () => {
    const conf = lines(sentinelConf({ masterName: "broker", quorum: 2, downAfterMs: 1000 }));
    const monitor = conf.findIndex((l) => l.startsWith("sentinel monitor broker"));
    assert.ok(monitor > conf.indexOf("sentinel resolve-hostnames yes"));
    assert.ok(conf.includes("sentinel down-after-milliseconds broker 1000"));
    assert.throws(() => sentinelConf({ masterName: "bad name" }));
  });

  it("Celery sentinel settings: one sentinel:// URL per sentinel joined by ';', master_name and sentinel password", () => {
    const s = celeryBrokerSettings({
      password: "pw",
      sentinels: [
        { host: "a", port: 26379 },
        { host: "b", port: 26379 },
      ],
      masterName: "broker",
      visibilityTimeoutS: 7200,
    });
    assert.equal(s.url, "sentinel://:pw@a:26379/0;sentinel://:pw@b:26379/0");
    assert.deepEqual(s.transportOptions, {
      master_name: "broker",
      sentinel_kwargs: { password: "pw" },
      visibility_timeout: 7200,
    });
    const plain = celeryBrokerSettings({ password: "p/w", standalone: { host: "h", port: 6379 } });
    assert.equal(plain.url, "redis://:p%2Fw@h:6379/0");
    assert.throws(() =>
      celeryBrokerSettings({ password: "x", sentinels: [{ host: "a", port: 1 }] }),
    );
    assert.throws(() => celeryBrokerSettings({ password: "x" }));
    assert.equal(
      cacheClusterUrl({ password: "pw", host: "redis", port: 6379 }),
      "redis://:pw@redis:6379/0",
    );
  });

  it("ships every script as a bash script with strict mode", () => {
    const scripts = redisScripts();
    assert.deepEqual(Object.keys(scripts).sort(), [...REDIS_SCRIPT_NAMES].sort());
    for (const [name, text] of Object.entries(scripts)) {
      assert.ok(text.startsWith("#!/usr/bin/env bash\n"), name);
      if (name !== "lib.sh") assert.match(text, /^set -euo pipefail$/m, name);
    }
  });
});
