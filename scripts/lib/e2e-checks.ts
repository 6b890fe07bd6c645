/**
 * The e2e's steps against the simulated cluster: prerequisites, apply, roll-out checks and the
 * upgrade drill. Each check returns problems instead of throwing, so one run lists them all.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as path from "node:path";
import { stringify } from "yaml";
import type { Requirement } from "../../components/cluster/preflight";
import type { PlatformConfig } from "../../components/config/schema";
import { renderObjects, stackValue } from "./e2e-render";
import { runbookChecks } from "./e2e-runbook";
import type { K8sObject } from "./render-stack";
import { REPO_ROOT } from "./render-stack";
import { writeRenderDir } from "./render-files";
import {
  KubeItem,
  SimCluster,
  kubectl,
  kubectlAsync,
  kubectlOk,
  listKinds,
  sleep,
  waitUntil,
} from "./sim-cluster";

/** Prerequisites the simulator cannot provide, with the reason printed instead of a failure. */
export const SIM_GAPS: ReadonlyMap<Requirement["kind"], string> = new Map([
  ["MetricsAPI", "the simulator runs no metrics-server; the HPA cannot read CPU here"],
]);

const PROVISIONER = "kwok.x-k8s.io/volume";
const FIELD_MANAGER = "stock-analysis-e2e";
const WORKLOADS = new Set(["Deployment", "StatefulSet", "DaemonSet"]);

type Log = (msg: string) => void;

