import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigError, loadConfig } from "../../components/config/load";
import { readStackConfig } from "../../scripts/lib/render-stack";
import { renderRaw } from "../helpers/render";

const cfg = (o: Record<string, unknown>, secret: string[] = []) => {
  const raw = Object.fromEntries(
    Object.entries(o).map(([k, v]) => [
      `stock-analysis:${k}`,
      typeof v === "string" ? v : JSON.stringify(v),
    ]),
  );
  return loadConfig(
    raw,
    secret.map((k) => `stock-analysis:${k}`),
  );
};

/** Asserts loading fails with exactly one problem that names the key, the value and the rule. */
function rejects(
  o: Record<string, unknown>,
  key: string,
  value: string,
  rule: RegExp,
  secret: string[] = [],
) {
  try {
    cfg(o, secret);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
    const line = e.problems.find((p) => p.startsWith(`stock-analysis:${key} = `));
    assert.ok(line, `no problem names ${key}: ${e.message}`);
    assert.ok(line.includes(`= ${value}:`), `value ${value} not named in: ${line}`);
    assert.match(line, rule);
    return;
  }
  assert.fail(`config ${JSON.stringify(o)} was accepted`);
}

describe("config model", () => {
  it("accepts an empty config and fills documented defaults", () => {
    const c = cfg({});
    assert.equal(c.namespace, "stock-analysis");
    assert.equal(c.api.port, 8000);
    assert.equal(c.api.healthPath, "/health");
    assert.equal(c.cluster.mode, "existing");
    assert.equal(c.ingress.className, "nginx");
  });

  it("reproduces the manual's prod sizing from Pulumi.prod.yaml", () => {
    const { config, secretKeys } = readStackConfig("prod");
    const c = loadConfig(config, secretKeys);
    // The autoscaler owns the API's count; the model reports its floor as steady state.
    assert.equal(c.api.replicas, 3);
    assert.deepEqual(c.api.resources.requests, { cpu: "1000m", memory: "2Gi" });
    assert.deepEqual([c.api.autoscaling.minReplicas, c.api.autoscaling.maxReplicas], [3, 10]);
    assert.equal(c.api.autoscaling.enabled, true);
    assert.equal(c.frontend.replicas, 3);
    assert.deepEqual(c.frontend.resources.requests, { cpu: "100m", memory: "256Mi" });
    assert.equal(c.celery.replicas, 3);
    assert.deepEqual(c.celery.resources.requests, { cpu: "500m", memory: "1Gi" });
  });

  it("rejects negative replicas", () =>
    rejects({ api: { replicas: -1 } }, "api.replicas", "-1", /must not be negative/));
  it("rejects non-integer replicas", () =>
    rejects({ celery: { replicas: 1.5 } }, "celery.replicas", "1.5", /whole number/));
  it("rejects replicas given as text", () =>
    rejects({ frontend: { replicas: "three" } }, "frontend.replicas", '"three"', /whole number/));
  it("rejects autoscaling min > max", () =>
    rejects(
      { api: { autoscaling: { enabled: true, minReplicas: 6, maxReplicas: 4 } } },
      "api.autoscaling.minReplicas",
      "6",
      /must not exceed maxReplicas \(4\)/,
    ));
  it("rejects a fixed replica count while the autoscaler owns it", () =>
    rejects(
      { api: { replicas: 5, autoscaling: { enabled: true, minReplicas: 3, maxReplicas: 10 } } },
      "api.replicas",
      "5",
      /owned by the autoscaler .* \(it scales 3\.\.10\)/,
    ));
  it("defaults replicas to 1 without autoscaling", () =>
    assert.equal(cfg({}).frontend.replicas, 1));
  it("rejects an unknown nested key and suggests the right one", () =>
    rejects(
      { api: { replcas: 3 } },
      "api.replcas",
      "3",
      /unknown key \(did you mean "replicas"\?\)/,
    ));
  it("rejects an unknown top-level key", () =>
    rejects(
      { celeri: { replicas: 3 } },
      "celeri",
      '{"replicas":3}',
      /unknown key \(did you mean "celery"\?\)/,
    ));
  it("rejects a malformed CPU quantity", () =>
    rejects(
      {
        api: {
          resources: { requests: { cpu: "1 core", memory: "1Gi" }, limits: { memory: "1Gi" } },
        },
      },
      "api.resources.requests.cpu",
      '"1 core"',
      /Kubernetes CPU quantity/,
    ));
  it("rejects a malformed memory quantity", () =>
    rejects(
      { api: { resources: { requests: { cpu: "1", memory: "2GB" }, limits: { memory: "2Gi" } } } },
      "api.resources.requests.memory",
      '"2GB"',
      /Kubernetes memory quantity/,
    ));
  it("rejects requests above limits", () =>
    rejects(
      {
        celery: { resources: { requests: { cpu: "1", memory: "2Gi" }, limits: { memory: "1Gi" } } },
      },
      "celery.resources.limits.memory",
      '"1Gi"',
      /at least requests.memory \(2Gi\)/,
    ));
  it("rejects a CPU limit (the resource rule: requests only, no CFS quota)", () =>
    rejects(
      {
        postgres: {
          resources: { requests: { cpu: "2", memory: "4Gi" }, limits: { cpu: "2", memory: "4Gi" } },
        },
      },
      "postgres.resources.limits.cpu",
      '"2"',
      /must not be set: the platform runs without CPU limits/,
    ));
  it("rejects an untagged image", () =>
    rejects(
      { api: { image: "registry.example.com:5000/stock-analysis" } },
      "api.image",
      '"registry.example.com:5000/stock-analysis"',
      /pinned/,
    ));
  it("rejects a :latest image", () =>
    rejects(
      { celery: { image: "stock-analysis:latest" } },
      "celery.image",
      '"stock-analysis:latest"',
      /pinned/,
    ));
  it("accepts digest-pinned images", () => {
    const digest = `stock-analysis@sha256:${"a".repeat(64)}`;
    assert.equal(cfg({ api: { image: digest } }).api.image, digest);
  });
  it("rejects ingress TLS via cert-manager without an issuer", () =>
    rejects(
      { ingress: { tls: { mode: "cert-manager" } } },
      "ingress.tls.issuer",
      "(unset)",
      /required/,
    ));
  it("rejects a missing required secret", () =>
    rejects(
      { registry: { server: "registry.example.com", username: "ci" } },
      "registryPassword",
      "(unset)",
      /required secret.*pulumi config set --secret registryPassword/,
    ));
  it("refuses a secret given as plain text and never echoes it", () => {
    try {
      cfg({ registry: { server: "r.example.com", username: "ci" }, registryPassword: "hunter2" });
      assert.fail("accepted");
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /registryPassword = \[secret\]: must be set as a secret/);
      assert.doesNotMatch(e.message, /hunter2/);
    }
  });
  it("accepts the registry password when set as a secret", () => {
    const c = cfg(
      { registry: { server: "r.example.com", username: "ci" }, registryPassword: "tok" },
      ["registryPassword"],
    );
    assert.equal(c.registryPassword?.value, "tok");
  });
  it("reports every broken rule at once", () => {
    assert.throws(
      () => cfg({ api: { replicas: -1 }, frontend: { image: "nginx" } }),
      (e: unknown) => e instanceof ConfigError && e.problems.length === 2,
    );
  });

  it("fails the program before any resource is registered", async () => {
    const r = await renderRaw("prod", { api: { replicas: -3 } });
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /stock-analysis:api\.replicas = -3: must not be negative/);
    assert.match(r.stderr, /\(0 resources were registered\)/);
  });
});
