/**
 * Loki and the Alloy log agent. Neither binary is packaged for Debian, so these check the
 * generated configuration's structure: retention wiring (compactor + limits), storage paths and
 * that the agent discovers our namespace and pushes to the Loki service.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parse } from "yaml";
import { renderAlloyConfig, renderLokiConfig } from "../../components/monitoring/logging";

describe("log aggregation config", () => {
  test("Loki keeps logs for the configured retention and enforces it with the compactor", () => {
    const cfg = parse(
      renderLokiConfig({ retentionHours: 168, httpPort: 3100, dataDir: "/var/loki" }),
    ) as {
      limits_config: { retention_period: string };
      compactor: {
        retention_enabled: boolean;
        working_directory: string;
        delete_request_store: string;
      };
      server: { http_listen_port: number };
      schema_config: { configs: { store: string; schema: string }[] };
      common: { path_prefix: string; storage: { filesystem: { chunks_directory: string } } };
    };
    assert.equal(cfg.limits_config.retention_period, "168h");
    assert.equal(cfg.compactor.retention_enabled, true);
    assert.equal(cfg.compactor.delete_request_store, "filesystem");
    assert.ok(cfg.compactor.working_directory.startsWith("/var/loki/"));
    assert.ok(cfg.common.storage.filesystem.chunks_directory.startsWith("/var/loki/"));
    assert.equal(cfg.server.http_listen_port, 3100);
    assert.deepEqual(
      cfg.schema_config.configs.map((c) => [c.store, c.schema]),
      [["tsdb", "v13"]],
    );
    const dev = parse(renderLokiConfig({ retentionHours: 24, httpPort: 3100, dataDir: "/d" })) as {
      limits_config: { retention_period: string };
    };
    assert.equal(dev.limits_config.retention_period, "24h");
  });

  test("the Alloy agent tails our namespace through the API and pushes to Loki", () => {
    const cfg = renderAlloyConfig({
      namespace: "stock-analysis",
      lokiPushUrl: "http://loki:3100/loki/api/v1/push",
    });
    assert.match(
      cfg,
      /discovery\.kubernetes "pods" \{\s+role = "pod"\s+namespaces \{\s+names = \["stock-analysis"\]/,
    );
    assert.match(
      cfg,
      /loki\.source\.kubernetes "pods" \{\s+targets\s+= discovery\.relabel\.pods\.output\s+forward_to = \[loki\.write\.default\.receiver\]/,
    );
    assert.match(cfg, /url = "http:\/\/loki:3100\/loki\/api\/v1\/push"/);
    for (const label of ["namespace", "pod", "container", "app"])
      assert.match(cfg, new RegExp(`target_label\\s+= "${label}"`));
    // Every block opened is closed (a cheap syntax guard in the absence of an Alloy binary).
    assert.equal((cfg.match(/\{/g) ?? []).length, (cfg.match(/\}/g) ?? []).length);
  });
});
