import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { memoryToBytes } from "../../components/config/validators";
import { MOCK_SECRET_PREFIX, type K8sObject } from "../../scripts/lib/render-stack";
import { podSpecOf, stackTotals, workloadSizes } from "../../scripts/lib/summary";
import { RenderResult, find, render } from "../helpers/render";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
const stacks: Record<string, RenderResult> = {};

before(async () => {
  const [dev, prod] = await Promise.all([render("dev"), render("prod")]);
  stacks.dev = dev;
  stacks.prod = prod;
});

const container = (o: K8sObject) => (podSpecOf(o) as Any).containers[0];

describe("prod stack (manual's sizing)", () => {
  const expected = [
    // The API's count belongs to its HPA (3–10): the Deployment carries none.
    { name: "stock-analysis-api", replicas: undefined, cpu: "1000m", memory: "2Gi" },
    { name: "stock-analysis-frontend", replicas: 3, cpu: "100m", memory: "256Mi" },
    { name: "stock-analysis-celery", replicas: 3, cpu: "500m", memory: "1Gi" },
  ];
  for (const e of expected) {
    it(`deployment/${e.name}: ${e.replicas ?? "HPA"} × ${e.cpu}/${e.memory}, container named like it`, () => {
      const d = find(stacks.prod.objects, "Deployment", e.name);
      assert.equal(d.metadata.namespace, "stock-analysis");
      assert.equal((d.spec as Any).replicas, e.replicas);
      assert.equal("replicas" in (d.spec as Any), e.replicas !== undefined);
      const c = container(d);
      assert.equal(c.name, e.name);
      assert.deepEqual(c.resources.requests, { cpu: e.cpu, memory: e.memory });
      assert.equal(c.resources.limits.memory, e.memory);
      assert.equal((d.spec as Any).template.metadata.labels.app, e.name);
      assert.deepEqual((d.spec as Any).selector.matchLabels, { app: e.name });
    });
  }

  it("autoscales the API 3–10 on CPU with autoscaling/v2", () => {
    const hpa = find(stacks.prod.objects, "HorizontalPodAutoscaler", "stock-analysis-api");
    assert.equal(hpa.apiVersion, "autoscaling/v2");
    const s = hpa.spec as Any;
    assert.deepEqual([s.minReplicas, s.maxReplicas], [3, 10]);
    assert.deepEqual(s.scaleTargetRef, {
      apiVersion: "apps/v1",
      kind: "Deployment",
      name: "stock-analysis-api",
    });
    assert.equal(s.metrics[0].resource.name, "cpu");
  });

  it("serves frontend at / and API at /api with cert-manager TLS", () => {
    const ing = find(stacks.prod.objects, "Ingress", "stock-analysis");
    const s = ing.spec as Any;
    assert.equal(s.ingressClassName, "nginx");
    assert.equal(ing.metadata.annotations?.["cert-manager.io/cluster-issuer"], "letsencrypt-prod");
    assert.deepEqual(s.tls[0].hosts, [
      "stockanalysis.com",
      "www.stockanalysis.com",
      "api.stockanalysis.com",
    ]);
    const main = s.rules.find((r: Any) => r.host === "stockanalysis.com");
    const byPath = Object.fromEntries(main.http.paths.map((p: Any) => [p.path, p.backend.service]));
    assert.deepEqual(byPath["/"], { name: "stock-analysis-frontend", port: { number: 8080 } });
    assert.deepEqual(byPath["/api"], { name: "stock-analysis-api", port: { number: 8000 } });
    const api = s.rules.find((r: Any) => r.host === "api.stockanalysis.com");
    assert.equal(api.http.paths[0].backend.service.name, "stock-analysis-api");
  });
});

