// PostgresCluster rendered under Pulumi mocks for dev and prod.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import { before, describe, it } from "node:test";
import { postgresScripts } from "../../components/postgres/content";
import type { K8sObject } from "../../scripts/lib/render-stack";
import { RenderResult, find, render, renderRaw } from "../helpers/render";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
const stacks: Record<string, RenderResult> = {};

/** The prod postgres section with some keys changed (`--set` replaces a whole top-level key). */
function prodPostgres(changes: Record<string, unknown>): Record<string, unknown> {
  const file = path.resolve(__dirname, "../../Pulumi.prod.yaml");
  return { ...parse(fs.readFileSync(file, "utf8")).config["stock-analysis:postgres"], ...changes };
}

before(async () => {
  const [dev, prod, failover] = await Promise.all([
    render("dev"),
    render("prod"),
    render("prod", { postgres: prodPostgres({ primary: 2 }) }),
  ]);
  Object.assign(stacks, { dev, prod, failover });
});

const sts = (s: string) => find(stacks[s].objects, "StatefulSet", "postgresql").spec as Any;
const pod = (s: string) => sts(s).template.spec;
const containerOf = (s: string, name: string) =>
  pod(s).containers.find((c: Any) => c.name === name);
const cron = (s: string, name: string) => find(stacks[s].objects, "CronJob", name).spec as Any;
const cronContainer = (s: string, name: string) =>
  cron(s, name).jobTemplate.spec.template.spec.containers[0];
const envOf = (c: Any) =>
  Object.fromEntries(c.env.map((e: Any) => [e.name, e.value ?? e.valueFrom]));
const conf = (s: string) =>
  (find(stacks[s].objects, "ConfigMap", "postgresql-config").data as Any)["postgresql.conf"];

