import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { PolicyPackServer } from "../../scripts/lib/policy-pack";
import { expectClean, expectViolation, prodConfig, startPack } from "../helpers/policy";
import { Loose, MONITORING_EXEMPTIONS, compliantStack, withEdit } from "./fixtures";

const webContainer = (o: Loose) => o.spec.template.spec.containers[0];

describe("limits policies", () => {
  let pack: PolicyPackServer;
  before(async () => {
    pack = await startPack(prodConfig(MONITORING_EXEMPTIONS));
  });
  after(() => pack?.close());

  it("passes a fully sized stack", async () => {
    await expectClean(pack, compliantStack());
  });

  describe("container-resources", () => {
    it("reports a missing memory limit", async () => {
      await expectViolation(
        pack,
        withEdit("Deployment", "web", (o) => delete webContainer(o).resources.limits.memory),
        "container-resources",
        "Deployment/web",
        /container "web" has no limits\.memory/,
      );
    });
    it("reports an init container without requests", async () => {
      await expectViolation(
        pack,
        withEdit(
          "Deployment",
          "web",
          (o) => delete o.spec.template.spec.initContainers[0].resources.requests,
        ),
        "container-resources",
        "Deployment/web",
        /init container "migrate" has no requests\.cpu/,
      );
    });
    it("reports requests above limits", async () => {
      await expectViolation(
        pack,
        withEdit("Deployment", "web", (o) => (webContainer(o).resources.requests.memory = "1Gi")),
        "container-resources",
        "Deployment/web",
        /requests more memory \(1Gi\) than its limit \(512Mi\)/,
      );
    });
    it("checks CronJob containers through jobTemplate.spec.template.spec", async () => {
      await expectViolation(
        pack,
        withEdit(
          "CronJob",
          "postgresql-backup",
          (o) => delete o.spec.jobTemplate.spec.template.spec.containers[0].resources,
        ),
        "container-resources",
        "CronJob/postgresql-backup",
        /spec\.jobTemplate\.spec\.template\.spec\.containers\[0\]/,
      );
    });
  });

  describe("no-cpu-limits", () => {
    it("reports a CPU limit on a Deployment's container", async () => {
      await expectViolation(
        pack,
        withEdit("Deployment", "web", (o) => (webContainer(o).resources.limits.cpu = "2")),
        "no-cpu-limits",
        "Deployment/web",
        /container "web" has a CPU limit \(2\)/,
      );
    });
    it("reports a CPU limit on a StatefulSet's container (the database is latency-critical)", async () => {
      await expectViolation(
        pack,
        withEdit(
          "StatefulSet",
          "postgresql",
          (o) => (o.spec.template.spec.containers[0].resources.limits.cpu = "2000m"),
        ),
        "no-cpu-limits",
        "StatefulSet/postgresql",
        /spec\.template\.spec\.containers\[0\]\.resources\.limits\.cpu/,
      );
    });
    it("reports a CPU limit on an init container and on a CronJob's container", async () => {
      await expectViolation(
        pack,
        withEdit(
          "Deployment",
          "web",
          (o) => (o.spec.template.spec.initContainers[0].resources.limits.cpu = "500m"),
        ),
        "no-cpu-limits",
        "Deployment/web",
        /init container "migrate" has a CPU limit/,
      );
      await expectViolation(
        pack,
        withEdit(
          "CronJob",
          "postgresql-backup",
          (o) => (o.spec.jobTemplate.spec.template.spec.containers[0].resources.limits.cpu = "1"),
        ),
        "no-cpu-limits",
        "CronJob/postgresql-backup",
      );
    });
    it("accepts containers sized by CPU requests and a memory limit only", async () => {
      const stack = compliantStack();
      // The fixture is the compliant case: no container in it carries a CPU limit.
      assert.ok(
        JSON.stringify(stack).includes('"requests":{"cpu"') &&
          !/"limits":\{[^}]*"cpu"/.test(JSON.stringify(stack)),
      );
      await expectClean(pack, stack);
    });
  });

  describe("container-resource-maximums", () => {
    it("reports a memory limit above the stack maximum", async () => {
      await expectViolation(
        pack,
        withEdit("StatefulSet", "postgresql", (o) => {
          const r = o.spec.template.spec.containers[0].resources;
          r.requests.memory = "12Gi";
          r.limits.memory = "12Gi";
        }),
        "container-resource-maximums",
        "StatefulSet/postgresql",
        /limits\.memory 12Gi exceeds this stack's maximum of 8Gi/,
      );
    });
    it("judges CPU by the request when no CPU limit is set", async () => {
      await expectViolation(
        pack,
        withEdit("Deployment", "web", (o) => {
          const r = webContainer(o).resources;
          delete r.limits.cpu;
          r.requests.cpu = "6000m";
        }),
        "container-resource-maximums",
        "Deployment/web",
        /requests\.cpu 6000m exceeds this stack's maximum of 4/,
      );
    });
    it("accepts sizes at the maximum", async () => {
      await expectClean(
        pack,
        withEdit("Deployment", "web", (o) => {
          webContainer(o).resources = {
            requests: { cpu: "4", memory: "8Gi" },
            limits: { memory: "8192Mi" },
          };
        }),
      );
    });
  });
});
