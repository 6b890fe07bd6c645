/** The pack as the CLI sees it: metadata, per-stack config, exemptions, unknowns and secrets on the wire. */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { unknownValue } from "@pulumi/pulumi/runtime/rpc";
import {
  POLICIES_DIR,
  PolicyPackServer,
  analyzeAll,
  readPackConfig,
  reconcileConfig,
} from "../../scripts/lib/policy-pack";
import { stackConfigFile } from "../../scripts/lib/policy-report";
import { asResource, byPolicy, describeAll, evaluate, prodConfig } from "../helpers/policy";
import { Loose, MONITORING_EXEMPTIONS, withEdit } from "./fixtures";

const web = (fn: (o: Loose) => unknown) => withEdit("Deployment", "web", fn);
const webContainer = (o: Loose) => o.spec.template.spec.containers[0];

describe("policy pack over the analyzer protocol", () => {
  let pack: PolicyPackServer;
  before(async () => {
    pack = await PolicyPackServer.start();
  });
  after(() => pack?.close());

  it("describes itself with the package version and a config schema per policy", async () => {
    const info = await pack.info();
    const pkg = JSON.parse(fs.readFileSync(path.join(POLICIES_DIR, "package.json"), "utf8"));
    assert.equal(info.name, "stock-analysis");
    assert.equal(info.version, pkg.version);
    assert.ok(info.policies.length >= 25, `only ${info.policies.length} policies`);
    assert.equal(new Set(info.policies.map((p) => p.name)).size, info.policies.length);
    for (const p of info.policies) {
      assert.ok(p.description.length > 20, `${p.name} has no real description`);
      assert.ok(p.configSchema?.properties.exemptions, `${p.name} takes no exemptions`);
    }
  });

  it("both stack configs reconcile against the pack's schemas", async () => {
    const { policies } = await pack.info();
    const prodRun = reconcileConfig(policies, readPackConfig(stackConfigFile("prod")));
    const devRun = reconcileConfig(policies, readPackConfig(stackConfigFile("dev")));
    assert.deepEqual([...prodRun.warnings, ...devRun.warnings], []);
    const [prod, dev] = [prodRun.config, devRun.config];
    for (const p of policies) assert.equal(prod.get(p.name)!.enforcementLevel, "mandatory", p.name);
    assert.equal(dev.get("probes")!.enforcementLevel, "advisory");
    assert.equal(dev.get("minimum-replicas")!.enforcementLevel, "disabled");
    assert.deepEqual(prod.get("backup-retention")!.properties.minimumDays, {
      postgresql: 30,
      redis: 30,
    });
    assert.equal(prod.get("metrics-retention")!.properties.minimumDays, 30);
    assert.equal(prod.get("log-retention")!.properties.minimumDays, 7);
  });

  it("rejects config the CLI would reject, warns about config it would ignore", async () => {
    const { policies } = await pack.info();
    // The CLI ignores config for policies the pack lacks; the runner reports it as a warning.
    assert.deepEqual(reconcileConfig(policies, { "no-such-policy": "mandatory" }).warnings, [
      "no-such-policy: no such policy in the pack; its config is ignored",
    ]);
    assert.throws(
      () => reconcileConfig(policies, { all: "strict" as never }),
      /not a valid enforcement level/,
    );
    assert.throws(
      () => reconcileConfig(policies, { "container-resource-maximums": { maxCpu: 4 } }),
      /maxCpu: expected string/,
    );
    assert.throws(
      () => reconcileConfig(policies, { "backup-retention": { minimumDays: { postgresql: 0 } } }),
      /minimumDays\.postgresql: must be >= 1/,
    );
  });

  it("reports at the stack's enforcement level: mandatory in prod, advisory in dev, availability off in dev", async () => {
    const objects = web((o) => {
      o.spec.replicas = 1;
      webContainer(o).image = "stock-analysis:latest";
    });
    await pack.configure(prodConfig(MONITORING_EXEMPTIONS));
    const prod = await evaluate(pack, objects);
    assert.deepEqual(
      prod.map((d) => `${d.policyName}:${d.enforcementLevel}`).sort(),
      ["minimum-replicas:mandatory", "pinned-images:mandatory"],
      describeAll(prod),
    );
    await pack.configure({ ...readPackConfig(stackConfigFile("dev")), ...MONITORING_EXEMPTIONS });
    const dev = await evaluate(pack, objects);
    assert.deepEqual(
      dev.map((d) => `${d.policyName}:${d.enforcementLevel}`),
      ["pinned-images:advisory"],
      describeAll(dev),
    );
  });

  it("reports an exempted object as not applicable, with the reason", async () => {
    await pack.configure(
      prodConfig({
        ...MONITORING_EXEMPTIONS,
        "pinned-images": {
          exemptions: { "Deployment/web": "vendor ships only :latest (ticket OPS-1)" },
        },
      }),
    );
    const objects = web((o) => (webContainer(o).image = "stock-analysis:latest"));
    const res = await analyzeAll(pack, objects.map(asResource));
    assert.deepEqual(res.diagnostics, []);
    assert.ok(
      res.notApplicable.some(
        (n) =>
          n.policyName === "pinned-images" &&
          /Deployment\/web exempt: vendor ships only :latest/.test(n.reason),
      ),
    );
  });

  it("evaluates what is known when preview leaves values unknown", async () => {
    await pack.configure(prodConfig(MONITORING_EXEMPTIONS));
    const objects = web((o) => {
      const c = webContainer(o);
      c.image = unknownValue; // e.g. a digest from an image build
      c.resources = unknownValue;
      c.securityContext.privileged = true;
      o.metadata.namespace = unknownValue; // e.g. from a Namespace output
    });
    const ds = await evaluate(pack, objects);
    assert.deepEqual(
      ds.map((d) => d.policyName),
      ["no-privileged-containers"],
      describeAll(ds),
    );
    assert.ok(!ds.some((d) => /can't run .* during preview/.test(d.message)));
  });

  it("survives a whole pod spec being unknown", async () => {
    const objects = web((o) => (o.spec.template = unknownValue));
    const ds = await evaluate(pack, objects);
    // Stack policies cannot see the pods yet; nothing is guessed about them.
    assert.deepEqual(ds, [], describeAll(ds));
  });

  it("sees through Pulumi secrets on the wire", async () => {
    const objects = web((o) =>
      webContainer(o).env.push({ name: "REDIS_PASSWORD", value: "from-config" }),
    );
    const resources = objects.map(asResource);
    const i = objects.findIndex((o) => o.kind === "Deployment");
    const envIndex = webContainer(objects[i]).env.length - 1;
    resources[i].secretPaths = [`spec.template.spec.containers[0].env[${envIndex}].value`];
    const res = await analyzeAll(pack, resources);
    const hits = byPolicy(res.diagnostics, "secrets-via-secret-refs");
    assert.equal(hits.length, 1, describeAll(res.diagnostics));
    assert.match(hits[0].message, /credential REDIS_PASSWORD as a plain env value/);
  });
});