describe("prod: PostgresCluster", () => {
  it("runs 1 primary + 2 replicas of pinned postgres 15 at 2000m/4Gi on 100Gi of the SSD class", () => {
    const s = sts("prod");
    assert.equal(s.replicas, 3);
    assert.equal(s.serviceName, "postgresql-headless");
    assert.equal(s.podManagementPolicy, "Parallel");
    const c = containerOf("prod", "postgresql");
    assert.match(c.image, /^postgres:15\.\d+/);
    assert.deepEqual(c.command, ["bash", "/scripts/pg-entrypoint.sh"]);
    assert.deepEqual(c.resources.requests, { cpu: "2000m", memory: "4Gi" });
    assert.deepEqual(c.resources.limits, { cpu: "2000m", memory: "4Gi" });
    const pvc = s.volumeClaimTemplates[0].spec;
    assert.equal(pvc.resources.requests.storage, "100Gi");
    assert.equal(pvc.storageClassName, "ssd");
    assert.equal(
      envOf(c).PG_PEERS,
      [0, 1, 2]
        .map((i) => `postgresql-${i}.postgresql-headless.stock-analysis.svc.cluster.local:5432`)
        .join(" "),
    );
  });

  it("has a pinned postgres_exporter sidecar, hard anti-affinity, a PDB and non-root containers", () => {
    const e = containerOf("prod", "postgres-exporter");
    assert.match(e.image, /^quay\.io\/prometheuscommunity\/postgres-exporter:v\d/);
    assert.equal(envOf(e).DATA_SOURCE_PASS_FILE, "/secrets/monitoring-password");
    const anti =
      pod("prod").affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution;
    assert.equal(anti[0].topologyKey, "kubernetes.io/hostname");
    assert.deepEqual(anti[0].labelSelector.matchLabels, { app: "postgresql" });
    const pdb = find(stacks.prod.objects, "PodDisruptionBudget", "postgresql").spec as Any;
    assert.equal(pdb.maxUnavailable, 1);
    assert.equal(pod("prod").securityContext.runAsUser, 999);
    for (const c of pod("prod").containers) {
      assert.equal(c.securityContext.allowPrivilegeEscalation, false);
      assert.equal(c.securityContext.readOnlyRootFilesystem, true);
      assert.deepEqual(c.securityContext.capabilities.drop, ["ALL"]);
    }
  });

  it("configures synchronous ANY 1 replication and sizes buffers from 4Gi", () => {
    assert.match(
      conf("prod"),
      /^synchronous_standby_names = 'ANY 1 \(postgresql_0, postgresql_1, postgresql_2\)'$/m,
    );
    assert.match(conf("prod"), /^shared_buffers = 1024MB$/m);
    assert.match(conf("prod"), /^shared_preload_libraries = 'pg_stat_statements'$/m);
  });

  it("routes Service postgresql to the configured primary; postgresql-read and headless to all", () => {
    const rw = find(stacks.prod.objects, "Service", "postgresql").spec as Any;
    assert.deepEqual(rw.selector, {
      app: "postgresql",
      "statefulset.kubernetes.io/pod-name": "postgresql-0",
    });
    const read = find(stacks.prod.objects, "Service", "postgresql-read").spec as Any;
    assert.deepEqual(read.selector, { app: "postgresql" });
    const headless = find(stacks.prod.objects, "Service", "postgresql-headless").spec as Any;
    assert.equal(headless.clusterIP, "None");
    assert.equal(headless.publishNotReadyAddresses, true);
  });

  it("mounts exactly the repository's scripts (the files the tests run)", () => {
    const cm = find(stacks.prod.objects, "ConfigMap", "postgresql-scripts");
    assert.deepEqual(cm.data, postgresScripts());
  });

  it("backs up with pgBackRest from inside the primary: weekly full, daily diff, 30 days, >= 4 fulls", () => {
    for (const [job, schedule, type] of [
      ["postgresql-backup-full", "0 2 * * 0", "full"],
      ["postgresql-backup-diff", "0 2 * * 1-6", "diff"],
    ]) {
      const b = cron("prod", job);
      assert.equal(b.schedule, schedule);
      assert.equal(b.concurrencyPolicy, "Forbid");
      assert.equal(b.jobTemplate.spec.backoffLimit, 0);
      assert.equal(b.jobTemplate.spec.template.spec.serviceAccountName, "postgresql-backup");
      const c = cronContainer("prod", job);
      assert.deepEqual(c.command, ["bash", "/scripts/pg-backup-exec.sh", type]);
      const env = envOf(c);
      assert.equal(env.BACKUP_RETENTION_DAYS, "30");
      assert.equal(env.BACKUP_MIN_FULL, "4");
      // The exec pod holds no database or object-store secret.
      assert.ok(!JSON.stringify(c.env).includes("secretKeyRef"), JSON.stringify(c.env));
    }
    // Its ServiceAccount may exec into the members and nothing else.
    const role = find(stacks.prod.objects, "Role", "postgresql-backup") as Any;
    assert.deepEqual(role.rules, [
      { apiGroups: [""], resources: ["pods"], verbs: ["list"] },
      {
        apiGroups: [""],
        resources: ["pods/exec"],
        resourceNames: ["postgresql-0", "postgresql-1", "postgresql-2"],
        verbs: ["create"],
      },
    ]);
    const conf = (find(stacks.prod.objects, "ConfigMap", "postgresql-pgbackrest") as Any).data[
      "pgbackrest.conf"
    ];
    assert.match(conf, /^repo1-s3-bucket=stock-analysis-backups$/m);
    assert.match(conf, /^repo1-path=\/stock-analysis\/prod$/m);
    assert.match(conf, /^pg1-path=\/var\/lib\/postgresql\/data\/pgdata$/m);
    assert.doesNotMatch(conf, /s3-key/);
    assert.equal(
      stacks.prod.objects.filter(
        (o) => o.kind === "PersistentVolumeClaim" && o.metadata.name === "postgresql-backups",
      ).length,
      0,
      "no backup PVC beside the data",
    );
  });

  it("verifies the newest backup in its own pod on an ephemeral volume, and vacuums weekly", () => {
    const c = cronContainer("prod", "postgresql-backup-verify");
    assert.deepEqual(c.command, ["bash", "/scripts/pg-backrest-verify.sh"]);
    const env = envOf(c);
    assert.deepEqual(env.PGBACKREST_REPO1_S3_KEY, {
      secretKeyRef: { name: "postgresql-backup-s3", key: "access-key" },
    });
    assert.equal(env.PGBACKREST_STANZA, "stock-analysis");
    const vols = cron("prod", "postgresql-backup-verify").jobTemplate.spec.template.spec.volumes;
    const scratch = vols.find((v: Any) => v.name === "verify");
    assert.equal(scratch.ephemeral.volumeClaimTemplate.spec.resources.requests.storage, "200Gi");
    assert.ok(!vols.some((v: Any) => v.persistentVolumeClaim), "never mounts a member's data");
    assert.equal(cron("prod", "postgresql-maintenance").schedule, "0 3 * * 0");
  });

  it("gives API and Celery DATABASE_URL from the postgresql-app Secret", () => {
    for (const d of ["stock-analysis-api", "stock-analysis-celery"]) {
      const c = (find(stacks.prod.objects, "Deployment", d).spec as Any).template.spec
        .containers[0];
      assert.deepEqual(envOf(c).DATABASE_URL, {
        secretKeyRef: { name: "postgresql-app", key: "DATABASE_URL" },
      });
    }
    const secret = stacks.prod.resources.find(
      (r) => r.type === "kubernetes:core/v1:Secret" && r.name === "postgresql-database-url",
    )!;
    assert.ok(secret.secretPaths.some((p) => p.startsWith("stringData")));
    const passwords = stacks.prod.resources.filter(
      (r) => r.type === "random:index/randomPassword:RandomPassword",
    );
    for (const who of ["superuser", "replication", "app", "monitoring"])
      assert.ok(
        passwords.some((p) => p.name === `postgresql-${who}-password`),
        who,
      );
  });

  it("lets only members, API, Celery and the database jobs reach 5432", () => {
    const np = find(stacks.prod.objects, "NetworkPolicy", "postgresql-allow").spec as Any;
    const from = np.ingress
      .filter((r: Any) => r.ports.some((p: Any) => p.port === 5432))
      .map((r: Any) => r.from[0].podSelector.matchLabels);
    assert.deepEqual(from, [
      { app: "postgresql" },
      {
        "app.kubernetes.io/component": "database-jobs",
        "app.kubernetes.io/part-of": "stock-analysis",
      },
      { app: "stock-analysis-api" },
      { app: "stock-analysis-celery" },
    ]);
  });
});

