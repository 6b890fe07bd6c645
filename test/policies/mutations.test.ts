/**
 * Mutation test: one bad change at a time to the rendered prod stack; the pack must report each
 * at mandatory level, naming the changed object and the fix. Changes that need a component the
 * stack does not render yet are skipped with the reason, never counted as passed.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  Diagnostic,
  PackResource,
  PolicyPackServer,
  analyzeAll,
  readPackConfig,
} from "../../scripts/lib/policy-pack";
import { stackConfigFile, toPackResources } from "../../scripts/lib/policy-report";
import { describeAll } from "../helpers/policy";
import { render } from "../helpers/render";
import type { Loose } from "./fixtures";
import { splitKnown } from "./known-defects";

type Props = Loose;

interface Mutation {
  name: string;
  policy: string;
  /** Picks the object to break: the first of `type` matching `pick` (default: the API's objects). */
  type: string;
  pick?: (p: Props) => boolean;
  /** Changes the object's inputs in place; `"delete"` removes the object instead. */
  apply: ((p: Props) => void) | "delete";
  /** The object the violation names, when it is not the changed one (e.g. a deleted PDB). */
  reported?: (resources: PackResource[], changed: PackResource) => string;
}

const DEPLOYMENT = "kubernetes:apps/v1:Deployment";
const STATEFUL_SET = "kubernetes:apps/v1:StatefulSet";
const CRON_JOB = "kubernetes:batch/v1:CronJob";
const name = (p: Props) => p.metadata.name as string;
const isApi = (p: Props) => name(p) === "stock-analysis-api";
/** The stack's own app objects are the default target: monitoring carries reviewed exemptions. */
const defaultPick = (m: Mutation) =>
  m.pick ?? (m.type.includes(":core/v1:Secret") ? () => true : isApi);
const podSpec = (p: Props) => p.spec.template.spec;
const main = (p: Props) => podSpec(p).containers[0];
const isBackup = (p: Props) => !!p.metadata.labels?.["backup.stock-analysis.io/target"];
const usesImage = (base: string) => (p: Props) =>
  (p.spec?.template?.spec?.containers ?? []).some((c: Props) =>
    new RegExp(`(^|/)${base}[:@]`).test(c.image),
  );
/** The workload whose pods a selector-bearing object (PDB, NetworkPolicy) protects. */
const workloadOf = (resources: PackResource[], changed: PackResource) => {
  const app =
    (changed.props as Props).spec.selector?.matchLabels?.app ??
    (changed.props as Props).spec.podSelector?.matchLabels?.app;
  const w = resources.find(
    (r) => r.type === DEPLOYMENT && (r.props as Props).spec.template.metadata.labels.app === app,
  )!;
  return `Deployment/${name(w.props)}`;
};

