// PostgresCluster rendered under Pulumi mocks for dev and prod.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { parse } from "yaml";
import { before, describe, it } from "node:test";
import { postgresScripts } from "../../components/postgres/content";
import { postgresExporterQueries } from "../../components/postgres/exporter-queries";
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
/** The members' patroni.yml and the dynamic configuration the config Job applies. */
const patroni = (s: string) =>
  parse((find(stacks[s].objects, "ConfigMap", "postgresql-patroni").data as Any)["patroni.yml"]);
const dcs = (s: string) =>
  parse((find(stacks[s].objects, "ConfigMap", "postgresql-patroni").data as Any)["dcs.json"]);
const jobs = (s: string) => stacks[s].objects.filter((o) => o.kind === "Job");

describe("prod: PostgresCluster", () => {
  it("runs 3 Patroni-managed members of the built image at 2000m/4Gi on 100Gi of the SSD class", () => {
    const s = sts("prod");
    assert.equal(s.replicas, 3);
    assert.equal(s.serviceName, "postgresql-headless");
    assert.equal(s.podManagementPolicy, "Parallel");
    const c = containerOf("prod", "postgresql");
    assert.match(
      c.image,
      /^registry\.stockanalysis\.com\/stock-analysis-postgres@sha256:/,
      "the pushed digest",
    );
    assert.deepEqual(c.command, ["patroni", "/etc/patroni/patroni.yml"]);
    assert.deepEqual(c.resources.requests, { cpu: "2000m", memory: "4Gi" });
    const pvc = s.volumeClaimTemplates[0].spec;
    assert.equal(pvc.resources.requests.storage, "100Gi");
    assert.equal(pvc.storageClassName, "ssd");
    // Per-pod identity from the downward API; passwords only from the Secret.
    const env = envOf(c);
    assert.deepEqual(env.PATRONI_NAME, { fieldRef: { fieldPath: "metadata.name" } });
    assert.equal(env.PATRONI_KUBERNETES_POD_IP, "$(POD_IP)");
    assert.equal(env.PATRONI_POSTGRESQL_CONNECT_ADDRESS, "$(POD_IP):5432");
    assert.deepEqual(env.PATRONI_SUPERUSER_PASSWORD, {
      secretKeyRef: { name: "postgresql", key: "superuser-password" },
    });
    for (const e of c.env as Any[])
      if (/PASSWORD$/.test(e.name)) assert.equal(e.value, undefined, `${e.name} is not plain`);
    // Readiness from Patroni's REST API: a member whose Patroni died or lost the DCS drops out.
    assert.deepEqual(c.readinessProbe.httpGet, { path: "/readiness", port: "patroni" });
    assert.deepEqual(c.livenessProbe.exec.command, ["bash", "/scripts/pg-liveness.sh"]);
    assert.equal(pod("prod").automountServiceAccountToken, true);
  });

  it("gives Patroni exactly the Role its Kubernetes DCS needs, bound to the members' account", () => {
    const role = find(stacks.prod.objects, "Role", "postgresql-patroni") as Any;
    assert.deepEqual(role.rules, [
      {
        apiGroups: [""],
        resources: ["configmaps"],
        verbs: ["create", "get", "list", "patch", "watch"],
      },
      { apiGroups: [""], resources: ["pods"], verbs: ["list", "patch", "watch"] },
    ]);
    const binding = find(stacks.prod.objects, "RoleBinding", "postgresql-patroni") as Any;
    assert.deepEqual(binding.subjects, [
      { kind: "ServiceAccount", name: pod("prod").serviceAccountName, namespace: "stock-analysis" },
    ]);
    const p = patroni("prod");
    assert.equal(p.scope, "postgresql");
    assert.equal(p.kubernetes.use_endpoints, false);
    assert.equal(p.kubernetes.role_label, "role");
    assert.equal(p.kubernetes.scope_label, "cluster-name");
    assert.equal(sts("prod").template.metadata.labels["cluster-name"], "postgresql");
    assert.equal(p.name, undefined, "member names come from the pods, not the shared file");
  });

  it("has a pinned postgres_exporter sidecar, hard anti-affinity, a PDB and non-root containers", () => {
    const e = containerOf("prod", "postgres-exporter");
    assert.match(e.image, /^quay\.io\/prometheuscommunity\/postgres-exporter:v\d/);
    assert.equal(envOf(e).DATA_SOURCE_PASS_FILE, "/secrets/monitoring-password");
    const anti =
      pod("prod").affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution;
    assert.equal(anti[0].topologyKey, "kubernetes.io/hostname");
    assert.deepEqual(anti[0].labelSelector.matchLabels, {
      app: "postgresql",
      "cluster-name": "postgresql",
    });
    const pdb = find(stacks.prod.objects, "PodDisruptionBudget", "postgresql").spec as Any;
    assert.equal(pdb.maxUnavailable, 1);
    // The WAL-archiving queries (exporter-queries.ts) from their ConfigMap, in dev and prod alike.
    for (const stack of ["dev", "prod"]) {
      const exp = containerOf(stack, "postgres-exporter");
      const file = envOf(exp).PG_EXPORTER_EXTEND_QUERY_PATH;
      const mount = exp.volumeMounts.find((m: Any) => file.startsWith(`${m.mountPath}/`));
      assert.ok(mount, `${stack}: ${file} is not on a mount`);
      const vol = pod(stack).volumes.find((v: Any) => v.name === mount.name);
      const cm = find(stacks[stack].objects, "ConfigMap", vol.configMap.name).data as Any;
      assert.equal(cm[file.slice(mount.mountPath.length + 1)], postgresExporterQueries());
    }
    assert.equal(pod("prod").securityContext.runAsUser, 999);
    for (const c of pod("prod").containers) {
      assert.equal(c.securityContext.allowPrivilegeEscalation, false);
      assert.equal(c.securityContext.readOnlyRootFilesystem, true);
      assert.deepEqual(c.securityContext.capabilities.drop, ["ALL"]);
    }
  });

  it("runs Patroni's synchronous mode with rewind and slots, and sizes buffers from 4Gi", () => {
    const d = dcs("prod");
    assert.equal(d.synchronous_mode, true);
    assert.equal(d.synchronous_mode_strict, false);
    assert.equal(d.postgresql.use_pg_rewind, true);
    assert.equal(d.postgresql.use_slots, true);
    // Prod's fast failover (Pulumi.prod.yaml postgres.failover, measured by scripts/bench/pg-failover).
    assert.deepEqual([d.ttl, d.loop_wait, d.retry_timeout], [8, 1, 3]);
    assert.ok(d.loop_wait + 2 * d.retry_timeout <= d.ttl);
    assert.equal(d.postgresql.parameters.shared_buffers, "1024MB");
    assert.equal(d.postgresql.parameters.shared_preload_libraries, "pg_stat_statements");
    assert.equal(d.postgresql.parameters.max_connections, 200);
    // The bootstrap copy in patroni.yml is the same document.
    assert.deepEqual(patroni("prod").bootstrap.dcs, d);
  });

  it("routes postgresql to the leader and postgresql-read to replicas by Patroni's role label", () => {
    const members = { app: "postgresql", "cluster-name": "postgresql" };
    const rw = find(stacks.prod.objects, "Service", "postgresql").spec as Any;
    assert.deepEqual(rw.selector, { ...members, role: "master" });
    const read = find(stacks.prod.objects, "Service", "postgresql-read").spec as Any;
    assert.deepEqual(read.selector, { ...members, role: "replica" });
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
    // Bundled small files: measured faster on the many-table set (scripts/bench/pg-backup).
    assert.match(conf, /^repo1-bundle=y$/m);
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

  it("keeps the direct DATABASE_URL in Secret postgresql-app (API and Celery use the pooler's)", () => {
    for (const d of ["stock-analysis-api", "stock-analysis-celery"]) {
      const c = (find(stacks.prod.objects, "Deployment", d).spec as Any).template.spec
        .containers[0];
      assert.deepEqual(envOf(c).DATABASE_URL, {
        secretKeyRef: { name: "postgresql-pooler-app", key: "DATABASE_URL" },
      });
    }
    assert.ok(find(stacks.prod.objects, "Secret", "postgresql-app"));
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

  it("lets only members, the pooler and the database jobs reach 5432; the REST API only members and control Jobs", () => {
    const np = find(stacks.prod.objects, "NetworkPolicy", "postgresql-allow").spec as Any;
    const from = (port: number) =>
      np.ingress
        .filter((r: Any) => r.ports.some((p: Any) => p.port === port))
        .flatMap((r: Any) => r.from.map((f: Any) => f.podSelector.matchLabels));
    assert.deepEqual(from(5432), [
      { app: "postgresql", "cluster-name": "postgresql" },
      {
        "app.kubernetes.io/component": "database-jobs",
        "app.kubernetes.io/part-of": "stock-analysis",
      },
      { app: "postgresql-pooler" },
      // The migration Job (prod) connects directly: DDL and its dump bypass the pooler.
      { app: "stock-analysis-api-migrate" },
    ]);
    assert.deepEqual(from(8008), [
      { app: "postgresql", "cluster-name": "postgresql" },
      {
        "app.kubernetes.io/component": "database-control",
        "app.kubernetes.io/part-of": "stock-analysis",
        "stock-analysis.io/patroni-control": "postgresql",
      },
    ]);
    // Out: members, and the API server (the DCS) on its ports only.
    assert.deepEqual(
      np.egress.map((r: Any) => r.ports.map((p: Any) => p.port)),
      [
        [5432, 8008],
        [443, 6443],
      ],
    );
  });
});

describe("planned switchover: postgres.primary 0 -> 2", () => {
  it("replaces the switchover Job with one for postgresql-2 and leaves the members alone", () => {
    const names = (s: string) =>
      jobs(s)
        .map((j) => j.metadata.name)
        .sort();
    assert.ok(names("prod").includes("postgresql-switchover-to-0"));
    assert.ok(names("failover").includes("postgresql-switchover-to-2"));
    const job = find(stacks.failover.objects, "Job", "postgresql-switchover-to-2").spec as Any;
    assert.deepEqual(job.template.spec.containers[0].command, [
      "bash",
      "/scripts/pg-switchover.sh",
      "postgresql-2",
    ]);
    // Identical pod template: a switchover is Patroni's business, no restart of the members.
    assert.deepEqual(sts("failover").template, sts("prod").template);
    // The Service does not name a pod: it follows the leader label wherever Patroni puts it.
    assert.deepEqual(
      find(stacks.failover.objects, "Service", "postgresql").spec,
      find(stacks.prod.objects, "Service", "postgresql").spec,
    );
  });

  it("names the config Job after the dynamic configuration it applies", () => {
    const config = jobs("prod").filter((j) => j.metadata.name.startsWith("postgresql-config-"));
    assert.equal(config.length, 1);
    const spec = config[0].spec as Any;
    assert.deepEqual(spec.template.spec.containers[0].command, [
      "bash",
      "/scripts/pg-dcs-config.sh",
      "/etc/patroni/dcs.json",
    ]);
    // A changed switchover target alone keeps the same config Job.
    assert.ok(jobs("failover").some((j) => j.metadata.name === config[0].metadata.name));
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

  it("rejects a failover timing that could leave two leaders", async () => {
    const bad = await renderRaw("prod", {
      postgres: prodPostgres({ failover: { ttl: 10, loopWait: 5, retryTimeout: 5 } }),
    });
    assert.notEqual(bad.code, 0);
    assert.match(
      bad.stderr,
      /postgres\.failover\.ttl.*loop_wait \+ 2 \* retry_timeout must be <= ttl/,
    );
  });
});

describe("dev: PostgresCluster", () => {
  it("is one small asynchronous member without off-cluster backups (no object store)", () => {
    assert.equal(sts("dev").replicas, 1);
    assert.equal(dcs("dev").synchronous_mode, false);
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

  it("still runs the weekly VACUUM ANALYZE: maintenance does not depend on backups", () => {
    assert.deepEqual(cronContainer("dev", "postgresql-maintenance").command, [
      "bash",
      "/scripts/pg-maintenance.sh",
    ]);
    assert.equal(cron("dev", "postgresql-maintenance").schedule, "0 3 * * 0");
  });
});
