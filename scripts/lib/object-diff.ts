/**
 * What a change does to a stack's render, as a reviewer reads it: objects added, removed and
 * changed (field by field), and the delta of what the stack asks of the cluster. Pure.
 */
import type { K8sObject } from "./render-stack";
import { fmtCpu, fmtMem, stackTotals, workloadSizes } from "./summary";

export const objectKey = (o: K8sObject): string =>
  `${o.kind}/${o.metadata.namespace ? `${o.metadata.namespace}/` : ""}${o.metadata.name}`;

export interface FieldChange {
  /** `spec.template.spec.containers[0].image` */
  path: string;
  before?: unknown;
  after?: unknown;
}

export interface ObjectChange {
  key: string;
  fields: FieldChange[];
}

export interface RenderDiff {
  added: string[];
  removed: string[];
  changed: ObjectChange[];
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Every leaf that differs; lists compare by index, with the longer side's tail added/removed. */
export function fieldChanges(before: unknown, after: unknown, path = ""): FieldChange[] {
  if (isObject(before) && isObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((k) => fieldChanges(before[k], after[k], path ? `${path}.${k}` : k));
  }
  if (Array.isArray(before) && Array.isArray(after)) {
    const n = Math.max(before.length, after.length);
    const out: FieldChange[] = [];
    for (let i = 0; i < n; i++) out.push(...fieldChanges(before[i], after[i], `${path}[${i}]`));
    return out;
  }
  if (JSON.stringify(before) === JSON.stringify(after)) return [];
  return [{ path, before, after }];
}

export function diffRenders(base: K8sObject[], head: K8sObject[]): RenderDiff {
  const b = new Map(base.map((o) => [objectKey(o), o]));
  const h = new Map(head.map((o) => [objectKey(o), o]));
  const added = [...h.keys()].filter((k) => !b.has(k)).sort();
  const removed = [...b.keys()].filter((k) => !h.has(k)).sort();
  const changed: ObjectChange[] = [];
  for (const [k, o] of [...h].sort(([x], [y]) => x.localeCompare(y))) {
    const old = b.get(k);
    if (!old) continue;
    const fields = fieldChanges(old, o);
    if (fields.length > 0) changed.push({ key: k, fields });
  }
  return { added, removed, changed };
}

export const isEmptyDiff = (d: RenderDiff): boolean =>
  d.added.length + d.removed.length + d.changed.length === 0;

/** One line per quantity that moved: replicas per workload, totals, objects per kind. */
export function summaryDelta(base: K8sObject[], head: K8sObject[]): string[] {
  const lines: string[] = [];
  const reps = (objs: K8sObject[]) =>
    new Map(
      workloadSizes(objs)
        .filter((w) => w.kind !== "Job" && w.kind !== "CronJob")
        .map((w) => [
          `${w.kind}/${w.name}`,
          w.autoscaled ? `${w.autoscaled.min}-${w.autoscaled.max} (HPA)` : String(w.replicas),
        ]),
    );
  const rb = reps(base);
  const rh = reps(head);
  for (const k of [...new Set([...rb.keys(), ...rh.keys()])].sort())
    if (rb.get(k) !== rh.get(k))
      lines.push(`replicas ${k}: ${rb.get(k) ?? "–"} → ${rh.get(k) ?? "–"}`);
  const tb = stackTotals(workloadSizes(base));
  const th = stackTotals(workloadSizes(head));
  const totals: [string, keyof typeof tb, (n: number) => string][] = [
    ["CPU requests", "cpuRequestMilli", fmtCpu],
    ["memory requests", "memoryRequestBytes", fmtMem],
    ["CPU limits", "cpuLimitMilli", fmtCpu],
    ["memory limits", "memoryLimitBytes", fmtMem],
  ];
  for (const [label, field, fmt] of totals)
    if (tb[field] !== th[field]) {
      const d = th[field] - tb[field];
      lines.push(
        `${label} (steady state): ${fmt(tb[field])} → ${fmt(th[field])} (${d > 0 ? "+" : "−"}${fmt(Math.abs(d))})`,
      );
    }
  const kinds = (objs: K8sObject[]) => {
    const m = new Map<string, number>();
    for (const o of objs) m.set(o.kind, (m.get(o.kind) ?? 0) + 1);
    return m;
  };
  const kb = kinds(base);
  const kh = kinds(head);
  for (const k of [...new Set([...kb.keys(), ...kh.keys()])].sort())
    if ((kb.get(k) ?? 0) !== (kh.get(k) ?? 0))
      lines.push(`objects ${k}: ${kb.get(k) ?? 0} → ${kh.get(k) ?? 0}`);
  return lines;
}

const show = (v: unknown): string => (v === undefined ? "(absent)" : JSON.stringify(v));

export interface PolicyVerdict {
  mandatory: number;
  advisory: number;
  /** `MANDATORY minimum-replicas Deployment/x: message` lines. */
  lines: string[];
}

export interface DiffReport {
  stack: string;
  baseRef: string;
  diff: RenderDiff;
  delta: string[];
  policy: { base: PolicyVerdict; head: PolicyVerdict };
}

const verdict = (v: PolicyVerdict) =>
  v.mandatory > 0
    ? `FAIL (${v.mandatory} mandatory, ${v.advisory} advisory)`
    : `PASS (${v.advisory} advisory)`;

/** Plain text for terminals. */
export function formatText(r: DiffReport): string {
  const out = [`Stack ${r.stack}: working tree vs ${r.baseRef}`];
  const { added, removed, changed } = r.diff;
  if (isEmptyDiff(r.diff)) out.push("", "No object changes.");
  for (const k of added) out.push(`+ ${k}`);
  for (const k of removed) out.push(`- ${k}`);
  for (const c of changed) {
    out.push(`~ ${c.key}`);
    for (const f of c.fields) out.push(`    ${f.path}: ${show(f.before)} → ${show(f.after)}`);
  }
  out.push(
    "",
    `Summary: ${added.length} added, ${removed.length} removed, ${changed.length} changed`,
  );
  for (const l of r.delta) out.push(`  ${l}`);
  out.push(
    "",
    `Policy (base → working tree): ${verdict(r.policy.base)} → ${verdict(r.policy.head)}`,
  );
  for (const l of r.policy.head.lines) out.push(`  ${l}`);
  return out.join("\n");
}

/** Markdown for a pull-request comment. */
export function formatMarkdown(r: DiffReport): string {
  const { added, removed, changed } = r.diff;
  const out = [
    `### Stack \`${r.stack}\`: ${added.length} added, ${removed.length} removed, ${changed.length} changed (vs \`${r.baseRef}\`)`,
    "",
  ];
  if (!isEmptyDiff(r.diff)) {
    out.push("```diff");
    for (const k of added) out.push(`+ ${k}`);
    for (const k of removed) out.push(`- ${k}`);
    for (const c of changed) {
      out.push(`! ${c.key}`);
      for (const f of c.fields) {
        if (f.before !== undefined) out.push(`-     ${f.path}: ${show(f.before)}`);
        if (f.after !== undefined) out.push(`+     ${f.path}: ${show(f.after)}`);
      }
    }
    out.push("```", "");
  } else out.push("No object changes.", "");
  if (r.delta.length > 0) {
    out.push("| what changes | |", "|---|---|");
    for (const l of r.delta) {
      const i = l.indexOf(": ");
      out.push(`| ${l.slice(0, i)} | ${l.slice(i + 2)} |`);
    }
    out.push("");
  }
  out.push(
    `**Policy** (base → this change): ${verdict(r.policy.base)} → ${verdict(r.policy.head)}`,
  );
  for (const l of r.policy.head.lines) out.push(`- ${l}`);
  return out.join("\n");
}
