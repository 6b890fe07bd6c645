/**
 * Retention: backups, metrics and logs are kept at least the stack's minimum, every stateful
 * workload has a backup schedule, and scheduled jobs cannot pile up or run forever.
 *
 * Contract for component authors (docs/ARCHITECTURE.md, "Policies"):
 * - a backup CronJob carries the label `backup.stock-analysis.io/target: <data set>` and the
 *   annotation `backup.stock-analysis.io/retention-days: "<days>"`; when its containers get the
 *   retention through an env var (`BACKUP_RETENTION_DAYS`, or any `*RETENTION_DAYS`), the value
 *   must equal the annotation;
 * - a StatefulSet's data set is its `backup.stock-analysis.io/target` label, else its `app` label;
 * - Prometheus retention is read from its `--storage.tsdb.retention.time` argument;
 * - a Loki workload carries `logs.stock-analysis.io/retention-days: "<days>"`.
 */
import {
  CRON_JOB,
  JOB,
  SERVING_TYPES,
  STATEFUL_SET,
  annotationsOf,
  containersOf,
  imageBaseName,
  labelsOf,
  metadataOf,
  workloadOf,
} from "./lib/k8s";
import { resourcePolicy, stackPolicy } from "./lib/policy";
import { parseDays, parseDurationDays } from "./lib/quantity";
import { Obj, absent, arr, at, isUnknown, obj, str } from "./lib/values";

export const BACKUP_TARGET_LABEL = "backup.stock-analysis.io/target";
export const BACKUP_RETENTION_ANNOTATION = "backup.stock-analysis.io/retention-days";
export const BACKUP_RETENTION_ENV = "BACKUP_RETENTION_DAYS";
/** Env vars that carry a backup script's retention (`BACKUP_RETENTION_DAYS`, `RETENTION_DAYS`, …). */
const RETENTION_ENV = /(^|_)RETENTION_DAYS$/;
export const LOG_RETENTION_ANNOTATION = "logs.stock-analysis.io/retention-days";
const PROMETHEUS_RETENTION_FLAG = "--storage.tsdb.retention.time";
/** What Prometheus keeps when the flag is absent. */
const PROMETHEUS_DEFAULT_RETENTION_DAYS = 15;

interface BackupRetentionConfig {
  minimumDays?: Record<string, number>;
  defaultMinimumDays?: number;
}

const DEFAULT_BACKUP_MINIMUM_DAYS = 7;

export const backupRetention = resourcePolicy<BackupRetentionConfig>({
  name: "backup-retention",
  description: `Backup CronJobs (label ${BACKUP_TARGET_LABEL}) keep backups at least the stack's minimum number of days for their data set.`,
  types: [CRON_JOB],
  config: {
    properties: {
      minimumDays: {
        type: "object",
        description: "Minimum retention in days per backup target (data set).",
        additionalProperties: { type: "integer", minimum: 1 },
        default: {},
      },
      defaultMinimumDays: {
        type: "integer",
        minimum: 1,
        default: DEFAULT_BACKUP_MINIMUM_DAYS,
        description: "Minimum retention in days for targets not listed in minimumDays.",
      },
    },
  },
  check({ type, props, config }, report) {
    const meta = metadataOf(props);
    const target = str(labelsOf(meta)[BACKUP_TARGET_LABEL]);
    if (!target) return;
    const minimum =
      config.minimumDays?.[target] ?? config.defaultMinimumDays ?? DEFAULT_BACKUP_MINIMUM_DAYS;
    const raw = annotationsOf(meta)[BACKUP_RETENTION_ANNOTATION];
    if (isUnknown(raw)) return;
    const days = parseDays(raw);
    if (absent(raw) || days === undefined) {
      report(
        `backup of "${target}" does not declare its retention (annotation ${BACKUP_RETENTION_ANNOTATION} ${absent(raw) ? "missing" : `"${String(raw)}" is not a whole number of days`})`,
        `annotate the CronJob with ${BACKUP_RETENTION_ANNOTATION}: "${minimum}" (or more) and pass the same value to the backup script as ${BACKUP_RETENTION_ENV}`,
      );
      return;
    }
    if (days < minimum)
      report(
        `backup of "${target}" keeps ${days} days, below this stack's minimum of ${minimum} days`,
        `raise the backup retention to at least ${minimum} days (annotation ${BACKUP_RETENTION_ANNOTATION} and env ${BACKUP_RETENTION_ENV})`,
      );
    for (const c of containersOf(workloadOf(type, props)!)) {
      for (const e of arr(c.container.env)) {
        const env = obj(e);
        const name = str(env?.name);
        if (!name || !RETENTION_ENV.test(name)) continue;
        const value = str(env?.value);
        if (value !== undefined && parseDays(value) !== days)
          report(
            `${c.label} runs with ${name}=${value} but the CronJob declares ${days} days`,
            `derive both ${name} and the ${BACKUP_RETENTION_ANNOTATION} annotation from the same retention setting`,
          );
      }
    }
  },
});

