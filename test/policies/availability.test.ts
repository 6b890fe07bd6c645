import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { PolicyPackServer } from "../../scripts/lib/policy-pack";
import { evaluate, expectClean, expectViolation, prodConfig, startPack } from "../helpers/policy";
import { Loose, MONITORING_EXEMPTIONS, compliantStack, withEdit, without } from "./fixtures";

const web = (fn: (o: Loose) => unknown) => withEdit("Deployment", "web", fn);
const pg = (fn: (o: Loose) => unknown) => withEdit("StatefulSet", "postgresql", fn);
const pdb = (fn: (o: Loose) => unknown) => withEdit("PodDisruptionBudget", "web", fn);
const pgPdb = (fn: (o: Loose) => unknown) => withEdit("PodDisruptionBudget", "postgresql", fn);

describe("availability policies", () => {
  let pack: PolicyPackServer;
  before(async () => {
    pack = await startPack(prodConfig(MONITORING_EXEMPTIONS));
  });
  after(() => pack?.close());

  describe("minimum-replicas", () => {
    it("reports a Deployment with one replica", async () => {
      await expectViolation(
        pack,
        web((o) => (o.spec.replicas = 1)),
        "minimum-replicas",
        "Deployment/web",
        /spec\.replicas is 1, below this stack's minimum of 2/,
      );
    });
    it("treats unset replicas as 1", async () => {
      await expectViolation(
        pack,
        web((o) => delete o.spec.replicas),
        "minimum-replicas",
        "Deployment/web",
        /unset \(1\)/,
      );
    });
    it("reports an HPA that may scale below the minimum", async () => {
      const hpa = {
        apiVersion: "autoscaling/v2",
        kind: "HorizontalPodAutoscaler",
        metadata: {
          name: "web",
          namespace: "stock-analysis",
          labels: (compliantStack()[2].metadata as Loose).labels,
        },
        spec: {
          scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: "web" },
          minReplicas: 1,
          maxReplicas: 5,
        },
      };
      await expectViolation(
        pack,
        [...compliantStack(), hpa],
        "minimum-replicas",
        "HorizontalPodAutoscaler/web",
        /spec\.minReplicas is 1/,
      );
      await expectClean(pack, [
        ...compliantStack(),
        { ...hpa, spec: { ...hpa.spec, minReplicas: 2 } },
      ]);
    });
    it("takes an autoscaled Deployment's count from its HPA, not spec.replicas", async () => {
      const hpa = (minReplicas: number) => ({
        apiVersion: "autoscaling/v2",
        kind: "HorizontalPodAutoscaler",
        metadata: {
          name: "web",
          namespace: "stock-analysis",
          labels: (compliantStack()[2].metadata as Loose).labels,
        },
        spec: {
          scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: "web" },
          minReplicas,
          maxReplicas: 5,
        },
      });
      const unscaled = web((o) => delete o.spec.replicas);
      await expectClean(pack, [...unscaled, hpa(2)]);
      await expectViolation(
        pack,
        [...unscaled, hpa(1)],
        "minimum-replicas",
        "HorizontalPodAutoscaler/web",
        /spec\.minReplicas is 1/,
      );
    });
  });

  describe("minimum-replicas on StatefulSets", () => {
    it("reports a StatefulSet with one replica", async () => {
      await expectViolation(
        pack,
        pg((o) => (o.spec.replicas = 1)),
        "minimum-replicas",
        "StatefulSet/postgresql",
        /spec\.replicas is 1, below this stack's minimum of 2/,
      );
    });
    it("holds single-replica Prometheus and Loki to the rule unless prod.json exempts them", async () => {
      // Same pack, prod.json without its two reviewed StatefulSet exemptions.
      await pack.configure(
        prodConfig({ ...MONITORING_EXEMPTIONS, "minimum-replicas": { minReplicas: 2 } }),
      );
      try {
        await expectViolation(
          pack,
          without("StatefulSet", "loki"),
          "minimum-replicas",
          "StatefulSet/prometheus",
          /spec\.replicas is 1/,
        );
      } finally {
        await pack.configure(prodConfig(MONITORING_EXEMPTIONS));
      }
      await expectClean(pack, compliantStack());
    });
  });

  describe("pod-disruption-budget", () => {
    it("reports a Deployment without a PDB", async () => {
      await expectViolation(
        pack,
        without("PodDisruptionBudget", "web"),
        "pod-disruption-budget",
        "Deployment/web",
        /no PodDisruptionBudget covers its pods/,
      );
    });
    it("reports a PDB that allows no disruption", async () => {
      await expectViolation(
        pack,
        pdb((o) => (o.spec.maxUnavailable = 0)),
        "pod-disruption-budget",
        "PodDisruptionBudget/web",
        /allows no voluntary disruption of Deployment\/web at 3 replicas/,
      );
      await expectViolation(
        pack,
        pdb((o) => {
          delete o.spec.maxUnavailable;
          o.spec.minAvailable = "100%";
        }),
        "pod-disruption-budget",
        "PodDisruptionBudget/web",
      );
    });
    it("accepts minAvailable below the replica count", async () => {
      await expectClean(
        pack,
        pdb((o) => {
          delete o.spec.maxUnavailable;
          o.spec.minAvailable = 2;
        }),
      );
    });
    it("reports a replicated StatefulSet without a PDB", async () => {
      const stack = without("PodDisruptionBudget", "postgresql");
      await expectViolation(
        pack,
        stack,
        "pod-disruption-budget",
        "StatefulSet/postgresql",
        /no PodDisruptionBudget covers its pods/,
      );
    });
    it("reports a StatefulSet PDB that allows no disruption, accepts one that does", async () => {
      await expectViolation(
        pack,
        pgPdb((o) => {
          delete o.spec.maxUnavailable;
          o.spec.minAvailable = 3;
        }),
        "pod-disruption-budget",
        "PodDisruptionBudget/postgresql",
        /allows no voluntary disruption of StatefulSet\/postgresql at 3 replicas/,
      );
      await expectClean(
        pack,
        pgPdb((o) => {
          delete o.spec.maxUnavailable;
          o.spec.minAvailable = 2;
        }),
      );
    });
    it("reports a PDB whose selector misses the pods", async () => {
      await expectViolation(
        pack,
        pdb((o) => (o.spec.selector.matchLabels.app = "api")),
        "pod-disruption-budget",
        "Deployment/web",
      );
    });
  });

  describe("replica-spread", () => {
    it("reports a Deployment whose replicas may share a node", async () => {
      await expectViolation(
        pack,
        web((o) => delete o.spec.template.spec.topologySpreadConstraints),
        "replica-spread",
        "Deployment/web",
        /3 replicas with no pod anti-affinity or topology spread/,
      );
    });
    it("counts an autoscaled Deployment by its HPA's floor", async () => {
      const hpa = (minReplicas: number) => ({
        apiVersion: "autoscaling/v2",
        kind: "HorizontalPodAutoscaler",
        metadata: {
          name: "web",
          namespace: "stock-analysis",
          labels: (compliantStack()[2].metadata as Loose).labels,
        },
        spec: {
          scaleTargetRef: { apiVersion: "apps/v1", kind: "Deployment", name: "web" },
          minReplicas,
          maxReplicas: 5,
        },
      });
      const unspread = web((o) => {
        delete o.spec.replicas;
        delete o.spec.template.spec.topologySpreadConstraints;
      });
      await expectViolation(
        pack,
        [...unspread, hpa(2)],
        "replica-spread",
        "Deployment/web",
        /2 replicas/,
      );
    });
    it("reports replicas that may share a node", async () => {
      await expectViolation(
        pack,
        pg((o) => delete o.spec.template.spec.affinity),
        "replica-spread",
        "StatefulSet/postgresql",
        /3 replicas with no pod anti-affinity or topology spread/,
      );
    });
    it("accepts required anti-affinity or a topology spread, and ignores single replicas", async () => {
      await expectClean(
        pack,
        pg((o) => {
          o.spec.template.spec.affinity = {
            podAntiAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: [
                {
                  topologyKey: "kubernetes.io/hostname",
                  labelSelector: { matchLabels: { app: "postgresql" } },
                },
              ],
            },
          };
        }),
      );
      await expectClean(
        pack,
        pg((o) => {
          delete o.spec.template.spec.affinity;
          o.spec.template.spec.topologySpreadConstraints = [
            {
              maxSkew: 1,
              topologyKey: "kubernetes.io/hostname",
              whenUnsatisfiable: "DoNotSchedule",
              labelSelector: { matchLabels: { app: "postgresql" } },
            },
          ];
        }),
      );
      // One replica has nothing to spread (minimum-replicas reports the count itself).
      const single = await evaluate(
        pack,
        pg((o) => {
          delete o.spec.template.spec.affinity;
          o.spec.replicas = 1;
        }),
      );
      assert.deepEqual(
        single.filter((d) => d.policyName === "replica-spread"),
        [],
      );
      assert.ok(single.some((d) => d.policyName === "minimum-replicas"));
    });
  });

  describe("probes", () => {
    it("reports a missing liveness probe", async () => {
      await expectViolation(
        pack,
        web((o) => delete o.spec.template.spec.containers[0].livenessProbe),
        "probes",
        "Deployment/web",
        /container "web" has no livenessProbe/,
      );
    });
    it("reports a serving container without a readiness probe", async () => {
      await expectViolation(
        pack,
        pg((o) => delete o.spec.template.spec.containers[0].readinessProbe),
        "probes",
        "StatefulSet/postgresql",
        /serves ports but has no readinessProbe/,
      );
    });
    it("does not require readiness from a worker without ports", async () => {
      await expectClean(
        pack,
        web((o) => {
          const c = o.spec.template.spec.containers[0];
          delete c.readinessProbe;
          c.ports = [];
        }),
      );
    });
  });
});