describe("declarative failover: postgres.primary 0 -> 2", () => {
  it("repoints Service postgresql and the role ConfigMap without rolling the StatefulSet", () => {
    const rw = find(stacks.failover.objects, "Service", "postgresql").spec as Any;
    assert.equal(rw.selector["statefulset.kubernetes.io/pod-name"], "postgresql-2");
    const role = (o: K8sObject[]) => (find(o, "ConfigMap", "postgresql-role").data as Any).primary;
    assert.equal(role(stacks.prod.objects), "0");
    assert.equal(role(stacks.failover.objects), "2");
    // Identical pod template: the entrypoints switch roles in place, no restart of the members.
    assert.deepEqual(sts("failover").template, sts("prod").template);
  });

  it("rejects a primary ordinal outside the StatefulSet and sync replication without replicas", async () => {
    const bad = await renderRaw("prod", { postgres: prodPostgres({ primary: 3 }) });
    assert.notEqual(bad.code, 0);
    assert.match(
      bad.stderr,
      /postgres\.primary = 3: must be an ordinal of the StatefulSet \(0\.\.2\)/,
    );
    const sync = await renderRaw("dev", { postgres: { synchronous: true } });
    assert.notEqual(sync.code, 0);
    assert.match(sync.stderr, /postgres\.synchronous.*needs at least one replica/);
  });
});

describe("dev: PostgresCluster", () => {
  it("is one small asynchronous member without off-cluster backups (no object store)", () => {
    assert.equal(sts("dev").replicas, 1);
    assert.match(conf("dev"), /^synchronous_standby_names = ''$/m);
    const total = pod("dev").containers.reduce(
      (n: number, c: Any) => n + parseInt(c.resources.requests.cpu, 10),
      0,
    );
    assert.ok(total <= 250, `${total}m`);
    assert.ok(
      !stacks.dev.objects.some(
        (o) => o.kind === "CronJob" && o.metadata.name.startsWith("postgresql-backup"),
      ),
    );
  });
});