/** The data set a StatefulSet holds, as backup CronJobs name it. */
function dataSetOf(props: Obj): string | undefined {
  const meta = metadataOf(props);
  const labels = labelsOf(meta);
  return str(labels[BACKUP_TARGET_LABEL]) ?? str(labels.app) ?? str(meta.name);
}

export const backupCoverage = stackPolicy({
  name: "backup-coverage",
  description:
    "Every stateful workload (StatefulSet) has an active backup CronJob for its data set.",
  check(objects, _config, report) {
    const scheduled = new Set<string>();
    for (const o of objects) {
      if (o.type !== CRON_JOB) continue;
      const target = str(labelsOf(metadataOf(o.props))[BACKUP_TARGET_LABEL]);
      if (target && at(o.props, "spec", "suspend") !== true) scheduled.add(target);
    }
    for (const o of objects) {
      if (o.type !== STATEFUL_SET || o.exempt !== undefined) continue;
      const dataSet = dataSetOf(o.props);
      if (!dataSet || scheduled.has(dataSet)) continue;
      report(
        o,
        `no active backup CronJob for data set "${dataSet}"`,
        `add a backup CronJob labelled ${BACKUP_TARGET_LABEL}: ${dataSet} (not suspended), or exempt StatefulSet/${str(metadataOf(o.props).name)} in policies/<stack>.json with the reason its data needs no backup`,
      );
    }
  },
});

interface MinimumDaysConfig {
  minimumDays?: number;
}

function retentionFlag(container: Obj): string | undefined | null {
  const argv = [...arr(container.command), ...arr(container.args)];
  if (isUnknown(container.command) || isUnknown(container.args)) return null;
  for (let i = 0; i < argv.length; i++) {
    const a = str(argv[i]);
    if (a === undefined) continue;
    if (a.startsWith(`${PROMETHEUS_RETENTION_FLAG}=`))
      return a.slice(PROMETHEUS_RETENTION_FLAG.length + 1);
    if (a === PROMETHEUS_RETENTION_FLAG) return str(argv[i + 1]) ?? null;
  }
  return undefined;
}

export const metricsRetention = resourcePolicy<MinimumDaysConfig>({
  name: "metrics-retention",
  description: `Prometheus keeps metrics at least the stack's minimum (${PROMETHEUS_RETENTION_FLAG}).`,
  types: SERVING_TYPES,
  config: {
    properties: {
      minimumDays: {
        type: "number",
        minimum: 0,
        default: PROMETHEUS_DEFAULT_RETENTION_DAYS,
        description: "Minimum Prometheus TSDB retention in days.",
      },
    },
  },
  check({ type, props, config }, report) {
    const minimum = config.minimumDays ?? PROMETHEUS_DEFAULT_RETENTION_DAYS;
    for (const c of containersOf(workloadOf(type, props)!)) {
      const image = str(c.container.image);
      if (c.init || !image || imageBaseName(image) !== "prometheus") continue;
      const flag = retentionFlag(c.container);
      if (flag === null) continue;
      const days = flag === undefined ? PROMETHEUS_DEFAULT_RETENTION_DAYS : parseDurationDays(flag);
      const fix = `run Prometheus with ${PROMETHEUS_RETENTION_FLAG}=${minimum}d (or longer) from the monitoring retention setting`;
      if (days === undefined)
        report(`${c.label} has an unparseable ${PROMETHEUS_RETENTION_FLAG} "${flag}"`, fix);
      else if (days < minimum)
        report(
          `${c.label} keeps metrics ${flag === undefined ? `${PROMETHEUS_DEFAULT_RETENTION_DAYS}d (Prometheus default, no ${PROMETHEUS_RETENTION_FLAG})` : flag}, below this stack's minimum of ${minimum}d`,
          fix,
        );
    }
  },
});

