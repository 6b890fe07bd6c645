import { cpuToMillicores, memoryToBytes } from "../../components/config/validators";
import type { K8sObject } from "./render-stack";
import { unnotifiedSeverities } from "../../components/config/monitoring";
import type { PlatformConfig } from "../../components/config/schema";

interface Container {
  name: string;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
}
interface PodSpec {
  containers?: Container[];
  initContainers?: Container[];
}

/** Pod spec of a workload object, or undefined for kinds that run no pods. */
export function podSpecOf(obj: K8sObject): PodSpec | undefined {
  const spec = obj.spec as Record<string, any> | undefined; // eslint-disable-line @typescript-eslint/no-explicit-any
  switch (obj.kind) {
    case "Deployment":
    case "StatefulSet":
    case "DaemonSet":
    case "Job":
      return spec?.template?.spec;
    case "CronJob":
      return spec?.jobTemplate?.spec?.template?.spec;
    default:
      return undefined;
  }
}

export interface WorkloadSize {
  kind: string;
  name: string;
  /**
   * Pods it runs in steady state (DaemonSets count one node; batch kinds count 0; an
   * HPA-scaled workload counts its floor).
   */
  replicas: number;
  /** Set when a HorizontalPodAutoscaler owns the count. */
  autoscaled?: { min: number; max: number };
  /** Per pod: sum of containers, or the largest init container when that is bigger (as the scheduler does). */
  cpuRequestMilli: number;
  memoryRequestBytes: number;
  cpuLimitMilli: number;
  memoryLimitBytes: number;
}

function sum(
  containers: Container[] | undefined,
  field: "requests" | "limits",
  res: "cpu" | "memory",
): number {
  return (containers ?? []).reduce((acc, c) => {
    const q = c.resources?.[field]?.[res];
    if (q === undefined) return acc;
    return acc + ((res === "cpu" ? cpuToMillicores(q) : memoryToBytes(q)) ?? 0);
  }, 0);
}

function effective(spec: PodSpec, field: "requests" | "limits", res: "cpu" | "memory"): number {
  const maxInit = Math.max(0, ...(spec.initContainers ?? []).map((c) => sum([c], field, res)));
  return Math.max(sum(spec.containers, field, res), maxInit);
}

/** `<kind>/<name>` of each HPA's target, with its replica range. */
function autoscaledTargets(objects: K8sObject[]): Map<string, { min: number; max: number }> {
  const targets = new Map<string, { min: number; max: number }>();
  for (const o of objects) {
    if (o.kind !== "HorizontalPodAutoscaler") continue;
    const s = o.spec as {
      scaleTargetRef: { kind: string; name: string };
      minReplicas?: number;
      maxReplicas: number;
    };
    targets.set(`${s.scaleTargetRef.kind}/${s.scaleTargetRef.name}`, {
      min: s.minReplicas ?? 1,
      max: s.maxReplicas,
    });
  }
  return targets;
}

export function workloadSizes(objects: K8sObject[]): WorkloadSize[] {
  const out: WorkloadSize[] = [];
  const hpa = autoscaledTargets(objects);
  for (const obj of objects) {
    const spec = podSpecOf(obj);
    if (!spec) continue;
    const s = obj.spec as { replicas?: number };
    const autoscaled = hpa.get(`${obj.kind}/${obj.metadata.name}`);
    const replicas = autoscaled
      ? autoscaled.min
      : obj.kind === "Deployment" || obj.kind === "StatefulSet"
        ? (s.replicas ?? 1)
        : obj.kind === "DaemonSet"
          ? 1
          : 0;
    out.push({
      kind: obj.kind,
      name: obj.metadata.name,
      replicas,
      ...(autoscaled ? { autoscaled } : {}),
      cpuRequestMilli: effective(spec, "requests", "cpu"),
      memoryRequestBytes: effective(spec, "requests", "memory"),
      cpuLimitMilli: effective(spec, "limits", "cpu"),
      memoryLimitBytes: effective(spec, "limits", "memory"),
    });
  }
  return out;
}

export interface StackTotals {
  /** Steady state: every long-running pod at its replica count. */
  cpuRequestMilli: number;
  memoryRequestBytes: number;
  cpuLimitMilli: number;
  memoryLimitBytes: number;
  /** The largest single batch pod (Job/CronJob), which may run on top of the steady state. */
  batchPeakCpuRequestMilli: number;
  batchPeakMemoryRequestBytes: number;
}

export function stackTotals(sizes: WorkloadSize[]): StackTotals {
  const t: StackTotals = {
    cpuRequestMilli: 0,
    memoryRequestBytes: 0,
    cpuLimitMilli: 0,
    memoryLimitBytes: 0,
    batchPeakCpuRequestMilli: 0,
    batchPeakMemoryRequestBytes: 0,
  };
  for (const w of sizes) {
    t.cpuRequestMilli += w.cpuRequestMilli * w.replicas;
    t.memoryRequestBytes += w.memoryRequestBytes * w.replicas;
    t.cpuLimitMilli += w.cpuLimitMilli * w.replicas;
    t.memoryLimitBytes += w.memoryLimitBytes * w.replicas;
    if (w.kind === "Job" || w.kind === "CronJob") {
      t.batchPeakCpuRequestMilli = Math.max(t.batchPeakCpuRequestMilli, w.cpuRequestMilli);
      t.batchPeakMemoryRequestBytes = Math.max(t.batchPeakMemoryRequestBytes, w.memoryRequestBytes);
    }
  }
  return t;
}