const MUTATIONS: Mutation[] = [
  {
    name: "memory limit removed",
    policy: "container-resources",
    type: DEPLOYMENT,
    pick: isApi,
    apply: (p) => delete main(p).resources.limits.memory,
  },
  {
    name: "memory request above its limit",
    policy: "container-resources",
    type: DEPLOYMENT,
    pick: isApi,
    apply: (p) => (main(p).resources.requests.memory = "3Gi"),
  },
  {
    name: "container sized above the stack maximum",
    policy: "container-resource-maximums",
    type: DEPLOYMENT,
    apply: (p) =>
      (main(p).resources = { requests: { cpu: "1", memory: "16Gi" }, limits: { memory: "16Gi" } }),
  },
  {
    name: "privileged container",
    policy: "no-privileged-containers",
    type: DEPLOYMENT,
    apply: (p) => (main(p).securityContext.privileged = true),
  },
  {
    name: "runs as root",
    policy: "run-as-non-root",
    type: DEPLOYMENT,
    apply: (p) => (main(p).securityContext.runAsUser = 0),
  },
  {
    name: "privilege escalation allowed",
    policy: "no-privilege-escalation",
    type: DEPLOYMENT,
    apply: (p) => (main(p).securityContext.allowPrivilegeEscalation = true),
  },
  {
    name: "capabilities kept",
    policy: "drop-all-capabilities",
    type: DEPLOYMENT,
    apply: (p) => delete main(p).securityContext.capabilities,
  },
  {
    name: "seccomp unconfined",
    policy: "seccomp-runtime-default",
    type: DEPLOYMENT,
    apply: (p) => (main(p).securityContext.seccompProfile = { type: "Unconfined" }),
  },
  {
    name: "writable root filesystem",
    policy: "read-only-root-filesystem",
    type: DEPLOYMENT,
    apply: (p) => (main(p).securityContext.readOnlyRootFilesystem = false),
  },
  {
    name: ":latest image",
    policy: "pinned-images",
    type: DEPLOYMENT,
    apply: (p) => (main(p).image = "stock-analysis:latest"),
  },
  {
    name: "untagged image",
    policy: "pinned-images",
    type: DEPLOYMENT,
    pick: (p) => name(p) === "stock-analysis-frontend",
    apply: (p) => (main(p).image = "docker.io/library/nginx"),
  },
  {
    name: "hostNetwork",
    policy: "no-host-access",
    type: DEPLOYMENT,
    apply: (p) => (podSpec(p).hostNetwork = true),
  },
  {
    name: "hostPath volume",
    policy: "no-host-access",
    type: DEPLOYMENT,
    apply: (p) =>
      (podSpec(p).volumes = [
        ...(podSpec(p).volumes ?? []),
        { name: "host", hostPath: { path: "/" } },
      ]),
  },
  {
    name: "password as plain env",
    policy: "secrets-via-secret-refs",
    type: DEPLOYMENT,
    apply: (p) => main(p).env.push({ name: "DB_PASSWORD", value: "hunter2" }),
  },
  {
    name: "API token automounted",
    policy: "service-account-token",
    type: DEPLOYMENT,
    apply: (p) => (podSpec(p).automountServiceAccountToken = true),
  },
  {
    name: "ServiceAccount automounts",
    policy: "service-account-token",
    type: "kubernetes:core/v1:ServiceAccount",
    apply: (p) => delete p.automountServiceAccountToken,
  },
  {
    name: "no default-deny NetworkPolicy",
    policy: "default-deny-network-policy",
    type: "kubernetes:networking.k8s.io/v1:NetworkPolicy",
    pick: (p) =>
      Object.keys(p.spec.podSelector ?? {}).length === 0 &&
      !(p.spec.egress ?? []).length &&
      !(p.spec.ingress ?? []).length,
    apply: "delete",
    reported: (rs) =>
      `Namespace/${name(rs.find((r) => r.type === "kubernetes:core/v1:Namespace")!.props)}`,
  },
  {
    name: "workload allow policy deleted",
    policy: "workload-network-policy",
    type: "kubernetes:networking.k8s.io/v1:NetworkPolicy",
    pick: (p) => p.spec.podSelector?.matchLabels?.app === "stock-analysis-api",
    apply: "delete",
    reported: workloadOf,
  },
  {
    name: "replicas 1",
    policy: "minimum-replicas",
    type: DEPLOYMENT,
    pick: (p) => name(p) === "stock-analysis-frontend",
    apply: (p) => (p.spec.replicas = 1),
  },
  {
    name: "HPA may scale to 1",
    policy: "minimum-replicas",
    type: "kubernetes:autoscaling/v2:HorizontalPodAutoscaler",
    apply: (p) => (p.spec.minReplicas = 1),
  },
  {
    name: "PDB deleted",
    policy: "pod-disruption-budget",
    type: "kubernetes:policy/v1:PodDisruptionBudget",
    apply: "delete",
    reported: workloadOf,
  },
  {
    name: "PDB blocks every disruption",
    policy: "pod-disruption-budget",
    type: "kubernetes:policy/v1:PodDisruptionBudget",
    apply: (p) => (p.spec.maxUnavailable = 0),
  },
  {
    name: "liveness probe removed",
    policy: "probes",
    type: DEPLOYMENT,
    apply: (p) => delete main(p).livenessProbe,
  },
  {
    name: "readiness probe removed from a serving container",
    policy: "probes",
    type: DEPLOYMENT,
    pick: isApi,
    apply: (p) => delete main(p).readinessProbe,
  },
  {
    name: "NodePort Service",
    policy: "service-type",
    type: "kubernetes:core/v1:Service",
    apply: (p) => (p.spec.type = "NodePort"),
  },
  {
    name: "recommended label missing",
    policy: "recommended-labels",
    type: "kubernetes:core/v1:Service",
    apply: (p) => delete p.metadata.labels["app.kubernetes.io/component"],
  },
  {
    name: "auto-named object",
    policy: "explicit-names",
    type: "kubernetes:core/v1:Secret",
    apply: (p) => delete p.metadata.name,
  },
  {
    name: "CronJob allows concurrent runs",
    policy: "job-safety",
    type: CRON_JOB,
    pick: () => true,
    apply: (p) => (p.spec.concurrencyPolicy = "Allow"),
  },
  {
    name: "CronJob without deadline",
    policy: "job-safety",
    type: CRON_JOB,
    pick: () => true,
    apply: (p) => delete p.spec.jobTemplate.spec.activeDeadlineSeconds,
  },
  {
    name: "backup retention 3 days",
    policy: "backup-retention",
    type: CRON_JOB,
    pick: isBackup,
    apply: (p) => (p.metadata.annotations["backup.stock-analysis.io/retention-days"] = "3"),
  },
  {
    // Redis: its data set has one backup CronJob (PostgreSQL's full and diff cover each other).
    name: "backup schedule suspended",
    policy: "backup-coverage",
    type: CRON_JOB,
    pick: (p) =>
      isBackup(p) && p.metadata.labels["backup.stock-analysis.io/target"] !== "postgresql",
    apply: (p) => (p.spec.suspend = true),
    reported: (rs, changed) => {
      const target = (changed.props as Props).metadata.labels["backup.stock-analysis.io/target"];
      const sts = rs.find(
        (r) =>
          r.type === STATEFUL_SET &&
          ((r.props as Props).metadata.labels?.["backup.stock-analysis.io/target"] ??
            (r.props as Props).metadata.labels?.app) === target,
      )!;
      return `StatefulSet/${name(sts.props)}`;
    },
  },
  {
    name: "Prometheus retention 3d",
    policy: "metrics-retention",
    type: STATEFUL_SET,
    pick: usesImage("prometheus"),
    apply: (p) =>
      (main(p).args = [
        ...main(p).args.filter((a: string) => !a.startsWith("--storage.tsdb.retention.time")),
        "--storage.tsdb.retention.time=3d",
      ]),
  },
  {
    name: "log retention 3 days",
    policy: "log-retention",
    type: STATEFUL_SET,
    pick: usesImage("loki"),
    apply: (p) =>
      (p.metadata.annotations = {
        ...p.metadata.annotations,
        "logs.stock-analysis.io/retention-days": "3",
      }),
  },
  {
    name: "Deployment replicas without a topology spread",
    policy: "replica-spread",
    type: DEPLOYMENT,
    apply: (p) => {
      delete podSpec(p).affinity;
      delete podSpec(p).topologySpreadConstraints;
    },
  },
  {
    name: "replicated StatefulSet without its PDB",
    policy: "pod-disruption-budget",
    type: "kubernetes:policy/v1:PodDisruptionBudget",
    pick: (p) => name(p) === "postgresql",
    apply: "delete",
    reported: () => "StatefulSet/postgresql",
  },
  {
    name: "CPU limit on PostgreSQL",
    policy: "no-cpu-limits",
    type: STATEFUL_SET,
    pick: (p) => name(p) === "postgresql",
    apply: (p) =>
      (main(p).resources = { ...main(p).resources, limits: { cpu: "2", memory: "4Gi" } }),
  },
  {
    name: "stateful replicas without anti-affinity",
    policy: "replica-spread",
    type: STATEFUL_SET,
    pick: (p) => p.spec.replicas >= 2,
    apply: (p) => {
      delete podSpec(p).affinity;
      delete podSpec(p).topologySpreadConstraints;
    },
  },
];