export const logRetention = resourcePolicy<MinimumDaysConfig>({
  name: "log-retention",
  description: `The log store (Loki) declares its retention (${LOG_RETENTION_ANNOTATION}) of at least the stack's minimum.`,
  types: SERVING_TYPES,
  config: {
    properties: {
      minimumDays: {
        type: "integer",
        minimum: 1,
        default: 1,
        description: "Minimum log retention in days.",
      },
    },
  },
  check({ type, props, config }, report) {
    const isLoki = containersOf(workloadOf(type, props)!).some((c) => {
      const image = str(c.container.image);
      return !c.init && image !== undefined && imageBaseName(image) === "loki";
    });
    if (!isLoki) return;
    const minimum = config.minimumDays ?? 1;
    const raw = annotationsOf(metadataOf(props))[LOG_RETENTION_ANNOTATION];
    if (isUnknown(raw)) return;
    const days = parseDays(raw);
    const fix = `set Loki's retention_period to at least ${minimum * 24}h (${minimum} days) and annotate the workload ${LOG_RETENTION_ANNOTATION}: "<days>" from the same setting`;
    if (days === undefined)
      report(
        `log store does not declare its retention (annotation ${LOG_RETENTION_ANNOTATION} ${absent(raw) ? "missing" : "not a whole number"})`,
        fix,
      );
    else if (days < minimum)
      report(
        `log store keeps ${days} days of logs, below this stack's minimum of ${minimum} days`,
        fix,
      );
  },
});

export const jobSafety = resourcePolicy({
  name: "job-safety",
  description:
    "CronJobs forbid concurrent runs and bound history and start delay; every Job has a deadline and a retry limit.",
  types: [CRON_JOB, JOB],
  check({ type, props }, report) {
    const spec = obj(props.spec);
    if (!spec) return;
    let jobSpec: unknown = spec;
    let jobPath = "spec";
    if (type === CRON_JOB) {
      const policy = spec.concurrencyPolicy;
      if (!isUnknown(policy) && policy !== "Forbid")
        report(
          `concurrencyPolicy is ${absent(policy) ? "unset (Allow)" : String(policy)}, so a slow run overlaps the next`,
          `set spec.concurrencyPolicy: Forbid`,
        );
      for (const field of [
        "successfulJobsHistoryLimit",
        "failedJobsHistoryLimit",
        "startingDeadlineSeconds",
      ]) {
        if (absent(spec[field]))
          report(
            `spec.${field} is not set`,
            field === "startingDeadlineSeconds"
              ? `set spec.startingDeadlineSeconds (e.g. 300) so a missed schedule is skipped instead of run late`
              : `set spec.${field} (e.g. 3) so finished Jobs are kept for inspection but bounded`,
          );
      }
      jobSpec = at(spec, "jobTemplate", "spec");
      jobPath = "spec.jobTemplate.spec";
    }
    if (isUnknown(jobSpec)) return;
    for (const field of ["activeDeadlineSeconds", "backoffLimit"]) {
      if (absent(at(jobSpec, field)))
        report(
          `${jobPath}.${field} is not set`,
          field === "activeDeadlineSeconds"
            ? `set ${jobPath}.activeDeadlineSeconds so a hung run is killed`
            : `set ${jobPath}.backoffLimit (e.g. 2) so a failing run stops retrying`,
        );
    }
  },
});

export const retentionPolicies = [
  backupRetention,
  backupCoverage,
  metricsRetention,
  logRetention,
  jobSafety,
];
