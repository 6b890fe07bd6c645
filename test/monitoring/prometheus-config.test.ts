/** prometheus.yml against the real `promtool check config` (which also loads the rule files). */
import assert from "node:assert/strict";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parse } from "yaml";
import {
  platformScrapeTargets,
  renderPrometheusConfig,
  type PrometheusConfigOptions,
} from "../../components/monitoring/prometheus-config";
import { run, tempDir, tool, toolVersions } from "../helpers/monitoring-daemons";
import { writeRules } from "../helpers/monitoring-fixtures";
import { monitoringSchema } from "../../components/config/monitoring";

interface Job {
  job_name: string;
  honor_labels?: boolean;
  kubernetes_sd_configs?: { role: string; namespaces?: { names: string[] } }[];
  relabel_configs?: {
    source_labels?: string[];
    regex?: string;
    action?: string;
    target_label?: string;
    replacement?: string;
  }[];
}

let dir = "";
const options = (rulesDir: string): PrometheusConfigOptions => ({
  namespace: "stock-analysis",
  rulesDir: join(rulesDir, "rules"),
  alertmanagerPort: 9093,
  targets: platformScrapeTargets("stock-analysis-node-exporter"),
  ingressNginx: { namespace: "ingress-nginx", port: 10254 },
  serviceAccountDir: rulesDir,
});

describe("prometheus config (promtool)", () => {
  before(() => {
    dir = tempDir("prom-");
    mkdirSync(join(dir, "rules"));
    writeRules(join(dir, "rules"));
    // promtool checks that credential files exist; stand in for the pod's service-account mount.
    writeFileSync(join(dir, "token"), "token");
    writeFileSync(join(dir, "ca.crt"), "");
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("the tools are the versions of the images we ship", () => {
    const m = monitoringSchema.parse({});
    const tag = (image: string) => /:v(\d+\.\d+)\.\d+$/.exec(image)![1];
    const version = (name: "promtool" | "amtool") =>
      /version (\d+\.\d+)\.\d+/.exec(run(tool(name), ["--version"]).output)?.[1];
    assert.equal(version("promtool"), tag(m.prometheus.image), toolVersions());
    assert.equal(version("amtool"), tag(m.alertmanager.image), toolVersions());
  });

  test("promtool check config accepts prometheus.yml with the rule files and Kubernetes discovery", () => {
    const file = join(dir, "prometheus.yml");
    const yaml = renderPrometheusConfig(options(dir));
    assert.match(yaml, /kubernetes_sd_configs:/);
    writeFileSync(file, yaml);
    const r = run(tool("promtool"), ["check", "config", file]);
    assert.equal(r.status, 0, r.output);
    assert.match(r.output, /SUCCESS: 1 rule files found/);
    assert.match(r.output, /SUCCESS: \d+ rules found/);
  });

  test("promtool check config rejects a broken relabel regex and an unknown discovery role", () => {
    const file = join(dir, "broken.yml");
    const broken = renderPrometheusConfig(options(dir)).replace(
      'regex: "true"',
      'regex: "(unclosed"',
    );
    writeFileSync(file, broken);
    const r = run(tool("promtool"), ["check", "config", file]);
    assert.notEqual(r.status, 0);
    assert.match(r.output, /missing closing \)/);
    // Kubernetes discovery is really checked, not skipped.
    const badRole = renderPrometheusConfig(options(dir)).replace("role: pod", "role: pods");
    assert.notEqual(badRole, renderPrometheusConfig(options(dir)));
    writeFileSync(file, badRole);
    const sd = run(tool("promtool"), ["check", "config", file]);
    assert.notEqual(sd.status, 0, sd.output);
    assert.match(sd.output, /unknown Kubernetes SD role "pods"/);
  });

  test("the manual's globals and annotation discovery (scrape, path, port)", () => {
    const cfg = parse(renderPrometheusConfig(options(dir))) as {
      global: Record<string, string>;
      scrape_configs: Job[];
    };
    assert.equal(cfg.global.scrape_interval, "15s");
    assert.equal(cfg.global.evaluation_interval, "15s");
    const pods = cfg.scrape_configs.find((j) => j.job_name === "kubernetes-pods");
    assert.ok(pods);
    const rules = pods.relabel_configs ?? [];
    const keep = rules.find(
      (r) => r.source_labels?.[0] === "__meta_kubernetes_pod_annotation_prometheus_io_scrape",
    );
    assert.deepEqual([keep?.action, keep?.regex], ["keep", "true"]);
    assert.ok(
      rules.some(
        (r) =>
          r.source_labels?.includes("__meta_kubernetes_pod_annotation_prometheus_io_path") &&
          r.target_label === "__metrics_path__",
      ),
    );
    assert.ok(
      rules.some(
        (r) =>
          r.source_labels?.includes("__meta_kubernetes_pod_annotation_prometheus_io_port") &&
          r.target_label === "__address__",
      ),
    );
    // Pods with an explicit job are not scraped twice through their annotations.
    const drop = rules.find((r) => r.action === "drop");
    assert.ok(drop?.regex?.split("|").includes("stock-analysis-api"));
  });

  test("the address rewrite puts the annotated port on the pod IP", () => {
    // promtool has no relabel command: apply the regex as Prometheus does (anchored, $1 refs).
    const cfg = parse(renderPrometheusConfig(options(dir))) as { scrape_configs: Job[] };
    const rw = cfg.scrape_configs
      .find((j) => j.job_name === "kubernetes-pods")!
      .relabel_configs!.find((r) => r.target_label === "__address__")!;
    const re = new RegExp(`^(?:${rw.regex})$`);
    const apply = (addr: string, port: string) =>
      `${addr};${port}`.replace(re, rw.replacement!.replace(/\$(\d)/g, "$$$1"));
    assert.equal(apply("10.1.2.3:8000", "9102"), "10.1.2.3:9102");
    assert.equal(apply("10.1.2.3", "9102"), "10.1.2.3:9102");
  });

  test("explicit jobs for the API, exporters and the monitoring stack; kube-state-metrics keeps its labels", () => {
    const cfg = parse(renderPrometheusConfig(options(dir))) as { scrape_configs: Job[] };
    const names = cfg.scrape_configs.map((j) => j.job_name);
    for (const job of [
      "prometheus",
      "kubernetes-pods",
      "stock-analysis-api",
      "kube-state-metrics",
      "node-exporter",
      "postgres-exporter",
      "redis-exporter",
      "celery-exporter",
      "alertmanager",
      "kubelet",
      "kubernetes-cadvisor",
      "ingress-nginx",
    ])
      assert.ok(names.includes(job), `missing job ${job}`);
    const ksm = cfg.scrape_configs.find((j) => j.job_name === "kube-state-metrics")!;
    assert.equal(ksm.honor_labels, true);
    assert.ok(!ksm.relabel_configs!.some((r) => r.target_label === "pod"));
    const api = cfg.scrape_configs.find((j) => j.job_name === "stock-analysis-api")!;
    assert.deepEqual(api.kubernetes_sd_configs![0].namespaces!.names, ["stock-analysis"]);
    // node-exporter lives in its own namespace: discovered there, and only there.
    const node = cfg.scrape_configs.find((j) => j.job_name === "node-exporter")!;
    assert.deepEqual(node.kubernetes_sd_configs![0].namespaces!.names, [
      "stock-analysis-node-exporter",
    ]);
  });
});