describe("mutations of the prod stack", () => {
  let pack: PolicyPackServer;
  let baseline: PackResource[];
  /** Analyze's diagnostics for each baseline resource (same index), computed once. */
  let perResource: Diagnostic[][];
  before(async () => {
    const [server, prod] = await Promise.all([PolicyPackServer.start(), render("prod")]);
    pack = server;
    await pack.configure(readPackConfig(stackConfigFile("prod")));
    baseline = toPackResources(prod.resources);
    perResource = [];
    for (const r of baseline) perResource.push((await pack.analyze(r)).diagnostics);
  });
  after(() => pack?.close());

  /**
   * What analyzeAll reports for the baseline with resource `index` changed (or deleted): Analyze
   * is a function of one resource and the pack config, so the unchanged resources' results are
   * the baseline's; only the changed one is analyzed again, and AnalyzeStack sees the whole stack.
   * (The unmodified-stack case below checks the cache against a full analyzeAll.)
   */
  async function analyzeMutated(
    resources: PackResource[],
    index: number,
    deleted: boolean,
  ): Promise<Diagnostic[]> {
    const diagnostics = perResource.filter((_, i) => i !== index).flat();
    if (!deleted) diagnostics.push(...(await pack.analyze(resources[index])).diagnostics);
    diagnostics.push(...(await pack.analyzeStack(resources)).diagnostics);
    return diagnostics;
  }

  it("the unmodified prod stack has no violation beyond the known component defects", async () => {
    const { diagnostics } = await analyzeAll(pack, baseline);
    const { unexpected } = splitKnown(diagnostics);
    assert.deepEqual(unexpected, [], describeAll(unexpected));
    // The per-resource cache the mutations use is what a full analysis reports.
    const stack = (await pack.analyzeStack(baseline)).diagnostics;
    assert.deepEqual(diagnostics, [...perResource.flat(), ...stack]);
  });

  it("has at least 20 distinct mutations the current stack can take", () => {
    const applicable = MUTATIONS.filter((m) =>
      baseline.some((r) => r.type === m.type && defaultPick(m)(r.props)),
    );
    assert.ok(applicable.length >= 20, `only ${applicable.length} applicable`);
    assert.equal(new Set(MUTATIONS.map((m) => m.name)).size, MUTATIONS.length);
  });

  for (const m of MUTATIONS) {
    it(`${m.name} → ${m.policy}`, async (t) => {
      const resources = structuredClone(baseline);
      const index = resources.findIndex((r) => r.type === m.type && defaultPick(m)(r.props));
      if (index < 0) {
        t.skip(`the prod render has no ${m.type.split(":")[2]} this mutation applies to yet`);
        return;
      }
      const changed = resources[index];
      if (m.apply === "delete") resources.splice(index, 1);
      else m.apply(changed.props);
      const ref = m.reported
        ? m.reported(resources, changed)
        : `${m.type.split(":")[2]}/${(changed.props as Props).metadata.name ?? "<unnamed>"}`;
      const diagnostics = await analyzeMutated(resources, index, m.apply === "delete");
      const hits = diagnostics.filter((d) => d.policyName === m.policy);
      const hit = hits.find((d) => d.message.includes(`${ref}:`));
      assert.ok(
        hit,
        `no ${m.policy} violation naming ${ref}:\n${describeAll(diagnostics) || "(none)"}`,
      );
      assert.equal(hit.enforcementLevel, "mandatory");
      assert.match(hit.message, /\. Fix: \S/);
    });
  }
});
