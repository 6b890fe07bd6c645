/**
 * The generated prometheus.yml and the shipped rules in a real Prometheus (the shipped version,
 * built by scripts/prometheus-tools.sh) on loopback, scraping a real node_exporter and
 * Alertmanager. There is no Kubernetes API to discover from, so each `kubernetes_sd_configs` block
 * is swapped for a file_sd file that carries the same `__meta_kubernetes_*` labels Kubernetes
 * discovery would: the relabelling under test is the generated one, unchanged.
 */
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parse, stringify } from "yaml";
import {
  platformScrapeTargets,
  renderPrometheusConfig,
} from "../../components/monitoring/prometheus-config";
import {
  Daemon,
  freePort,
  startAlertmanager,
  startDaemon,
  startExporter,
  tempDir,
  tool,
  waitForHttp,
} from "../helpers/monitoring-daemons";
import { loopbackReceivers, writeRules } from "../helpers/monitoring-fixtures";
import { renderAlertmanagerConfig } from "../../components/monitoring/alertmanager-config";

const NS = "stock-analysis";
const NODE_NS = "stock-analysis-node-exporter";
interface Target {
  labels: Record<string, string>;
  scrapePool: string;
  scrapeUrl: string;
  health: string;
}

/** A pod as Kubernetes discovery would describe it (role: pod, one container port). */
function pod(
  name: string,
  app: string,
  extra: Record<string, string> = {},
  namespace = NS,
): { targets: string[]; labels: Record<string, string>; namespace: string } {
  return {
    namespace,
    targets: ["127.0.0.1:1"],
    labels: {
      __meta_kubernetes_namespace: namespace,
      __meta_kubernetes_pod_name: name,
      __meta_kubernetes_pod_label_app: app,
      __meta_kubernetes_pod_ip: "127.0.0.1",
      __meta_kubernetes_pod_node_name: "node-1",
      __meta_kubernetes_pod_phase: "Running",
      ...extra,
    },
  };
}

let dir = "";
let prom: Daemon | undefined;
let promUrl = "";
const daemons: Daemon[] = [];
let am: Awaited<ReturnType<typeof startAlertmanager>> | undefined;
const ports = { node: 0, am: 0, dead: 0 };