/** Cluster objects standing for each prerequisite, as ingress-nginx, cert-manager or a storage admin would create them. */
function prerequisiteObjects(reqs: Requirement[]): { crds: object[]; objects: object[] } {
  const crds: object[] = [];
  const objects: object[] = [];
  const storageClass = (name: string, isDefault: boolean) => ({
    apiVersion: "storage.k8s.io/v1",
    kind: "StorageClass",
    metadata: {
      name,
      annotations: isDefault ? { "storageclass.kubernetes.io/is-default-class": "true" } : {},
    },
    provisioner: PROVISIONER,
    volumeBindingMode: "Immediate",
    allowVolumeExpansion: true,
  });
  const certManagerCrd = (kind: string, plural: string, scope: string) => ({
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${plural}.cert-manager.io` },
    spec: {
      group: "cert-manager.io",
      scope,
      names: { kind, plural, singular: kind.toLowerCase(), listKind: `${kind}List` },
      versions: [
        {
          name: "v1",
          served: true,
          storage: true,
          schema: {
            openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
          },
        },
      ],
    },
  });
  for (const r of reqs) {
    switch (r.kind) {
      case "Namespace":
        objects.push({ apiVersion: "v1", kind: "Namespace", metadata: { name: r.name } });
        break;
      case "StorageClass":
        objects.push(storageClass(r.name, false));
        break;
      case "DefaultStorageClass":
        objects.push(storageClass("standard", true));
        break;
      case "IngressClass":
        objects.push({
          apiVersion: "networking.k8s.io/v1",
          kind: "IngressClass",
          metadata: { name: r.name },
          spec: { controller: "k8s.io/ingress-nginx" },
        });
        break;
      case "Issuer":
      case "ClusterIssuer":
        if (crds.length === 0)
          crds.push(
            certManagerCrd("Issuer", "issuers", "Namespaced"),
            certManagerCrd("ClusterIssuer", "clusterissuers", "Cluster"),
            certManagerCrd("Certificate", "certificates", "Namespaced"),
          );
        objects.push({
          apiVersion: "cert-manager.io/v1",
          kind: r.kind,
          metadata: { name: r.name, ...(r.namespace ? { namespace: r.namespace } : {}) },
          spec: { selfSigned: {} },
        });
        break;
      case "MetricsAPI":
        break;
    }
  }
  return { crds, objects };
}

/** Creates what the preflight names (never more). An Issuer's namespace must exist first. */
export function providePrerequisites(sim: SimCluster, reqs: Requirement[], log: Log): void {
  const { crds, objects } = prerequisiteObjects(reqs);
  const apply = (docs: object[]) =>
    kubectlOk(
      sim,
      ["apply", "--server-side", "-f", "-"],
      docs.map((d) => `---\n${stringify(d)}`).join(""),
    );
  if (crds.length > 0) {
    apply(crds);
    kubectlOk(sim, ["wait", "--for=condition=Established", "crd", "--all", "--timeout=60s"]);
  }
  const namespaced = objects.filter((o) => "namespace" in (o as { metadata: object }).metadata);
  for (const ns of new Set(namespaced.map((o) => (o as K8sObject).metadata.namespace!)))
    kubectl(sim, ["create", "namespace", ns]);
  if (objects.length > 0) apply(objects);
  log(
    `provided ${objects.length} prerequisite objects (${objects.map((o) => (o as K8sObject).kind).join(", ")})`,
  );
}

/**
 * The object-store credential Secrets the runbook has the operator create right after the
 * namespace, before the first deploy ("Object store"): placeholder keys here (nothing leaves the
 * simulated cluster), so the runbook's checks of them find what a real operator's cluster has.
 */
export function objectStoreSecretNames(cfg: PlatformConfig): string[] {
  const pg = cfg.postgres.backup;
  const redis = cfg.redis.backup;
  const names = [
    ...(pg.enabled ? [pg.repo?.credentialsSecret, pg.repo2?.credentialsSecret] : []),
    ...(redis.enabled ? [redis.objectStore?.credentialsSecret] : []),
  ];
  return [...new Set(names.filter((n): n is string => n !== undefined))];
}

export function provideOperatorSecrets(sim: SimCluster, cfg: PlatformConfig, log: Log): void {
  const names = objectStoreSecretNames(cfg);
  if (names.length === 0) return;
  kubectl(sim, ["create", "namespace", cfg.namespace]);
  for (const name of names)
    kubectlOk(sim, [
      "create",
      "secret",
      "generic",
      name,
      "-n",
      cfg.namespace,
      "--from-literal=access-key=e2e-placeholder",
      "--from-literal=secret-key=e2e-placeholder",
    ]);
  log(`created the operator's object-store Secrets (${names.join(", ")}) as the runbook says`);
}

const key = (o: { kind: string; metadata: { name: string; namespace?: string } }) =>
  `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`;

/** Server-side apply of a render directory in file order; returns problems (errors, warnings). */
function applyDir(sim: SimCluster, dir: string): string[] {
  const r = kubectl(sim, ["apply", "--server-side", `--field-manager=${FIELD_MANAGER}`, "-f", dir]);
  const problems = r.stderr
    .split("\n")
    .filter((l) => /^Warning:/i.test(l.trim()))
    .map((l) => `apply warning: ${l.trim()}`);
  if (r.code !== 0) problems.push(`apply failed (${r.code}): ${r.stderr.trim()}`);
  return problems;
}

/**
 * What an apply can change of an object: its generation where it has one (spec changes), else
 * a hash of the object without status and server bookkeeping (controllers write status: an
 * HPA's resourceVersion moves every sync).
 */
function desiredState(item: KubeItem): string {
  if (item.metadata.generation !== undefined) return `g${item.metadata.generation}`;
  const copy = JSON.parse(JSON.stringify(item)) as Record<string, unknown>;
  const meta = copy.metadata as Record<string, unknown>;
  for (const k of ["resourceVersion", "managedFields"]) delete meta[k];
  delete copy.status;
  return createHash("sha256").update(JSON.stringify(copy)).digest("hex").slice(0, 12);
}

function versions(sim: SimCluster, objects: K8sObject[]): Map<string, string> {
  const kinds = [...new Set(objects.map((o) => o.kind))];
  const live = new Map(listKinds(sim, kinds).map((i) => [key(i), i]));
  const out = new Map<string, string>();
  for (const o of objects) {
    const item = live.get(key(o));
    out.set(key(o), item ? desiredState(item) : "absent");
  }
  return out;
}

function changed(before: Map<string, string>, after: Map<string, string>): string[] {
  return [...after].filter(([k, v]) => before.get(k) !== v).map(([k]) => k);
}

async function waitRollouts(sim: SimCluster, objects: K8sObject[]): Promise<string[]> {
  const workloads = objects.filter((o) => WORKLOADS.has(o.kind));
  const results = await Promise.all(
    workloads.map((w) =>
      kubectlAsync(sim, [
        "rollout",
        "status",
        `${w.kind.toLowerCase()}/${w.metadata.name}`,
        "-n",
        w.metadata.namespace ?? "default",
        "--timeout=180s",
      ]).then((r) =>
        r.code === 0
          ? undefined
          : `${key(w)} did not roll out: ${r.stderr.trim() || r.stdout.trim()}`,
      ),
    ),
  );
  return results.filter((x): x is string => x !== undefined);
}

/** Every claim of the render's namespaces Bound, and each StatefulSet's claims present. */
async function waitClaims(sim: SimCluster, objects: K8sObject[]): Promise<string[]> {
  const expected: string[] = [];
  for (const o of objects) {
    if (o.kind === "PersistentVolumeClaim")
      expected.push(`${o.metadata.namespace}/${o.metadata.name}`);
    if (o.kind !== "StatefulSet") continue;
    const spec = o.spec as {
      replicas?: number;
      volumeClaimTemplates?: { metadata: { name: string } }[];
    };
    for (const t of spec.volumeClaimTemplates ?? [])
      for (let i = 0; i < (spec.replicas ?? 1); i++)
        expected.push(`${o.metadata.namespace}/${t.metadata.name}-${o.metadata.name}-${i}`);
  }
  try {
    await waitUntil("PVCs bound", 120, () => {
      const claims = new Map(
        listKinds(sim, ["PersistentVolumeClaim"]).map((c) => [
          `${c.metadata.namespace}/${c.metadata.name}`,
          String((c.status as { phase?: string } | undefined)?.phase),
        ]),
      );
      const pending = expected.filter((e) => claims.get(e) !== "Bound");
      return pending.length === 0
        ? undefined
        : pending.map((p) => `${p} ${claims.get(p) ?? "absent"}`).join(", ");
    });
    return [];
  } catch (e) {
    return [(e as Error).message];
  }
}

/** Ready endpoints a Service must have; undefined: at least one. */
type EndpointCounts = Map<string, number>;

/**
 * Services (not headless) have ready endpoints; those in `exact` exactly that many (the
 * read-write `postgresql` one, `postgresql-read` one per replica).
 */
async function waitEndpoints(
  sim: SimCluster,
  objects: K8sObject[],
  exact: EndpointCounts = new Map(),
): Promise<string[]> {
  const services = objects.filter((o) => {
    const spec = o.spec as { clusterIP?: string; selector?: object } | undefined;
    return o.kind === "Service" && spec?.clusterIP !== "None" && spec?.selector !== undefined;
  });
  try {
    await waitUntil("Service endpoints", 90, () => {
      const eps = new Map(
        listKinds(sim, ["Endpoints"]).map((e) => {
          const subsets = (e.subsets as { addresses?: unknown[] }[] | undefined) ?? [];
          return [
            `${e.metadata.namespace}/${e.metadata.name}`,
            subsets.reduce((n, s) => n + (s.addresses?.length ?? 0), 0),
          ];
        }),
      );
      const bad = services
        .map((s) => {
          const n = eps.get(`${s.metadata.namespace}/${s.metadata.name}`) ?? 0;
          const want = exact.get(s.metadata.name);
          if (want === undefined ? n === 0 : n !== want)
            return `${s.metadata.namespace}/${s.metadata.name} has ${n} ready endpoints${want === undefined ? "" : `, expected ${want}`}`;
          return undefined;
        })
        .filter((x) => x !== undefined);
      return bad.length === 0 ? undefined : bad.join(", ");
    });
    return [];
  } catch (e) {
    return [(e as Error).message];
  }
}

/**
 * Stands in for cert-manager's ingress-shim, which the simulator does not run: for each Ingress
 * annotated with an issuer, the Certificate cert-manager would create (named after the TLS
 * Secret), so the runbook's certificate commands find what a real cluster has.
 */
function certManagerShim(sim: SimCluster, objects: K8sObject[], log: Log): string[] {
  const certs: object[] = [];
  for (const o of objects) {
    if (o.kind !== "Ingress") continue;
    const ann = o.metadata.annotations ?? {};
    const issuer = ann["cert-manager.io/cluster-issuer"] ?? ann["cert-manager.io/issuer"];
    if (!issuer) continue;
    const kind = ann["cert-manager.io/cluster-issuer"] ? "ClusterIssuer" : "Issuer";
    for (const t of (o.spec as { tls?: { hosts: string[]; secretName: string }[] }).tls ?? [])
      certs.push({
        apiVersion: "cert-manager.io/v1",
        kind: "Certificate",
        metadata: { name: t.secretName, namespace: o.metadata.namespace },
        spec: { secretName: t.secretName, dnsNames: t.hosts, issuerRef: { name: issuer, kind } },
      });
  }
  if (certs.length === 0) return [];
  const r = kubectl(
    sim,
    ["apply", "--server-side", "--field-manager=cert-manager-ingress-shim", "-f", "-"],
    certs.map((c) => `---\n${stringify(c)}`).join(""),
  );
  log(`cert-manager stand-in: ${certs.length} Certificate(s) for annotated Ingresses`);
  return r.code === 0 ? [] : [`Certificates for the Ingresses: ${r.stderr.trim()}`];
}

/**
 * Stands in for Patroni, which the simulator's fake pods do not run: writes the role labels
 * Patroni keeps on the members' pods (`leader` master, the others replica), as Patroni does
 * through the same API. Returns the problems.
 */
function patroniLabels(
  sim: SimCluster,
  namespace: string,
  members: number,
  leader: number,
): string[] {
  const problems: string[] = [];
  for (let i = 0; i < members; i++) {
    const r = kubectl(sim, [
      "-n",
      namespace,
      "label",
      "pod",
      `postgresql-${i}`,
      `role=${i === leader ? "master" : "replica"}`,
      "--overwrite",
      "--field-manager=patroni",
    ]);
    if (r.code !== 0) problems.push(`label postgresql-${i}: ${r.stderr.trim()}`);
  }
  return problems;
}

/** IPs behind a Service's Endpoints. */
function endpointIps(sim: SimCluster, namespace: string, name: string): string[] {
  const ep = listKinds(sim, ["Endpoints"]).find(
    (e) => e.metadata.namespace === namespace && e.metadata.name === name,
  );
  const subsets = (ep?.subsets as { addresses?: { ip: string }[] }[] | undefined) ?? [];
  return subsets.flatMap((s) => (s.addresses ?? []).map((a) => a.ip)).sort();
}

/**
 * The read-write Service follows Patroni's leader label: move the label (what an automatic
 * failover does) and the endpoint must move to that pod, then move it back.
 */
async function leaderLabelDrill(sim: SimCluster, cfg: PlatformConfig, log: Log): Promise<string[]> {
  const ns = cfg.namespace;
  const { replicas, primary } = cfg.postgres;
  if (replicas < 2) return [];
  const next = (primary + 1) % replicas;
  const podIp = (i: number) => {
    const r = kubectl(sim, [
      "-n",
      ns,
      "get",
      "pod",
      `postgresql-${i}`,
      "-o",
      "jsonpath={.status.podIP}",
    ]);
    return r.stdout.trim();
  };
  const problems = patroniLabels(sim, ns, replicas, next);
  try {
    await waitUntil("postgresql endpoint follows the leader label", 60, () => {
      const ips = endpointIps(sim, ns, "postgresql");
      return ips.length === 1 && ips[0] === podIp(next) ? undefined : `endpoints ${ips.join(",")}`;
    });
    log(
      `Patroni stand-in: leader label moved to postgresql-${next}; the postgresql Service followed`,
    );
  } catch (e) {
    problems.push((e as Error).message);
  }
  problems.push(...patroniLabels(sim, ns, replicas, primary));
  return problems;
}

/** Pods the API refused (PodSecurity, a missing ServiceAccount, quota): FailedCreate events. */
function rejectedPods(sim: SimCluster, namespaces: string[]): string[] {
  const events = listKinds(sim, ["Event"]).filter(
    (e) => e.reason === "FailedCreate" && namespaces.includes(e.metadata.namespace ?? ""),
  );
  return events.map(
    (e) =>
      `pod creation refused for ${(e.involvedObject as { kind: string; name: string }).kind}/${(e.involvedObject as { name: string }).name}: ${String(e.message)}`,
  );
}

/** One Job from each CronJob: it must be admitted and its pod scheduled. */
async function cronJobRuns(sim: SimCluster, objects: K8sObject[]): Promise<string[]> {
  const problems: string[] = [];
  const cronJobs = objects.filter((o) => o.kind === "CronJob");
  for (const c of cronJobs) {
    const job = `${c.metadata.name}-e2e`.slice(0, 63);
    const r = kubectl(sim, [
      "create",
      "job",
      job,
      `--from=cronjob/${c.metadata.name}`,
      "-n",
      c.metadata.namespace!,
    ]);
    if (r.code !== 0)
      problems.push(`job from cronjob/${c.metadata.name} refused: ${r.stderr.trim()}`);
    else if (/warning/i.test(r.stderr))
      problems.push(`job from cronjob/${c.metadata.name}: ${r.stderr.trim()}`);
  }
  try {
    await waitUntil("CronJob pods scheduled", 90, () => {
      const pods = listKinds(sim, ["Pod"]);
      const waiting = cronJobs.filter((c) => {
        const job = `${c.metadata.name}-e2e`.slice(0, 63);
        return !pods.some(
          (p) =>
            p.metadata.namespace === c.metadata.namespace &&
            p.metadata.labels?.["job-name"] === job &&
            typeof (p.spec as { nodeName?: string }).nodeName === "string",
        );
      });
      return waiting.length === 0
        ? undefined
        : `no scheduled pod yet for ${waiting.map((c) => c.metadata.name).join(", ")}`;
    });
  } catch (e) {
    problems.push((e as Error).message);
  }
  return problems;
}

function namespacesOf(objects: K8sObject[]): string[] {
  return [...new Set(objects.map((o) => o.metadata.namespace).filter((n): n is string => !!n))];
}

/** HPA targets (kind/namespace/name) of a render. */
function hpaTargets(
  objects: K8sObject[],
): { name: string; namespace: string; min: number; max: number }[] {
  return objects
    .filter((o) => o.kind === "HorizontalPodAutoscaler")
    .map((h) => {
      const spec = h.spec as {
        scaleTargetRef: { name: string };
        minReplicas?: number;
        maxReplicas: number;
      };
      return {
        name: spec.scaleTargetRef.name,
        namespace: h.metadata.namespace!,
        min: spec.minReplicas ?? 1,
        max: spec.maxReplicas,
      };
    });
}

function liveReplicas(sim: SimCluster, namespace: string, name: string): number {
  return Number(
    kubectlOk(sim, ["get", "deployment", name, "-n", namespace, "-o", "jsonpath={.spec.replicas}"]),
  );
}

export interface E2eArgs {
  sim: SimCluster;
  stack: string;
  cfg: PlatformConfig;
  work: string;
  log: Log;
}

/** Apply, roll-out checks, then the upgrade drill. Returns every problem found. */
export async function e2eChecks(a: E2eArgs): Promise<string[]> {
  const { sim, stack, cfg, work, log } = a;
  const base = await renderObjects(stack);
  const baseDir = path.join(work, "base");
  writeRenderDir(base, baseDir);
  log(`rendered ${base.length} objects; applying ${baseDir} in file order (server-side)`);
  const applied = applyDir(sim, baseDir);
  if (applied.some((p) => p.startsWith("apply failed"))) return applied;
  const problems = [...applied];

  problems.push(...certManagerShim(sim, base, log));
  problems.push(...(await waitRollouts(sim, base)));
  problems.push(...(await waitClaims(sim, base)));
  problems.push(...patroniLabels(sim, cfg.namespace, cfg.postgres.replicas, cfg.postgres.primary));
  log(`Patroni stand-in: role labels on ${cfg.postgres.replicas} postgresql pod(s)`);
  problems.push(
    ...(await waitEndpoints(
      sim,
      base,
      new Map([
        ["postgresql", 1],
        ["postgresql-read", cfg.postgres.replicas - 1],
      ]),
    )),
  );
  problems.push(...(await leaderLabelDrill(sim, cfg, log)));
  problems.push(...(await cronJobRuns(sim, base)));
  problems.push(...rejectedPods(sim, namespacesOf(base)));
  log(`roll-out checks done (${problems.length} problems so far)`);

  // HPA-owned Deployments must not carry replicas, or every apply resets the autoscaler's count.
  const hpas = hpaTargets(base);
  for (const h of hpas) {
    const d = base.find((o) => o.kind === "Deployment" && o.metadata.name === h.name);
    if (d && (d.spec as { replicas?: number }).replicas !== undefined)
      problems.push(`Deployment/${h.name} is scaled by an HPA but the render sets spec.replicas`);
  }

  // The HPA first lifts each Deployment it owns to its floor (created without a count, it starts
  // at 1): let that settle so the drills below see only what an apply changes.
  for (const h of hpas)
    await waitUntil(`HPA brings ${h.name} to its minimum`, 60, () => {
      const n = liveReplicas(sim, h.namespace, h.name);
      return n >= h.min ? undefined : `${n} replicas`;
    }).catch((e: Error) => problems.push(e.message));

  // Drill 1: the same render again changes nothing.
  await sleep(3000);
  let before = versions(sim, base);
  problems.push(...applyDir(sim, baseDir));
  await sleep(2000);
  const noop = changed(before, versions(sim, base));
  if (noop.length > 0) problems.push(`re-applying the same render changed ${noop.join(", ")}`);
  log(`drill: identical re-apply changed ${noop.length} objects`);

  // Drill 2: one replica count changes exactly that object.
  const target = (["frontend", "api"] as const).find((k) => !cfg[k].autoscaling.enabled);
  if (target) {
    const replicas = cfg[target].replicas + 1;
    const edited = await renderObjects(stack, {
      [target]: { ...stackValue(stack, target), replicas },
    });
    const dir = path.join(work, "replicas");
    writeRenderDir(edited, dir);
    before = versions(sim, base);
    problems.push(...applyDir(sim, dir));
    await sleep(2000);
    const moved = changed(before, versions(sim, base));
    const expected = [`Deployment/${cfg.namespace}/stock-analysis-${target}`];
    if (moved.join() !== expected.join())
      problems.push(
        `changing ${target}.replicas changed [${moved.join(", ")}], expected exactly ${expected[0]}`,
      );
    log(
      `drill: ${target}.replicas ${replicas - 1} -> ${replicas} changed ${moved.join(", ") || "nothing"}`,
    );
  }

  // Drill 3: the autoscaler's count survives an unrelated apply (the base render again, which
  // undoes drill 2's replica edit of another Deployment).
  for (const h of hpas) {
    const scaled = Math.min(h.max, h.min + 2);
    kubectlOk(sim, ["scale", `deployment/${h.name}`, "-n", h.namespace, `--replicas=${scaled}`]);
    problems.push(...applyDir(sim, baseDir));
    await sleep(2000);
    const now = liveReplicas(sim, h.namespace, h.name);
    if (now !== scaled)
      problems.push(
        `Deployment/${h.name}: scaled to ${scaled}, an unrelated apply reset it to ${now}`,
      );
    log(`drill: ${h.name} scaled to ${scaled}; after an unrelated apply it has ${now}`);
  }

  problems.push(...(await storageResizeDrill(a, base)));
  if (stack === "prod") problems.push(...runbookChecks(sim, log));
  return problems;
}

/** Drill 4: Prometheus' volume grows through scripts/statefulset-resize, no PVC deleted. */
async function storageResizeDrill(a: E2eArgs, base: K8sObject[]): Promise<string[]> {
  const { sim, stack, cfg, work, log } = a;
  if (!cfg.monitoring.enabled) return [];
  const problems: string[] = [];
  const sts = base.find((o) => o.kind === "StatefulSet" && o.metadata.name === "prometheus");
  if (!sts) return ["no StatefulSet/prometheus in the render"];
  const ns = sts.metadata.namespace!;
  const grown = `${Number.parseInt(cfg.monitoring.prometheus.storage, 10) + 1}Gi`;
  const claimsBefore = listKinds(sim, ["PersistentVolumeClaim"]).filter(
    (c) => c.metadata.namespace === ns && c.metadata.name.endsWith("-prometheus-0"),
  );
  const podsBefore = podUids(sim, ns, "prometheus");
  const monitoring = stackValue(stack, "monitoring");
  const edited = await renderObjects(stack, {
    monitoring: {
      ...monitoring,
      prometheus: { ...((monitoring.prometheus as object) ?? {}), storage: grown },
    },
  });
  const dir = path.join(work, "storage");
  writeRenderDir(edited, dir);
  // As volumeClaimTemplates are immutable, a direct apply must be refused (the procedure exists for this).
  const direct = applyDir(sim, dir);
  if (!direct.some((p) => /Forbidden|immutable|forbidden/.test(p)))
    problems.push(
      `a storage-size change applied directly was not refused: ${direct.join("; ") || "applied"}`,
    );
  const resize = spawnSync(
    "bash",
    [
      path.join(REPO_ROOT, "scripts/statefulset-resize"),
      "--kubeconfig",
      sim.kubeconfig,
      "--context",
      sim.context,
      "--namespace",
      ns,
      "--yes",
      "prometheus",
      grown,
    ],
    { encoding: "utf8", env: { ...process.env, PATH: `${sim.bin}:${process.env.PATH}` } },
  );
  if (resize.status !== 0)
    return [...problems, `statefulset-resize failed: ${resize.stderr.trim()}`];
  problems.push(...applyDir(sim, dir));
  problems.push(...(await waitRollouts(sim, [sts])));
  const claimsAfter = listKinds(sim, ["PersistentVolumeClaim"]).filter(
    (c) => c.metadata.namespace === ns,
  );
  for (const c of claimsBefore) {
    const now = claimsAfter.find((x) => x.metadata.name === c.metadata.name);
    const size = (now?.spec as { resources?: { requests?: { storage?: string } } } | undefined)
      ?.resources?.requests?.storage;
    if (!now || now.metadata.uid !== c.metadata.uid)
      problems.push(`PVC ${c.metadata.name} was deleted by the resize`);
    else if (size !== grown)
      problems.push(`PVC ${c.metadata.name} requests ${size}, expected ${grown}`);
  }
  const liveSts = JSON.parse(
    kubectlOk(sim, ["get", "statefulset", "prometheus", "-n", ns, "-o", "json"]),
  ) as KubeItem;
  const tmpl = (
    liveSts.spec as {
      volumeClaimTemplates: { spec: { resources: { requests: { storage: string } } } }[];
    }
  ).volumeClaimTemplates[0].spec.resources.requests.storage;
  if (tmpl !== grown)
    problems.push(
      `StatefulSet/prometheus template size is ${tmpl} after the resize, expected ${grown}`,
    );
  const podsAfter = podUids(sim, ns, "prometheus");
  if (podsBefore.join() !== podsAfter.join())
    problems.push("the resize restarted Prometheus pods (their UIDs changed)");
  log(
    `drill: prometheus storage -> ${grown}; ${claimsBefore.length} PVC(s) kept, pods kept: ${podsBefore.join() === podsAfter.join()}`,
  );
  return problems;
}

function podUids(sim: SimCluster, ns: string, sts: string): string[] {
  return listKinds(sim, ["Pod"])
    .filter((p) => p.metadata.namespace === ns && p.metadata.name.startsWith(`${sts}-`))
    .map((p) => p.metadata.uid)
    .sort();
}
