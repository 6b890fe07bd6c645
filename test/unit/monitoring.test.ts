/**
 * The Monitoring component as rendered for dev and prod (Pulumi mocks): sizes, retention, HA,
 * secrets, RBAC scope, stable names; and the shipped rule/config payloads pass promtool/amtool.
 */
import assert from "node:assert/strict";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { parse } from "yaml";
import { cpuToMillicores, memoryToBytes } from "../../components/config/validators";
import type { K8sObject } from "../../scripts/lib/render-stack";
import { podSpecOf } from "../../scripts/lib/summary";
import { run, tempDir, tool } from "../helpers/monitoring-daemons";
import { RenderResult, find, render } from "../helpers/render";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
const stacks: Record<string, RenderResult> = {};
const MONITORING = [
  "prometheus",
  "alertmanager",
  "grafana",
  "loki",
  "log-agent",
  "kube-state-metrics",
  "node-exporter",
];
const WORKLOAD_KINDS = new Set(["Deployment", "StatefulSet", "DaemonSet"]);

before(async () => {
  const [dev, prod, off, celery, nodeNs] = await Promise.all([
    render("dev"),
    render("prod"),
    render("dev", { monitoring: { enabled: false } }),
    render("dev", {
      monitoring: {
        celeryExporter: { brokerUrlSecret: { name: "stock-analysis-broker", key: "url" } },
      },
    }),
    render("dev", { monitoring: { nodeExporter: { namespace: "node-metrics" } } }),
  ]);
  Object.assign(stacks, { dev, prod, off, celery, nodeNs });
});

const workload = (stack: string, name: string) =>
  stacks[stack].objects.find((o) => WORKLOAD_KINDS.has(o.kind) && o.metadata.name === name)!;
const containerOf = (o: K8sObject) => (podSpecOf(o) as Any).containers[0];
const args = (o: K8sObject): string[] => containerOf(o).args ?? [];
const configMapData = (stack: string, name: string) =>
  find(stacks[stack].objects, "ConfigMap", name).data as Record<string, string>;
/** Unredacted Secret payload (from the mock engine's inputs, never printed). */
const secretData = (stack: string, name: string) =>
  stacks[stack].resources.find(
    (r) => r.type === "kubernetes:core/v1:Secret" && (r.inputs as Any).metadata.name === name,
  )!.inputs.stringData as Record<string, string>;