describe("both stacks", () => {
  for (const stack of ["dev", "prod"]) {
    describe(stack, () => {
      it("names every object explicitly and places namespaced ones in stock-analysis", () => {
        const clusterScoped = new Set(["Namespace", "ClusterRole", "ClusterRoleBinding"]);
        const nodeExporterNs: string[] = [];
        for (const o of stacks[stack].objects) {
          assert.ok(o.metadata?.name, `${o.kind} without metadata.name`);
          if (clusterScoped.has(o.kind)) continue;
          const ref = `${o.kind}/${o.metadata.name}`;
          // Prometheus may discover the ingress controller's pods: a Role there, not a ClusterRole.
          const ingressDiscovery =
            ["Role", "RoleBinding"].includes(o.kind) &&
            o.metadata.name === "prometheus-discovery" &&
            o.metadata.namespace === "ingress-nginx";
          // node-exporter needs host access, which the restricted platform namespace rejects.
          if (o.metadata.namespace === "stock-analysis-node-exporter") nodeExporterNs.push(ref);
          else if (!ingressDiscovery) assert.equal(o.metadata.namespace, "stock-analysis", ref);
        }
        // Only node-exporter, its network policies and Prometheus' discovery grant live there.
        assert.deepEqual(nodeExporterNs.sort(), [
          "DaemonSet/node-exporter",
          "NetworkPolicy/default-deny-all",
          "NetworkPolicy/node-exporter-allow",
          "Role/prometheus-discovery",
          "RoleBinding/prometheus-discovery",
          "ServiceAccount/node-exporter",
        ]);
      });

      it("registers every Kubernetes object through the one explicit provider", () => {
        const k8sResources = stacks[stack].resources.filter(
          (r) => r.custom && r.type.startsWith("kubernetes:"),
        );
        assert.ok(k8sResources.length > 10);
        for (const r of k8sResources)
          assert.match(r.provider ?? "", /pulumi:providers:kubernetes::cluster-k8s::/, r.name);
      });

      it("web services have /health probes, scrape annotations, zero-downtime rollout, hardening", () => {
        for (const name of ["stock-analysis-api", "stock-analysis-frontend"]) {
          const d = find(stacks[stack].objects, "Deployment", name);
          const spec = d.spec as Any;
          const c = container(d);
          for (const probe of ["startupProbe", "readinessProbe", "livenessProbe"]) {
            assert.equal(c[probe].httpGet.path, "/health", `${name} ${probe}`);
          }
          assert.deepEqual(spec.strategy.rollingUpdate, { maxUnavailable: 0, maxSurge: 1 });
          assert.equal(c.securityContext.allowPrivilegeEscalation, false);
          assert.equal(c.securityContext.readOnlyRootFilesystem, true);
          assert.deepEqual(c.securityContext.capabilities.drop, ["ALL"]);
          assert.equal(spec.template.spec.securityContext.runAsNonRoot, true);
          assert.equal(spec.template.spec.securityContext.seccompProfile.type, "RuntimeDefault");
          assert.equal(spec.template.spec.serviceAccountName, name);
          assert.equal(spec.template.spec.automountServiceAccountToken, false);
          find(stacks[stack].objects, "ServiceAccount", name);
          find(stacks[stack].objects, "Service", name);
          const pdb = find(stacks[stack].objects, "PodDisruptionBudget", name);
          assert.equal((pdb.spec as Any).maxUnavailable, 1);
        }
        const api = find(stacks[stack].objects, "Deployment", "stock-analysis-api");
        assert.deepEqual((api.spec as Any).template.metadata.annotations, {
          "prometheus.io/scrape": "true",
          "prometheus.io/port": "8000",
          "prometheus.io/path": "/metrics",
        });
      });

      it("celery's liveness pings this very worker through the broker", () => {
        const d = find(stacks[stack].objects, "Deployment", "stock-analysis-celery");
        const c = container(d);
        const cmd = c.livenessProbe.exec.command.join(" ");
        assert.match(cmd, /celery -A app\.worker inspect ping --destination "celery@\$HOSTNAME"/);
        assert.ok(
          c.args.includes("--hostname=celery@%h"),
          "worker node name must match the ping destination",
        );
      });

      it("starts from default-deny and adds explicit allows", () => {
        const deny = find(stacks[stack].objects, "NetworkPolicy", "default-deny-all");
        assert.deepEqual(deny.spec, { podSelector: {}, policyTypes: ["Ingress", "Egress"] });
        const api = find(stacks[stack].objects, "NetworkPolicy", "stock-analysis-api-allow")
          .spec as Any;
        assert.deepEqual(api.ingress[0].from[0].namespaceSelector.matchLabels, {
          "kubernetes.io/metadata.name": "ingress-nginx",
        });
        assert.deepEqual(api.ingress[1].from[0].podSelector.matchLabels, { app: "prometheus" });
        // The API reaches PostgreSQL through PgBouncer only.
        assert.ok(
          api.egress.some(
            (r: Any) => r.to[0].podSelector?.matchLabels?.app === "postgresql-pooler",
          ),
        );
        const celery = find(stacks[stack].objects, "NetworkPolicy", "stock-analysis-celery-allow")
          .spec as Any;
        // No ingress rule at all (not `[]`: the API server drops an empty list, a perpetual diff).
        assert.equal(celery.ingress, undefined, "nothing may connect to celery workers");
        assert.deepEqual(celery.policyTypes, ["Ingress", "Egress"]);
      });

      it("keeps generated secrets inside Secrets, referenced by secretKeyRef", () => {
        const resources = stacks[stack].resources;
        for (const r of resources) {
          const isSecret = r.type === "kubernetes:core/v1:Secret";
          const text = JSON.stringify(r.inputs);
          if (!isSecret && r.type.startsWith("kubernetes:")) {
            assert.ok(
              !text.includes(MOCK_SECRET_PREFIX),
              `${r.type} ${r.name} contains a secret value`,
            );
            assert.deepEqual(r.secretPaths, [], `${r.type} ${r.name} carries secret inputs`);
          }
        }
        const appSecret = resources.find(
          (r) => r.type === "kubernetes:core/v1:Secret" && r.name === "app-secret",
        )!;
        assert.ok(
          appSecret.secretPaths.some((p) => p.startsWith("stringData")),
          "the generated key must stay a Pulumi secret",
        );
        const env = container(find(stacks[stack].objects, "Deployment", "stock-analysis-api")).env;
        const key = env.find((e: Any) => e.name === "SECRET_KEY");
        assert.deepEqual(key.valueFrom.secretKeyRef, {
          name: "stock-analysis-app",
          key: "secret-key",
        });
        for (const o of stacks[stack].objects.filter((x) => x.kind === "Secret")) {
          for (const v of Object.values((o.stringData ?? o.data ?? {}) as Record<string, string>))
            assert.equal(v, "<redacted>");
        }
      });

      it("gives every container requests and a memory limit, requests ≤ limits, no CPU limit", () => {
        for (const o of stacks[stack].objects) {
          const spec = podSpecOf(o) as Any;
          if (!spec) continue;
          for (const c of [...(spec.containers ?? []), ...(spec.initContainers ?? [])]) {
            const r = c.resources;
            assert.ok(
              r?.requests?.cpu && r?.requests?.memory && r?.limits?.memory,
              `${o.kind}/${o.metadata.name}/${c.name}`,
            );
            assert.ok(memoryToBytes(r.requests.memory)! <= memoryToBytes(r.limits.memory)!);
            // The resource rule: no CPU limits anywhere (docs/ARCHITECTURE.md).
            assert.equal(r.limits.cpu, undefined, `${o.kind}/${o.metadata.name}/${c.name}`);
          }
        }
      });
    });
  }

  it("dev fits a laptop: whole-stack requests under 2 CPU and 4Gi", () => {
    const t = stackTotals(workloadSizes(stacks.dev.objects));
    const cpu = t.cpuRequestMilli + t.batchPeakCpuRequestMilli;
    const mem = t.memoryRequestBytes + t.batchPeakMemoryRequestBytes;
    assert.ok(cpu < 2000, `dev requests ${cpu}m CPU`);
    assert.ok(mem < 4 * 2 ** 30, `dev requests ${(mem / 2 ** 30).toFixed(2)}Gi`);
  });

  it("dev creates a kind cluster that is deleted on destroy; prod targets an existing context", () => {
    const kind = stacks.dev.resources.find(
      (r) => r.type === "command:local:Command" && r.name === "cluster-kind",
    );
    assert.ok(kind);
    assert.match(String(kind.inputs.create), /^kind create cluster --name stock-analysis/);
    assert.equal(kind.inputs.delete, "kind delete cluster --name stock-analysis");
    const addons = stacks.dev.resources.find(
      (r) => r.type === "command:local:Command" && r.name === "cluster-kind-addons",
    );
    assert.ok(addons, "kind clusters get ingress-nginx and metrics-server");
    assert.equal((addons.inputs.environment as Any).KUBE_CONTEXT, "kind-stock-analysis");
    const prodProvider = stacks.prod.resources.find(
      (r) => r.type === "pulumi:providers:kubernetes",
    );
    assert.equal(prodProvider?.inputs.context, "stock-analysis-prod");
    assert.ok(!stacks.prod.resources.some((r) => r.type === "command:local:Command"));
  });

  it("exposes stable DNS names as outputs", () => {
    assert.equal(
      stacks.prod.outputs.apiUrl,
      "http://stock-analysis-api.stock-analysis.svc.cluster.local:8000",
    );
    assert.equal(stacks.prod.outputs.publicUrl, "https://stockanalysis.com");
  });

  it("changing replicas is one config value", async () => {
    const r = await render("prod", { frontend: { replicas: 4 } });
    assert.equal(
      (find(r.objects, "Deployment", "stock-analysis-frontend").spec as Any).replicas,
      4,
    );
  });

  it("leaves the count of an autoscaled Deployment to its HPA (no spec.replicas, ignoreChanges)", () => {
    const api = find(stacks.prod.objects, "Deployment", "stock-analysis-api").spec as Any;
    assert.equal(api.replicas, undefined, "an HPA-scaled Deployment must not send replicas");
    const hpa = find(stacks.prod.objects, "HorizontalPodAutoscaler", "stock-analysis-api")
      .spec as Any;
    assert.deepEqual([hpa.minReplicas, hpa.maxReplicas], [3, 10]);
    const res = stacks.prod.resources.find(
      (x) => x.type === "kubernetes:apps/v1:Deployment" && x.name === "stock-analysis-api",
    );
    assert.deepEqual(res?.options.ignoreChanges, ["spec.replicas"]);
    const frontend = stacks.prod.resources.find(
      (x) => x.type === "kubernetes:apps/v1:Deployment" && x.name === "stock-analysis-frontend",
    );
    assert.deepEqual(frontend?.options.ignoreChanges, [], "a fixed count stays ours to set");
  });
});