describe("generated scrape config in a real Prometheus", () => {
  before(async () => {
    dir = tempDir("prom-e2e-");
    am = await startAlertmanager(renderAlertmanagerConfig(loopbackReceivers()));
    ports.am = Number(new URL(am.url).port);
    const node = await startExporter("prometheus-node-exporter", (l) => [
      `--web.listen-address=${l}`,
    ]);
    daemons.push(node.daemon);
    ports.node = Number(new URL(node.url).port);
    ports.dead = await freePort();

    writeRules(dir);
    writeFileSync(join(dir, "token"), "t");
    writeFileSync(join(dir, "ca.crt"), "");
    const pods = [
      // Explicit-job pods; the node-exporter (in its own namespace) also carries scrape
      // annotations (must not be scraped twice).
      pod(
        "node-exporter-x1",
        "node-exporter",
        {
          __meta_kubernetes_pod_annotation_prometheus_io_scrape: "true",
          __meta_kubernetes_pod_annotation_prometheus_io_port: String(ports.node),
        },
        NODE_NS,
      ),
      // A node-exporter-labelled pod in the platform namespace is not the node-exporter job's.
      pod("node-exporter-impostor", "node-exporter"),
      pod("alertmanager-0", "alertmanager", {
        __meta_kubernetes_pod_container_port_number: String(ports.am),
      }),
      pod("stock-analysis-api-abc", "stock-analysis-api"),
      pod("stock-analysis-api-new", "stock-analysis-api", {
        __meta_kubernetes_pod_phase: "Pending",
      }),
      // Annotation discovery: scraped on the annotated port and path.
      pod("custom-app-1", "custom-app", {
        __meta_kubernetes_pod_annotation_prometheus_io_scrape: "true",
        __meta_kubernetes_pod_annotation_prometheus_io_port: String(ports.am),
        __meta_kubernetes_pod_annotation_prometheus_io_path: "/metrics",
      }),
      pod("quiet-app-1", "quiet-app"),
      // Sidecar exporters' pods match exactly; a backup Job's pod (no exporter) must not be scraped.
      pod("postgresql-0", "postgresql"),
      pod("postgresql-backup-29000000-x", "postgresql-backup"),
      pod("redis-broker-0", "redis-broker"),
    ];
    // One file per namespace: a job discovers the pods of the namespaces its config names.
    for (const ns of [NS, NODE_NS])
      writeFileSync(
        join(dir, `pods-${ns}.json`),
        JSON.stringify(
          pods
            .filter((p) => p.namespace === ns)
            .map(({ targets, labels }) => ({ targets, labels })),
        ),
      );
    writeFileSync(join(dir, "empty.json"), "[]");

    const yaml = renderPrometheusConfig({
      namespace: NS,
      rulesDir: dir,
      alertmanagerPort: ports.am,
      // The platform's jobs; their ports point at live endpoints here (the API's at nothing).
      targets: platformScrapeTargets(NODE_NS).map((t) => ({
        ...t,
        port:
          t.job === "stock-analysis-api"
            ? ports.dead
            : t.job === "alertmanager"
              ? ports.am
              : ports.node,
      })),
      serviceAccountDir: dir,
    });
    const cfg = parse(yaml) as {
      global: Record<string, string>;
      alerting: { alertmanagers: Record<string, unknown>[] };
      scrape_configs: Record<string, unknown>[];
    };
    for (const j of [...cfg.alerting.alertmanagers, ...cfg.scrape_configs]) {
      const sd = j.kubernetes_sd_configs as
        { role: string; namespaces?: { names: string[] } }[] | undefined;
      if (!sd) continue;
      delete j.kubernetes_sd_configs;
      const files =
        sd[0].role === "pod"
          ? sd[0].namespaces!.names.map((ns) => join(dir, `pods-${ns}.json`))
          : [join(dir, "empty.json")];
      j.file_sd_configs = [{ files, refresh_interval: "1s" }];
    }
    // Prometheus scrapes itself on localhost:9090 in the pod; here it listens on a free port.
    const port = await freePort();
    const self = cfg.scrape_configs.find((j) => j.job_name === "prometheus")!;
    self.static_configs = [{ targets: [`127.0.0.1:${port}`] }];
    // Faster cycles than the shipped 15 s so the test stays short; relabelling and rules unchanged.
    cfg.global.scrape_interval = "2s";
    cfg.global.evaluation_interval = "2s";
    writeFileSync(join(dir, "prometheus.cfg"), stringify(cfg));

    promUrl = `http://127.0.0.1:${port}`;
    prom = startDaemon("prometheus", tool("prometheus"), [
      `--config.file=${join(dir, "prometheus.cfg")}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
    ]);
    await waitForHttp(`${promUrl}/-/ready`, prom, 30_000);
  });
  after(async () => {
    await prom?.stop();
    for (const d of daemons) await d.stop();
    await am?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function activeTargets(): Promise<Target[]> {
    const res = await fetch(`${promUrl}/api/v1/targets?state=active`);
    return ((await res.json()) as { data: { activeTargets: Target[] } }).data.activeTargets;
  }

  async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = await f();
      if (v !== undefined) return v;
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what}\n${prom?.output().slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  test("relabelling keeps the right pods, rewrites addresses and sets namespace/pod/app labels", async () => {
    const targets = await until("every target scraped once", async () => {
      const t = await activeTargets();
      return t.length >= 6 && t.every((x) => x.health !== "unknown") ? t : undefined;
    });
    const byJob = (job: string) => targets.filter((t) => t.scrapePool === job);

    const [node] = byJob("node-exporter");
    assert.equal(byJob("node-exporter").length, 1);
    assert.equal(node.health, "up");
    assert.equal(node.labels.instance, "node-1");
    assert.equal(node.labels.app, "node-exporter");
    assert.equal(node.labels.namespace, NODE_NS);
    assert.equal(node.labels.pod, "node-exporter-x1");

    // Annotation discovery: only the annotated pod without an explicit job, on its annotated port.
    const annotated = byJob("kubernetes-pods");
    assert.deepEqual(
      annotated.map((t) => [t.labels.app, t.scrapeUrl]),
      [["custom-app", `http://127.0.0.1:${ports.am}/metrics`]],
    );
    assert.equal(annotated[0].health, "up");

    assert.equal(byJob("alertmanager")[0].health, "up");
    assert.deepEqual(
      byJob("postgres-exporter").map((t) => t.labels.pod),
      ["postgresql-0"],
    );
    assert.deepEqual(
      byJob("redis-exporter").map((t) => t.labels.pod),
      ["redis-broker-0"],
    );
    assert.ok(!targets.some((t) => t.labels.pod === "postgresql-backup-29000000-x"));
    // Running pods only; the API target has nothing listening.
    const api = byJob("stock-analysis-api");
    assert.deepEqual(
      api.map((t) => [t.labels.pod, t.health]),
      [["stock-analysis-api-abc", "down"]],
    );
  });

  test("the shipped rules load and ServiceDown for the down API pod carries team=backend", async () => {
    const groups = (await (await fetch(`${promUrl}/api/v1/rules`)).json()) as {
      data: { groups: { rules: { name: string }[] }[] };
    };
    const names = new Set(groups.data.groups.flatMap((g) => g.rules.map((r) => r.name)));
    for (const a of ["HighErrorRate", "CeleryQueueHigh", "ServiceDown", "TLSCertificateExpiring"])
      assert.ok(names.has(a), a);
    const alert = await until("ServiceDown pending or firing", async () => {
      const res = await fetch(`${promUrl}/api/v1/alerts`);
      const alerts = (
        (await res.json()) as {
          data: { alerts: { labels: Record<string, string>; state: string }[] };
        }
      ).data.alerts;
      return alerts.find((a) => a.labels.alertname === "ServiceDown");
    });
    assert.equal(alert.labels.team, "backend");
    assert.equal(alert.labels.severity, "critical");
    assert.equal(alert.labels.app, "stock-analysis-api");
    assert.equal(alert.labels.pod, "stock-analysis-api-abc");
    assert.equal(alert.labels.namespace, NS);
    // Up targets raise nothing.
    const res = await fetch(`${promUrl}/api/v1/alerts`);
    const all = ((await res.json()) as { data: { alerts: { labels: Record<string, string> }[] } })
      .data.alerts;
    assert.deepEqual(
      all.filter((a) => a.labels.alertname === "ServiceDown").map((a) => a.labels.app),
      ["stock-analysis-api"],
    );
  });
});