describe("monitoring in prod", () => {
  it("Prometheus: StatefulSet with a PVC and 30 days retention", () => {
    const p = workload("prod", "prometheus");
    assert.equal(p.kind, "StatefulSet");
    assert.ok(args(p).includes("--storage.tsdb.retention.time=30d"));
    const pvc = (p.spec as Any).volumeClaimTemplates[0];
    assert.equal(pvc.spec.resources.requests.storage, "100Gi");
    assert.ok(
      containerOf(p).volumeMounts.some(
        (m: Any) => m.name === "data" && m.mountPath === "/prometheus",
      ),
    );
  });

  it("Alertmanager: two replicas gossiping over the headless service, PDB", () => {
    const am = workload("prod", "alertmanager");
    assert.equal((am.spec as Any).replicas, 2);
    const peers = args(am).filter((a) => a.startsWith("--cluster.peer="));
    assert.deepEqual(peers, [
      "--cluster.peer=alertmanager-0.alertmanager-headless:9094",
      "--cluster.peer=alertmanager-1.alertmanager-headless:9094",
    ]);
    assert.equal(
      (find(stacks.prod.objects, "Service", "alertmanager-headless").spec as Any).clusterIP,
      "None",
    );
    find(stacks.prod.objects, "PodDisruptionBudget", "alertmanager");
  });

  it("Loki keeps logs 7 days; the agent ships this namespace to the loki service", () => {
    const loki = parse(configMapData("prod", "loki-config")["loki.yaml"]) as Any;
    assert.equal(loki.limits_config.retention_period, "168h");
    assert.equal(loki.compactor.retention_enabled, true);
    const alloy = configMapData("prod", "log-agent-config")["config.alloy"];
    assert.match(alloy, /url = "http:\/\/loki\.stock-analysis\.svc:3100\/loki\/api\/v1\/push"/);
    assert.equal(workload("prod", "loki").kind, "StatefulSet");
    assert.equal(
      workload("prod", "loki").metadata.annotations?.["logs.stock-analysis.io/retention-days"],
      "7",
    );
  });

  it("Prometheus and Loki: governed by headless Services; clients keep the ClusterIP ones", () => {
    for (const name of ["prometheus", "loki"]) {
      const sts = workload("prod", name);
      const spec = sts.spec as Any;
      assert.equal(spec.serviceName, `${name}-headless`, name);
      const headless = find(stacks.prod.objects, "Service", `${name}-headless`).spec as Any;
      assert.equal(headless.clusterIP, "None", name);
      assert.deepEqual(headless.selector, spec.selector.matchLabels, name);
      const client = find(stacks.prod.objects, "Service", name).spec as Any;
      assert.equal(client.clusterIP, undefined, `${name}: the client Service has a virtual IP`);
    }
  });

  it("every StatefulSet's serviceName is a headless Service selecting its pods", () => {
    for (const stack of ["dev", "prod"])
      for (const sts of stacks[stack].objects.filter((o) => o.kind === "StatefulSet")) {
        const spec = sts.spec as Any;
        const svc = stacks[stack].objects.find(
          (o) => o.kind === "Service" && o.metadata.name === spec.serviceName,
        );
        const where = `${stack}: StatefulSet/${sts.metadata.name} -> ${spec.serviceName}`;
        assert.ok(svc, `${where}: no such Service`);
        assert.equal((svc.spec as Any).clusterIP, "None", `${where}: not headless`);
        for (const [k, v] of Object.entries((svc.spec as Any).selector ?? {}))
          assert.equal(spec.template.metadata.labels[k], v, `${where}: selects other pods`);
      }
  });

  it("Prometheus and Loki: a replacement (serviceName is immutable) keeps the name and the data", () => {
    for (const name of ["prometheus", "loki"]) {
      const sts = workload("prod", name);
      const spec = sts.spec as Any;
      // The claim survives the StatefulSet's deletion, and the replacement mounts it again.
      assert.deepEqual(
        spec.persistentVolumeClaimRetentionPolicy,
        { whenDeleted: "Retain", whenScaled: "Retain" },
        name,
      );
      assert.equal(spec.volumeClaimTemplates[0].metadata.name, "data");
      // Same explicit name: the old object must be gone before the new one is created.
      const r = stacks.prod.resources.find(
        (x) => x.type === "kubernetes:apps/v1:StatefulSet" && x.name === name,
      )!;
      assert.equal(r.options.deleteBeforeReplace, true, name);
    }
  });

  it("stable service names: prometheus, alertmanager, grafana, loki", () => {
    for (const [name, port] of [
      ["prometheus", 9090],
      ["alertmanager", 9093],
      ["grafana", 3000],
      ["loki", 3100],
    ] as const) {
      const svc = find(stacks.prod.objects, "Service", name);
      assert.equal((svc.spec as Any).ports[0].port, port, name);
      assert.deepEqual((svc.spec as Any).selector, { app: name });
    }
    assert.equal(stacks.prod.outputs.prometheusUrl, "http://prometheus.stock-analysis.svc:9090");
    assert.equal(stacks.prod.outputs.grafanaUrl, "https://grafana.stockanalysis.com");
  });

  it("Grafana: admin password generated and read from a mounted Secret file; published through the ingress", () => {
    const grafana = workload("prod", "grafana");
    const c = containerOf(grafana);
    const env = c.env as Any[];
    assert.ok(
      !env.some((e) => e.name === "GF_SECURITY_ADMIN_PASSWORD"),
      "password in the environment",
    );
    const file = env.find((e) => e.name === "GF_SECURITY_ADMIN_PASSWORD__FILE").value as string;
    const mount = (c.volumeMounts as Any[]).find((m) => file.startsWith(`${m.mountPath}/`));
    const vol = ((grafana.spec as Any).template.spec.volumes as Any[]).find(
      (v) => v.name === mount.name,
    );
    assert.equal(vol.secret.secretName, "grafana-admin");
    assert.deepEqual(vol.secret.items, [
      { key: "password", path: file.slice(mount.mountPath.length + 1) },
    ]);
    // Ephemeral per-pod state: the rollout overlaps old and new, never an outage.
    assert.deepEqual((grafana.spec as Any).strategy, {
      type: "RollingUpdate",
      rollingUpdate: { maxUnavailable: 0, maxSurge: 1 },
    });
    assert.ok(!env.some((e) => typeof e.value === "string" && e.value.startsWith("MOCK-SECRET")));
    assert.ok(
      stacks.prod.resources.some(
        (r) =>
          r.type === "random:index/randomPassword:RandomPassword" &&
          r.name === "grafana-admin-password",
      ),
    );
    assert.match(secretData("prod", "grafana-admin").password, /^MOCK-SECRET-/);
    const ing = find(stacks.prod.objects, "Ingress", "grafana").spec as Any;
    assert.equal(ing.rules[0].host, "grafana.stockanalysis.com");
    assert.deepEqual(ing.tls[0], {
      hosts: ["grafana.stockanalysis.com"],
      secretName: "grafana-tls",
    });
  });

  it("rules and dashboards are in ConfigMaps; the Alertmanager config only in a Secret", () => {
    const rules = configMapData("prod", "prometheus-rules")["alert_rules.yml"];
    for (const a of [
      "HighErrorRate",
      "HighResponseTime",
      "DatabaseConnectionHigh",
      "RedisMemoryHigh",
      "CeleryQueueHigh",
      "ServiceDown",
      "BackupTooOld",
      "BackupVerificationFailed",
      "BackupVerificationMissing",
      "PostgreSQLWALArchivingFailing",
    ])
      assert.match(rules, new RegExp(`alert: ${a}\\n`));
    // The archive-lag threshold is prod's postgres.backup.archiveTimeout.
    const prodYaml = parse(readFileSync(join(__dirname, "../../Pulumi.prod.yaml"), "utf8")) as {
      config: Record<string, { backup?: { archiveTimeout?: number } }>;
    };
    const archiveTimeout = prodYaml.config["stock-analysis:postgres"].backup?.archiveTimeout;
    assert.ok(archiveTimeout, "Pulumi.prod.yaml sets postgres.backup.archiveTimeout");
    assert.ok(
      rules.includes(
        `pg_wal_archive_lag_seconds{namespace="stock-analysis"}) > ${archiveTimeout}\n`,
      ),
      `archive-lag threshold is not ${archiveTimeout}`,
    );
    assert.match(rules, /cronjob="postgresql-backup-verify"/);
    // dev has no backups: neither archiving nor verification alerts.
    const devRules = configMapData("dev", "prometheus-rules")["alert_rules.yml"];
    assert.doesNotMatch(devRules, /WALArchiv|BackupVerification/);
    const dashboards = configMapData("prod", "grafana-dashboards");
    assert.deepEqual(Object.keys(dashboards).sort(), [
      "stock-analysis-api.json",
      "stock-analysis-infra.json",
      "stock-analysis-overview.json",
    ]);
    assert.ok(secretData("prod", "alertmanager-config")["alertmanager.yml"].includes("receivers:"));
    for (const cm of stacks.prod.objects.filter((o) => o.kind === "ConfigMap"))
      assert.ok(
        !JSON.stringify(cm.data).includes("smtp_smarthost"),
        `${cm.metadata.name} holds alerting config`,
      );
    const alertmanagerConfig = stacks.prod.resources.find(
      (r) => r.type === "kubernetes:core/v1:Secret" && r.name === "alertmanager-config",
    )!;
    assert.ok(alertmanagerConfig.secretPaths.some((p) => p.startsWith("stringData")));
  });

  it("RBAC is least privilege: read-only verbs, no secrets, cluster scope only for nodes", () => {
    // Patroni's Role (its DCS) and the backup exec Role (pods/exec on the members only) are
    // asserted rule by rule in test/unit/postgres.test.ts; every other Role only reads.
    const roles = stacks.prod.objects.filter(
      (o) =>
        (o.kind === "Role" || o.kind === "ClusterRole") &&
        !["postgresql-patroni", "postgresql-backup"].includes(o.metadata.name),
    );
    assert.ok(roles.length >= 4);
    for (const r of roles) {
      for (const rule of (r as Any).rules) {
        for (const v of rule.verbs)
          assert.ok(["get", "list", "watch"].includes(v), `${r.metadata.name}: ${v}`);
        assert.ok(
          !rule.resources.includes("secrets") && !rule.resources.includes("*"),
          r.metadata.name,
        );
        if (r.kind === "ClusterRole")
          for (const res of rule.resources)
            assert.ok(["nodes", "nodes/metrics"].includes(res), `${r.metadata.name}: ${res}`);
      }
    }
  });

  it("node-exporter: own namespace enforcing privileged PSA, default-deny, only Prometheus scrapes", () => {
    const objs = stacks.prod.objects;
    const NS = "stock-analysis-node-exporter";
    const ns = find(objs, "Namespace", NS);
    const nsLabels = ns.metadata.labels!;
    assert.equal(nsLabels["pod-security.kubernetes.io/enforce"], "privileged");
    for (const k of ["name", "instance", "component", "part-of", "managed-by"])
      assert.ok(nsLabels[`app.kubernetes.io/${k}`], k);
    // The platform namespace stays restricted.
    assert.equal(
      find(objs, "Namespace", "stock-analysis").metadata.labels![
        "pod-security.kubernetes.io/enforce"
      ],
      "restricted",
    );
    assert.equal(workload("prod", "node-exporter").metadata.namespace, NS);

    const inNs = (kind: string, name: string) =>
      objs.find((o) => o.kind === kind && o.metadata.name === name && o.metadata.namespace === NS);
    assert.deepEqual(inNs("NetworkPolicy", "default-deny-all")!.spec as Any, {
      podSelector: {},
      policyTypes: ["Ingress", "Egress"],
    });
    const allow = inNs("NetworkPolicy", "node-exporter-allow")!.spec as Any;
    assert.deepEqual(allow.ingress, [
      {
        from: [
          {
            podSelector: { matchLabels: { app: "prometheus" } },
            namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "stock-analysis" } },
          },
        ],
        ports: [{ protocol: "TCP", port: 9100 }],
      },
    ]);
    // No egress rule at all (an empty list would be dropped by the API server: a perpetual diff).
    assert.equal(allow.egress, undefined);
    assert.deepEqual(allow.policyTypes, ["Ingress", "Egress"]);

    // Prometheus discovers pods there (read-only Role bound to its SA), scrapes the job there
    // and may open connections to it.
    const role = inNs("Role", "prometheus-discovery") as Any;
    assert.deepEqual(role.rules, [
      { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] },
    ]);
    assert.deepEqual((inNs("RoleBinding", "prometheus-discovery") as Any).subjects, [
      { kind: "ServiceAccount", name: "prometheus", namespace: "stock-analysis" },
    ]);
    const prom = parse(configMapData("prod", "prometheus-config")["prometheus.yml"]) as Any;
    const job = prom.scrape_configs.find((j: Any) => j.job_name === "node-exporter");
    assert.deepEqual(job.kubernetes_sd_configs, [{ role: "pod", namespaces: { names: [NS] } }]);
    const promNp = find(objs, "NetworkPolicy", "prometheus-allow").spec as Any;
    assert.ok(
      promNp.egress.some(
        (r: Any) =>
          r.to[0].namespaceSelector?.matchLabels["kubernetes.io/metadata.name"] === NS &&
          r.to[0].podSelector?.matchLabels.app === "node-exporter" &&
          r.ports.length === 1 &&
          r.ports[0].port === 9100,
      ),
    );
  });

  it("the node-exporter namespace follows monitoring.nodeExporter.namespace", () => {
    const objs = stacks.nodeNs.objects;
    const NS = "node-metrics";
    assert.equal(
      find(objs, "Namespace", NS).metadata.labels!["pod-security.kubernetes.io/enforce"],
      "privileged",
    );
    assert.ok(!objs.some((o) => o.metadata.name === "stock-analysis-node-exporter"));
    assert.equal(workload("nodeNs", "node-exporter").metadata.namespace, NS);
    const discovery = objs.filter(
      (o) => o.kind === "Role" && o.metadata.name === "prometheus-discovery",
    );
    assert.ok(discovery.some((r) => r.metadata.namespace === NS));
    const prom = parse(configMapData("nodeNs", "prometheus-config")["prometheus.yml"]) as Any;
    const job = prom.scrape_configs.find((j: Any) => j.job_name === "node-exporter");
    assert.deepEqual(job.kubernetes_sd_configs[0].namespaces.names, [NS]);
  });

  it("liveness probes: node-exporter /, log agent /-/healthy, Loki /ready with a long grace", () => {
    const liveness = (name: string) => containerOf(workload("prod", name)).livenessProbe;
    assert.deepEqual(liveness("node-exporter").httpGet, { path: "/", port: "http" });
    assert.equal(containerOf(workload("prod", "node-exporter")).ports[0].containerPort, 9100);
    const agent = containerOf(workload("prod", "log-agent"));
    assert.deepEqual(agent.livenessProbe.httpGet, { path: "/-/healthy", port: "http" });
    assert.ok(
      agent.args.includes(`--server.http.listen-addr=0.0.0.0:${agent.ports[0].containerPort}`),
    );
    const loki = liveness("loki");
    assert.deepEqual(loki.httpGet, { path: "/ready", port: "http" });
    assert.equal(containerOf(workload("prod", "loki")).ports[0].containerPort, 3100);
    // WAL replay and ring join after a restart must not trigger a restart loop.
    assert.ok(loki.initialDelaySeconds >= 60, "Loki liveness initialDelaySeconds");
    assert.ok(
      loki.initialDelaySeconds + loki.periodSeconds * loki.failureThreshold >= 300,
      "Loki liveness grace",
    );
  });

  it("the shipped rules and prometheus.yml pass promtool; the Alertmanager config passes amtool", () => {
    const dir = tempDir("mon-unit-");
    try {
      writeFileSync(
        join(dir, "rules.yml"),
        configMapData("prod", "prometheus-rules")["alert_rules.yml"],
      );
      const r = run(tool("promtool"), ["check", "rules", join(dir, "rules.yml")]);
      assert.equal(r.status, 0, r.output);
      // prometheus.yml loads the rules from its in-pod path and reads the service-account files.
      const promYaml = configMapData("prod", "prometheus-config")["prometheus.yml"];
      const shipped = promYaml
        .replace("/etc/prometheus/rules/*.yml", join(dir, "*.yml"))
        .replaceAll("/var/run/secrets/kubernetes.io/serviceaccount", dir);
      writeFileSync(join(dir, "token"), "t");
      writeFileSync(join(dir, "ca.crt"), "");
      // The whole file, kubernetes_sd_configs included: promtool at the shipped version reads them.
      assert.match(shipped, /kubernetes_sd_configs:/);
      writeFileSync(join(dir, "prometheus.cfg"), shipped);
      const p = run(tool("promtool"), ["check", "config", join(dir, "prometheus.cfg")]);
      assert.equal(p.status, 0, p.output);
      assert.match(p.output, /SUCCESS: 1 rule files found/);
      writeFileSync(
        join(dir, "am.yml"),
        secretData("prod", "alertmanager-config")["alertmanager.yml"],
      );
      const a = run(tool("amtool"), ["check-config", join(dir, "am.yml")]);
      assert.equal(a.status, 0, a.output);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("monitoring in dev", () => {
  it("is tiny: monitoring requests at most 400m CPU and 1Gi memory", () => {
    let cpu = 0;
    let mem = 0;
    for (const name of MONITORING) {
      const o = workload("dev", name);
      assert.ok(o, `no workload ${name}`);
      const replicas = (o.spec as Any).replicas ?? 1;
      for (const c of [
        ...((podSpecOf(o) as Any).initContainers ?? []),
        ...(podSpecOf(o) as Any).containers,
      ]) {
        cpu += replicas * cpuToMillicores(c.resources.requests.cpu)!;
        mem += replicas * memoryToBytes(c.resources.requests.memory)!;
      }
    }
    assert.ok(cpu <= 400, `monitoring requests ${cpu}m CPU`);
    assert.ok(mem <= 2 ** 30, `monitoring requests ${mem / 2 ** 20}Mi`);
  });

  it("a single Alertmanager with clustering off", () => {
    const am = workload("dev", "alertmanager");
    assert.equal((am.spec as Any).replicas, 1);
    assert.ok(args(am).includes("--cluster.listen-address="));
  });

  it("every monitoring container is hardened and sized", () => {
    for (const name of [...MONITORING, "celery-exporter"]) {
      for (const c of (podSpecOf(workload("celery", name)) as Any).containers) {
        const s = c.securityContext;
        assert.equal(s.allowPrivilegeEscalation, false, name);
        assert.deepEqual(s.capabilities.drop, ["ALL"], name);
        assert.equal(s.readOnlyRootFilesystem, true, name);
        assert.equal(s.runAsNonRoot, true, name);
        assert.ok(c.resources.requests && c.resources.limits.memory, name);
        assert.doesNotMatch(c.image, /:latest$|^[^:]+$/, name);
      }
    }
  });

  it("no Celery exporter for a Sentinel broker without a broker Secret; with one it reads CE_BROKER_URL from it", () => {
    assert.equal(workload("prod", "celery-exporter"), undefined);
    const ce = workload("celery", "celery-exporter");
    const c = containerOf(ce);
    assert.deepEqual(c.env, [
      {
        name: "CE_BROKER_URL",
        valueFrom: { secretKeyRef: { name: "stock-analysis-broker", key: "url" } },
      },
    ]);
    assert.ok(c.args.includes("--port=9808") && c.args.includes("--queues=celery"));
    const np = find(stacks.celery.objects, "NetworkPolicy", "celery-exporter-allow").spec as Any;
    assert.deepEqual(np.egress[0].to[0].podSelector.matchLabels, { app: "redis-broker" });
    assert.deepEqual(np.ingress[0].from[0].podSelector.matchLabels, { app: "prometheus" });
    const broker = find(stacks.celery.objects, "NetworkPolicy", "redis-broker-allow").spec as Any;
    assert.ok(
      broker.ingress.some(
        (r: Any) => r.from[0].podSelector?.matchLabels?.app === "celery-exporter",
      ),
      "the broker must admit the exporter it was configured for",
    );
  });

  it("monitoring.enabled=false renders none of it", () => {
    for (const name of MONITORING) assert.equal(workload("off", name), undefined, name);
    assert.equal(stacks.off.outputs.prometheusUrl, undefined);
  });
});