describe("image builds and TLS variants", () => {
  it("builds and pushes the image when a build context is configured, and runs the pushed digest", async () => {
    const r = await render("dev", {
      api: { image: "registry.example.com/stock-analysis:2.1.0", build: { context: "./app" } },
      registry: { server: "registry.example.com", username: "ci" },
    }).catch((e: Error) => e);
    // A registry without its password secret is refused: the build needs credentials.
    assert.ok(
      r instanceof Error && /registryPassword = \(unset\): is a required secret/.test(r.message),
    );

    const built = await render("dev", {
      api: { image: "registry.example.com/stock-analysis:2.1.0", build: { context: "./app" } },
    });
    const image = built.resources.find(
      (x) => x.type === "docker:index/image:Image" && x.name === "api-image",
    );
    assert.ok(image, "no docker Image resource");
    assert.equal(image.inputs.imageName, "registry.example.com/stock-analysis:2.1.0");
    assert.equal((image.inputs.build as Any).context, "./app");
    const c = container(find(built.objects, "Deployment", "stock-analysis-api"));
    assert.match(c.image, /^registry\.example\.com\/stock-analysis@sha256:[0-9a-f]{64}$/);
    // Services without a build context keep their configured tag.
    assert.equal(
      container(find(built.objects, "Deployment", "stock-analysis-frontend")).image,
      "stock-analysis-frontend:1.0.0",
    );
  });

  it("uses an existing TLS secret without cert-manager annotations", async () => {
    const r = await render("dev", {
      ingress: { hosts: ["app.example.org"], tls: { mode: "secret", secretName: "wildcard-tls" } },
    });
    const ing = find(r.objects, "Ingress", "stock-analysis");
    assert.deepEqual((ing.spec as Any).tls, [
      { hosts: ["app.example.org"], secretName: "wildcard-tls" },
    ]);
    assert.ok(
      !Object.keys(ing.metadata.annotations ?? {}).some((k) => k.startsWith("cert-manager.io")),
    );
    assert.equal(
      ing.metadata.annotations?.["nginx.ingress.kubernetes.io/force-ssl-redirect"],
      "true",
    );
  });

  it("cluster.mode yaml renders manifests to a directory instead of a cluster", async () => {
    const r = await render("dev", { cluster: { mode: "yaml", renderDir: "manifests" } });
    const p = r.resources.find((x) => x.type === "pulumi:providers:kubernetes");
    assert.equal(p?.inputs.renderYamlToDirectory, "manifests");
  });
});
