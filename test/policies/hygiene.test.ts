import { after, before, describe, it } from "node:test";
import type { PolicyPackServer } from "../../scripts/lib/policy-pack";
import { expectClean, expectViolation, prodConfig, startPack } from "../helpers/policy";
import { Loose, MONITORING_EXEMPTIONS, compliantStack, withEdit } from "./fixtures";

describe("hygiene policies", () => {
  let pack: PolicyPackServer;
  before(async () => {
    pack = await startPack(prodConfig(MONITORING_EXEMPTIONS));
  });
  after(() => pack?.close());

  describe("explicit-names", () => {
    it("reports an object without metadata.name", async () => {
      await expectViolation(
        pack,
        withEdit("Service", "web", (o: Loose) => delete o.metadata.name),
        "explicit-names",
        "Service/<unnamed>",
        /no metadata\.name/,
      );
    });
    it("reports a namespaced object without metadata.namespace, not a Namespace", async () => {
      await expectViolation(
        pack,
        withEdit("Service", "web", (o: Loose) => delete o.metadata.namespace),
        "explicit-names",
        "Service/web",
        /no metadata\.namespace/,
      );
    });
  });

  describe("recommended-labels", () => {
    it("reports a workload missing a recommended label", async () => {
      await expectViolation(
        pack,
        withEdit(
          "Deployment",
          "web",
          (o: Loose) => delete o.metadata.labels["app.kubernetes.io/instance"],
        ),
        "recommended-labels",
        "Deployment/web",
        /metadata\.labels lack app\.kubernetes\.io\/instance/,
      );
    });
    it("reports a pod template missing a recommended label", async () => {
      await expectViolation(
        pack,
        withEdit(
          "StatefulSet",
          "prometheus",
          (o: Loose) => delete o.spec.template.metadata.labels["app.kubernetes.io/component"],
        ),
        "recommended-labels",
        "StatefulSet/prometheus",
        /pod template labels lack app\.kubernetes\.io\/component,/,
      );
    });
    it("asks shared objects only for part-of and managed-by", async () => {
      await expectViolation(
        pack,
        withEdit("NetworkPolicy", "default-deny-all", (o: Loose) => delete o.metadata.labels),
        "recommended-labels",
        "NetworkPolicy/default-deny-all",
        /lack app\.kubernetes\.io\/part-of, app\.kubernetes\.io\/managed-by\. Fix/,
      );
    });
  });

  describe("service-type", () => {
    it("reports NodePort and LoadBalancer Services", async () => {
      await expectViolation(
        pack,
        withEdit("Service", "web", (o: Loose) => (o.spec.type = "NodePort")),
        "service-type",
        "Service/web",
        /type NodePort exposes it outside the cluster/,
      );
      await expectViolation(
        pack,
        withEdit("Service", "web", (o: Loose) => (o.spec.type = "LoadBalancer")),
        "service-type",
        "Service/web",
      );
    });
    it("allows the ingress controller's Service", async () => {
      const controller = {
        apiVersion: "v1",
        kind: "Service",
        metadata: {
          name: "ingress-nginx-controller",
          namespace: "ingress-nginx",
          labels: { ...(compliantStack()[3].metadata as Loose).labels },
        },
        spec: { type: "LoadBalancer", selector: { app: "ingress-nginx" }, ports: [{ port: 443 }] },
      };
      await expectClean(pack, [...compliantStack(), controller]);
    });
  });
});
