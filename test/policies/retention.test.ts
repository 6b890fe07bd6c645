import { after, before, describe, it } from "node:test";
import type { PolicyPackServer } from "../../scripts/lib/policy-pack";
import { expectClean, expectViolation, prodConfig, startPack } from "../helpers/policy";
import {
  Loose,
  MONITORING_EXEMPTIONS,
  compliantStack,
  loki,
  postgresBackup,
  prometheus,
  withEdit,
  without,
} from "./fixtures";

const replace = (kind: string, name: string, by: ReturnType<typeof postgresBackup>) =>
  compliantStack().map((o) => (o.kind === kind && o.metadata.name === name ? by : o));

describe("retention policies", () => {
  let pack: PolicyPackServer;
  before(async () => {
    pack = await startPack(prodConfig(MONITORING_EXEMPTIONS));
  });
  after(() => pack?.close());

  describe("backup-retention", () => {
    it("reports a PostgreSQL backup kept 3 days against prod's 30", async () => {
      await expectViolation(
        pack,
        replace("CronJob", "postgresql-backup", postgresBackup(3)),
        "backup-retention",
        "CronJob/postgresql-backup",
        /keeps 3 days, below this stack's minimum of 30 days/,
      );
    });
    it("reports a backup that does not declare its retention", async () => {
      await expectViolation(
        pack,
        withEdit("CronJob", "postgresql-backup", (o: Loose) => delete o.metadata.annotations),
        "backup-retention",
        "CronJob/postgresql-backup",
        /annotation backup\.stock-analysis\.io\/retention-days missing/,
      );
    });
    it("reports a script env that disagrees with the declared retention", async () => {
      await expectViolation(
        pack,
        withEdit("CronJob", "postgresql-backup", (o: Loose) => {
          o.spec.jobTemplate.spec.template.spec.containers[0].env[0].value = "2";
        }),
        "backup-retention",
        "CronJob/postgresql-backup",
        /BACKUP_RETENTION_DAYS=2 but the CronJob declares 30 days/,
      );
      await expectViolation(
        pack,
        withEdit("CronJob", "postgresql-backup", (o: Loose) => {
          o.spec.jobTemplate.spec.template.spec.containers[0].env[0] = {
            name: "RETENTION_DAYS",
            value: "7",
          };
        }),
        "backup-retention",
        "CronJob/postgresql-backup",
        /RETENTION_DAYS=7 but the CronJob declares 30 days/,
      );
    });
    it("applies the default minimum to targets without their own", async () => {
      const uploads = postgresBackup(5) as Loose;
      uploads.metadata.name = "uploads-backup";
      uploads.metadata.labels["backup.stock-analysis.io/target"] = "uploads";
      uploads.spec.jobTemplate.spec.template.spec.containers[0].env = [];
      await expectViolation(
        pack,
        [...compliantStack(), uploads],
        "backup-retention",
        "CronJob/uploads-backup",
        /keeps 5 days, below this stack's minimum of 7 days/,
      );
    });
    it("accepts 30 days or more", async () => {
      await expectClean(pack, replace("CronJob", "postgresql-backup", postgresBackup(35)));
    });
  });

  describe("backup-coverage", () => {
    it("reports a StatefulSet whose backup CronJob is missing", async () => {
      await expectViolation(
        pack,
        without("CronJob", "postgresql-backup").filter(
          (o) => o.metadata.name !== "postgresql-backup-allow",
        ),
        "backup-coverage",
        "StatefulSet/postgresql",
        /no active backup CronJob for data set "postgresql"/,
      );
    });
    it("does not count a suspended backup", async () => {
      await expectViolation(
        pack,
        withEdit("CronJob", "postgresql-backup", (o: Loose) => (o.spec.suspend = true)),
        "backup-coverage",
        "StatefulSet/postgresql",
      );
    });
    it("requires Prometheus to be backed up or exempted", async () => {
      // prod.json exempts the real Prometheus; without exemptions the rule applies.
      await pack.configure(prodConfig({ "backup-coverage": {} }));
      try {
        await expectViolation(
          pack,
          compliantStack().filter((o) => o.metadata.name !== "loki"),
          "backup-coverage",
          "StatefulSet/prometheus",
        );
      } finally {
        await pack.configure(prodConfig(MONITORING_EXEMPTIONS));
      }
    });
    it("matches replicas to a backup through their target label", async () => {
      const replica = withEdit("StatefulSet", "postgresql", (o: Loose) => {
        o.metadata.name = "postgresql-replica";
        o.metadata.labels.app = "postgresql-replica";
        o.metadata.labels["backup.stock-analysis.io/target"] = "postgresql";
        o.spec.selector.matchLabels.app = "postgresql-replica";
        o.spec.template.metadata.labels.app = "postgresql-replica";
        o.spec.template.spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.labelSelector.matchLabels.app =
          "postgresql-replica";
      }).find((o) => o.metadata.name === "postgresql-replica")!;
      const allow = compliantStack().find((o) => o.metadata.name === "postgresql-allow")!;
      const replicaAllow = {
        ...allow,
        metadata: { ...allow.metadata, name: "postgresql-replica-allow" },
        spec: {
          ...(allow.spec as object),
          podSelector: { matchLabels: { app: "postgresql-replica" } },
        },
      };
      const pdb = compliantStack().find(
        (o) => o.kind === "PodDisruptionBudget" && o.metadata.name === "postgresql",
      )!;
      const replicaPdb = {
        ...pdb,
        metadata: { ...pdb.metadata, name: "postgresql-replica" },
        spec: { maxUnavailable: 1, selector: { matchLabels: { app: "postgresql-replica" } } },
      };
      await expectClean(pack, [...compliantStack(), replica, replicaAllow, replicaPdb]);
    });
  });

  describe("metrics-retention", () => {
    it("reports Prometheus keeping 3 days", async () => {
      await expectViolation(
        pack,
        replace("StatefulSet", "prometheus", prometheus("3d")),
        "metrics-retention",
        "StatefulSet/prometheus",
        /keeps metrics 3d, below this stack's minimum of 30d/,
      );
    });
    it("reports Prometheus without the flag (15d default)", async () => {
      await expectViolation(
        pack,
        withEdit("StatefulSet", "prometheus", (o: Loose) =>
          o.spec.template.spec.containers[0].args.pop(),
        ),
        "metrics-retention",
        "StatefulSet/prometheus",
        /15d \(Prometheus default/,
      );
    });
    it("reads the flag as two arguments and in other units", async () => {
      await expectClean(
        pack,
        withEdit("StatefulSet", "prometheus", (o: Loose) => {
          o.spec.template.spec.containers[0].args = ["--storage.tsdb.retention.time", "720h"];
        }),
      );
      await expectClean(pack, replace("StatefulSet", "prometheus", prometheus("5w")));
    });
  });

  describe("log-retention", () => {
    it("reports Loki keeping 3 days against prod's 7", async () => {
      await expectViolation(
        pack,
        replace("StatefulSet", "loki", loki("3")),
        "log-retention",
        "StatefulSet/loki",
        /keeps 3 days of logs, below this stack's minimum of 7 days/,
      );
    });
    it("reports Loki without the retention annotation", async () => {
      await expectViolation(
        pack,
        withEdit("StatefulSet", "loki", (o: Loose) => delete o.metadata.annotations),
        "log-retention",
        "StatefulSet/loki",
        /does not declare its retention/,
      );
    });
  });

  describe("job-safety", () => {
    const edit = (fn: (o: Loose) => unknown) => withEdit("CronJob", "postgresql-backup", fn);
    it("reports a CronJob that allows concurrent runs", async () => {
      await expectViolation(
        pack,
        edit((o) => delete o.spec.concurrencyPolicy),
        "job-safety",
        "CronJob/postgresql-backup",
        /concurrencyPolicy is unset \(Allow\)/,
      );
      await expectViolation(
        pack,
        edit((o) => (o.spec.concurrencyPolicy = "Replace")),
        "job-safety",
        "CronJob/postgresql-backup",
      );
    });
    it("reports missing history limits and starting deadline", async () => {
      await expectViolation(
        pack,
        edit((o) => {
          delete o.spec.successfulJobsHistoryLimit;
          delete o.spec.startingDeadlineSeconds;
        }),
        "job-safety",
        "CronJob/postgresql-backup",
        /spec\.startingDeadlineSeconds is not set/,
      );
    });
    it("reports a job template without deadline or retry limit", async () => {
      await expectViolation(
        pack,
        edit((o) => delete o.spec.jobTemplate.spec.activeDeadlineSeconds),
        "job-safety",
        "CronJob/postgresql-backup",
        /spec\.jobTemplate\.spec\.activeDeadlineSeconds is not set/,
      );
    });
    it("checks plain Jobs too", async () => {
      const backup = postgresBackup();
      const job = {
        apiVersion: "batch/v1",
        kind: "Job",
        metadata: {
          ...backup.metadata,
          name: "postgresql-restore-check",
          labels: {
            ...(backup.metadata.labels as object),
            "backup.stock-analysis.io/target": undefined,
          },
        },
        spec: { ...(backup.spec as Loose).jobTemplate.spec, backoffLimit: undefined },
      };
      await expectViolation(
        pack,
        [...compliantStack(), job],
        "job-safety",
        "Job/postgresql-restore-check",
        /spec\.backoffLimit is not set/,
      );
    });
  });
});
