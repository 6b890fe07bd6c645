/**
 * Dashboards: every Prometheus panel query parses (checked by the real promtool as a recording
 * rule) and reads only metrics that an exporter or rule of ours produces; datasources match the
 * provisioning.
 */
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parse, stringify } from "yaml";
import { knownMetricNames } from "../../components/monitoring/catalogue";
import { dashboardSpecs, renderDashboard } from "../../components/monitoring/dashboards";
import { renderGrafanaDatasources } from "../../components/monitoring/grafana-provisioning";
import { run, tempDir, tool } from "../helpers/monitoring-daemons";
import { metricNames } from "../helpers/monitoring-promql";

interface Target {
  expr: string;
  datasource: { type: string; uid: string };
}
interface Panel {
  title: string;
  type: string;
  datasource: { type: string; uid: string };
  targets: Target[];
  gridPos: { x: number; y: number; w: number; h: number };
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
}

const dashboards = dashboardSpecs("stock-analysis").map((s) => renderDashboard(s) as Dashboard);
const promTargets = dashboards.flatMap((d) =>
  d.panels.flatMap((p) =>
    p.targets
      .filter((t) => t.datasource.type === "prometheus")
      .map((t) => ({ where: `${d.uid} / ${p.title}`, expr: t.expr })),
  ),
);

let dir = "";
describe("grafana dashboards", () => {
  before(() => (dir = tempDir("dash-")));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("the manual's three dashboards exist with panels", () => {
    assert.deepEqual(
      dashboards.map((d) => d.title),
      [
        "Stock Analysis / System overview",
        "Stock Analysis / API performance",
        "Stock Analysis / Infrastructure",
      ],
    );
    for (const d of dashboards) assert.ok(d.panels.length >= 8, d.uid);
    assert.ok(promTargets.length >= 30);
  });

  test("every panel query parses: promtool check rules on them as recording rules", () => {
    const file = join(dir, "panels.yml");
    writeFileSync(
      file,
      stringify({
        groups: [
          {
            name: "dashboard-queries",
            rules: promTargets.map((t, i) => ({ record: `dashboard:query:${i}`, expr: t.expr })),
          },
        ],
      }),
    );
    const r = run(tool("promtool"), ["check", "rules", file]);
    assert.equal(r.status, 0, r.output);
    assert.match(r.output, new RegExp(`SUCCESS: ${promTargets.length} rules found`));
  });

  test("the parse check can fail: a broken query is rejected", () => {
    const file = join(dir, "broken.yml");
    writeFileSync(
      file,
      stringify({
        groups: [{ name: "g", rules: [{ record: "x:y", expr: "sum by (le (rate(x[5m]))" }] }],
      }),
    );
    assert.notEqual(run(tool("promtool"), ["check", "rules", file]).status, 0);
  });

  test("every panel reads only metrics some exporter of ours produces", () => {
    const known = knownMetricNames();
    const unknown = promTargets.flatMap((t) =>
      [...metricNames(t.expr)].filter((m) => !known.has(m)).map((m) => `${t.where}: ${m}`),
    );
    assert.deepEqual(unknown, []);
    // The scan finds names at all (it is not vacuous).
    assert.deepEqual([...metricNames(promTargets[0].expr)], ["up"]);
  });

  test("panels use the provisioned datasource uids; logs panels query Loki", () => {
    const ds = parse(
      renderGrafanaDatasources({
        prometheusUrl: "http://prometheus:9090",
        lokiUrl: "http://loki:3100",
        dashboardsDir: "/d",
      }),
    ) as {
      datasources: { type: string; uid: string }[];
    };
    const uids = new Map(ds.datasources.map((d) => [d.type, d.uid]));
    for (const d of dashboards)
      for (const p of d.panels) {
        assert.equal(p.datasource.uid, uids.get(p.datasource.type), `${d.uid}/${p.title}`);
        assert.equal(p.type === "logs", p.datasource.type === "loki", `${d.uid}/${p.title}`);
      }
  });

  test("panels do not overlap and fit the 24-column grid", () => {
    for (const d of dashboards) {
      const cells = new Set<string>();
      for (const p of d.panels) {
        assert.ok(p.gridPos.x + p.gridPos.w <= 24, p.title);
        for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++)
          for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
            assert.ok(!cells.has(`${x},${y}`), `${d.uid}: ${p.title} overlaps`);
            cells.add(`${x},${y}`);
          }
      }
      assert.equal(new Set(d.panels.map((p) => p.title)).size, d.panels.length);
    }
  });
});
