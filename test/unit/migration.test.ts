/**
 * The upgrade flow in the render: a migration Job (fresh pg_dump, then the configured command in
 * the API's image) that the API and Celery Deployments depend on, so Pulumi rolls them out only
 * after it succeeded. The ordering is read from the render's recorded dependencies; the Job's
 * scripts run for real in test/postgres/api-migrate.test.ts.
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { migrationJobName } from "../../components/app/migration";
import { ConfigError, loadConfig } from "../../components/config/load";
import { DEFAULT_MIGRATION_COMMAND } from "../../components/config/migration";
import type { RenderedResource } from "../../scripts/lib/render-stack";
import { RenderResult, find, render } from "../helpers/render";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

const JOB = "kubernetes:batch/v1:Job";
const DEPLOYMENT = "kubernetes:apps/v1:Deployment";

const byName = (r: RenderResult, type: string, name: string): RenderedResource => {
  const found = r.resources.find(
    (x) => x.type === type && (x.inputs.metadata as Any)?.name === name,
  );
  assert.ok(found, `no ${type} ${name} in the render`);
  return found;
};
const ref = (r: RenderedResource) => `${r.type}::${r.name}`;
const jobOf = (r: RenderResult) =>
  r.resources.filter((x) => x.type === JOB && x.name.endsWith("-migrate"));

describe("migration Job in the render", () => {
  let prod: RenderResult;
  let upgraded: RenderResult;
  let dev: RenderResult;
  before(async () => {
    [prod, upgraded, dev] = await Promise.all([
      render("prod"),
      render("prod", {
        api: {
          image: "stock-analysis:1.1.0",
          resources: { requests: { cpu: "1000m", memory: "2Gi" }, limits: { memory: "2Gi" } },
          autoscaling: { enabled: true, minReplicas: 3, maxReplicas: 10 },
        },
      }),
      render("dev"),
    ]);
  });

  it("the API and Celery Deployments depend on the Job, the Job on PostgreSQL", () => {
    const [job] = jobOf(prod);
    assert.ok(job, "prod renders a migration Job");
    for (const name of ["stock-analysis-api", "stock-analysis-celery"]) {
      const d = byName(prod, DEPLOYMENT, name);
      assert.ok(
        d.options.dependsOn.includes(ref(job)),
        `${name} waits for ${ref(job)}: ${d.options.dependsOn.join(", ")}`,
      );
    }
    const pg = byName(prod, "kubernetes:apps/v1:StatefulSet", "postgresql");
    assert.ok(job.options.dependsOn.includes(ref(pg)), `the Job waits for ${ref(pg)}`);
    // The frontend does not touch the database: it rolls out independently.
    assert.ok(
      !byName(prod, DEPLOYMENT, "stock-analysis-frontend").options.dependsOn.includes(ref(job)),
    );
  });

  it("fails fast and stays: no retries, no TTL, replaced (not awaited again) after a failure", () => {
    const [job] = jobOf(prod);
    const spec = job.inputs.spec as Any;
    assert.equal(spec.backoffLimit, 0);
    assert.equal(
      spec.ttlSecondsAfterFinished,
      undefined,
      "a TTL would delete it and rerun the migration",
    );
    assert.equal(spec.template.spec.restartPolicy, "Never");
    assert.equal((job.inputs.metadata as Any).annotations["pulumi.com/replaceUnready"], "true");
    assert.equal(job.options.deleteBeforeReplace, true);
    // Backup first (the PostgreSQL members' image), then the migration in the API's image.
    const members = find(prod.objects, "StatefulSet", "postgresql") as Any;
    assert.deepEqual(
      spec.template.spec.initContainers.map((c: Any) => [c.name, c.image]),
      [["backup", members.spec.template.spec.containers[0].image]],
    );
    const api = find(prod.objects, "Deployment", "stock-analysis-api") as Any;
    const migrate = spec.template.spec.containers[0];
    assert.equal(migrate.image, api.spec.template.spec.containers[0].image);
    // The configured command behind the wrapper that names a missing psql or SQL file, both
    // from the Job's scripts ConfigMap (help.sh beside them: the scripts source it).
    assert.deepEqual(migrate.command, ["sh", "/scripts/migrate.sh", ...DEFAULT_MIGRATION_COMMAND]);
    assert.deepEqual(migrate.volumeMounts[0], {
      name: "scripts",
      mountPath: "/scripts",
      readOnly: true,
    });
    const scripts = find(prod.objects, "ConfigMap", "stock-analysis-api-migrate-scripts") as Any;
    assert.deepEqual(Object.keys(scripts.data).sort(), [
      "help.sh",
      "migrate.sh",
      "pre-migrate-backup.sh",
    ]);
    assert.match(scripts.data["help.sh"], /^help_if_asked\(\) \{$/m);
    const dbUrl = (c: Any) =>
      c.env.find((e: Any) => e.name === "DATABASE_URL").valueFrom.secretKeyRef;
    // Straight to the leader, not through PgBouncer (the API's URL): DDL and the dump need a
    // session of their own.
    const direct = { name: "postgresql-app", key: "DATABASE_URL" };
    assert.deepEqual(dbUrl(api.spec.template.spec.containers[0]), {
      name: "postgresql-pooler-app",
      key: "DATABASE_URL",
    });
    assert.deepEqual(dbUrl(migrate), direct);
    assert.deepEqual(dbUrl(spec.template.spec.initContainers[0]), direct);
  });

  it("a new API image is a new Job; the same image is the same Job", () => {
    const name = (r: RenderResult) => (jobOf(r)[0].inputs.metadata as Any).name as string;
    assert.equal(
      name(prod),
      migrationJobName("stock-analysis-api", "stock-analysis:1.0.0", DEFAULT_MIGRATION_COMMAND),
    );
    assert.equal(
      name(upgraded),
      migrationJobName("stock-analysis-api", "stock-analysis:1.1.0", DEFAULT_MIGRATION_COMMAND),
    );
    assert.notEqual(name(prod), name(upgraded));
    assert.notEqual(
      migrationJobName("stock-analysis-api", "stock-analysis:1.0.0", [
        "alembic",
        "upgrade",
        "head",
      ]),
      name(prod),
    );
    assert.ok(name(prod).length <= 63);
  });

  it("PostgreSQL admits the Job's pods; the Job may reach only PostgreSQL", () => {
    const pgPolicy = find(prod.objects, "NetworkPolicy", "postgresql-allow") as Any;
    assert.ok(
      JSON.stringify(pgPolicy.spec.ingress).includes('"app":"stock-analysis-api-migrate"'),
      "postgresql-allow admits app=stock-analysis-api-migrate",
    );
    const own = find(prod.objects, "NetworkPolicy", "stock-analysis-api-migrate-allow") as Any;
    assert.deepEqual(own.spec.egress, [
      {
        to: [{ podSelector: { matchLabels: { app: "postgresql" } } }],
        ports: [{ protocol: "TCP", port: 5432 }],
      },
    ]);
  });

  it("dev (migration disabled) renders no Job and no dependency on one", () => {
    assert.deepEqual(jobOf(dev), []);
    assert.ok(
      !byName(dev, DEPLOYMENT, "stock-analysis-api").options.dependsOn.some((d) =>
        d.startsWith(JOB),
      ),
    );
  });

  it("config: an empty command or a timeout of 0 is refused, naming the key", () => {
    for (const [value, key] of [
      [{ command: [] }, "migration.command"],
      [{ timeoutMinutes: 0 }, "migration.timeoutMinutes"],
    ] as const) {
      assert.throws(
        () => loadConfig({ "stock-analysis:migration": JSON.stringify(value) }, []),
        (e) =>
          e instanceof ConfigError &&
          e.problems.length === 1 &&
          e.problems[0].startsWith(`stock-analysis:${key} = `),
      );
    }
  });
});