export const fmtCpu = (m: number) => (m >= 1000 ? `${(m / 1000).toFixed(2)} CPU` : `${m}m`);
export const fmtMem = (b: number) =>
  b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(2)}Gi` : `${Math.round(b / 2 ** 20)}Mi`;

export interface CronSchedule {
  name: string;
  schedule: string;
  /** spec.timeZone; "(controller's zone)" when unset. */
  timeZone: string;
  suspended: boolean;
}

/** Every CronJob's schedule and the time zone it is read in, sorted by name. */
export function cronSchedules(objects: K8sObject[]): CronSchedule[] {
  return objects
    .filter((o) => o.kind === "CronJob")
    .map((o) => {
      const s = o.spec as { schedule: string; timeZone?: string; suspend?: boolean };
      return {
        name: o.metadata.name,
        schedule: s.schedule,
        timeZone: s.timeZone ?? "(controller's zone)",
        suspended: s.suspend === true,
      };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** UTC offset(s) of a zone over a year, "UTC+08:00" or "UTC-05:00/-04:00" where DST applies. */
export function utcOffsets(timeZone: string): string {
  const at = (iso: string) => {
    try {
      const part = new Intl.DateTimeFormat("en-US", { timeZone, timeZoneName: "longOffset" })
        .formatToParts(new Date(iso))
        .find((p) => p.type === "timeZoneName")?.value;
      // "GMT" alone is offset zero.
      return part === undefined ? undefined : part === "GMT" ? "+00:00" : part.replace("GMT", "");
    } catch {
      return undefined;
    }
  };
  const winter = at("2026-01-15T12:00:00Z");
  const summer = at("2026-07-15T12:00:00Z");
  if (winter === undefined || summer === undefined) return "offset unknown";
  return winter === summer ? `UTC${winter}` : `UTC${winter}/${summer}`;
}

export function formatSummary(stack: string, objects: K8sObject[]): string {
  const byKind = new Map<string, number>();
  for (const o of objects) byKind.set(o.kind, (byKind.get(o.kind) ?? 0) + 1);
  const sizes = workloadSizes(objects);
  const t = stackTotals(sizes);
  const lines = [`Stack ${stack}: ${objects.length} Kubernetes objects`, "", "Objects by kind:"];
  for (const [kind, n] of [...byKind].sort(([a], [b]) => a.localeCompare(b)))
    lines.push(`  ${kind.padEnd(28)} ${n}`);
  lines.push(
    "",
    "Workloads (replicas, or min-max when autoscaled and totalled at min; × per-pod requests / limits):",
  );
  for (const w of [...sizes].sort((a, b) => a.name.localeCompare(b.name))) {
    const reps =
      w.kind === "Job" || w.kind === "CronJob"
        ? "batch"
        : w.autoscaled
          ? `${w.autoscaled.min}-${w.autoscaled.max}`
          : String(w.replicas);
    lines.push(
      `  ${`${w.kind}/${w.name}`.padEnd(48)} ${reps.padStart(5)} × ${fmtCpu(w.cpuRequestMilli)}/${fmtMem(w.memoryRequestBytes)} req, ${w.cpuLimitMilli ? fmtCpu(w.cpuLimitMilli) : "no-cpu-limit"}/${fmtMem(w.memoryLimitBytes)} lim`,
    );
  }
  const crons = cronSchedules(objects);
  if (crons.length > 0) {
    lines.push("", "Schedules (CronJobs; cron fields are local time in the zone shown):");
    for (const c of crons)
      lines.push(
        `  ${`CronJob/${c.name}`.padEnd(48)} ${(c.suspended ? "(suspended)" : c.schedule).padEnd(16)} ${c.timeZone} (${utcOffsets(c.timeZone)})`,
      );
  }
  lines.push(
    "",
    `Total requests (steady state): ${fmtCpu(t.cpuRequestMilli)}, ${fmtMem(t.memoryRequestBytes)}`,
    `Total limits (steady state):   ${fmtCpu(t.cpuLimitMilli)} CPU-limited, ${fmtMem(t.memoryLimitBytes)}`,
    `Largest batch pod on top:      ${fmtCpu(t.batchPeakCpuRequestMilli)}, ${fmtMem(t.batchPeakMemoryRequestBytes)}`,
  );
  return lines.join("\n");
}

/** The summary's alerting line: which severity reaches no one (a kind stack may allow it). */
export function formatAlerting(config: PlatformConfig, stack: string): string {
  if (!config.monitoring.enabled) return "Alerting: monitoring disabled";
  const missing = unnotifiedSeverities(config);
  if (missing.length === 0) return "Alerting: every severity notifies someone (Slack, pager)";
  return `Alerting: UNNOTIFIED on ${stack} (monitoring.alerting.allowUnnotified): ${missing
    .map((m) => `${m.problem}, set ${m.secretKey}`)
    .join("; ")}`;
}
