// PgBouncer: the config's connection budget, the pure content, and the rendered objects.
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { ConfigError, loadConfig } from "../../components/config/load";
import { poolerConnectionBudget } from "../../components/config/postgres";
import { checksum } from "../../components/lib/k8s";
import {
  pgbouncerIni,
  poolerDatabaseUrl,
  poolerBootstrapSql,
  poolerExporterUrl,
  poolerUserlist,
} from "../../components/postgres/pgbouncer-content";
import { RenderResult, find, render } from "../helpers/render";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

const load = (postgres: Record<string, unknown>) =>
  loadConfig({ "stock-analysis:postgres": JSON.stringify(postgres) });

function problems(postgres: Record<string, unknown>): string[] {
  try {
    load(postgres);
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.problems;
  }
  return [];
}

describe("config: pooler connection budget", () => {
  // Defaults: per pod 20 + 5 + 1 = 26; reserved 3 superuser + 3 Patroni + 1 exporter + 3 for the
  // maintenance job (backups are off by default) = 10. One pod plus the rollout surge needs 52:
  // fits 62, not 61.
  it("accepts exactly what fits and refuses one connection less, with one message naming the keys", () => {
    assert.deepEqual(problems({ maxConnections: 62 }), []);
    const p = problems({ maxConnections: 61 });
    assert.equal(p.length, 1, p.join("\n"));
    assert.match(p[0], /^stock-analysis:postgres\.pooler = /);
    for (const s of [
      "(pooler.replicas 1 + 1 rollout surge)",
      "pooler.defaultPoolSize 20",
      "pooler.reservePoolSize 5",
      "= 52 > maxConnections 61",
      "10 reserved (3 superuser_reserved_connections + 3 Patroni + 1 exporter + 3 backup/maintenance jobs at backup.processMax 2) = 51",
    ])
      assert.ok(p[0].includes(s), `"${s}" not in: ${p[0]}`);
  });

  it("counts pooler pods × pool, not app pods; the maintenance job always, backup jobs when backups run", () => {
    const budgetArgs = {
      maxConnections: 200,
      backup: { enabled: false, processMax: 4 },
      pooler: { replicas: 3, defaultPoolSize: 40, reservePoolSize: 0 },
    };
    const b = poolerConnectionBudget(budgetArgs);
    assert.equal(b.poolerNeeds, 4 * 41);
    assert.equal(b.reserved, 7 + 5);
    assert.equal(b.available, 188);
    assert.equal(
      poolerConnectionBudget({ ...budgetArgs, backup: { enabled: true, processMax: 4 } }).reserved,
      7 + 15,
    );
    assert.deepEqual(problems({ pooler: { replicas: 6 } }), [], "7 × 26 = 182 <= 190 fits");
  });

  it("refuses a pool the primary cannot hold and ignores the budget when the pooler is off", () => {
    assert.equal(problems({ pooler: { replicas: 7 } }).length, 1, "8 × 26 = 208 > 190");
    assert.deepEqual(problems({ pooler: { replicas: 7, enabled: false } }), []);
  });

  it("allows transaction pooling only, and min_pool_size within default_pool_size", () => {
    const mode = problems({ pooler: { poolMode: "session" } });
    assert.equal(mode.length, 1);
    assert.match(mode[0], /postgres\.pooler\.poolMode = "session"/);
    const min = problems({ pooler: { minPoolSize: 30 } });
    assert.equal(min.length, 1);
    assert.match(
      min[0],
      /postgres\.pooler\.minPoolSize = 30: must not exceed defaultPoolSize \(20\)/,
    );
    assert.match(problems({ pooler: { image: "edoburu/pgbouncer" } })[0], /pinned/);
  });
});

describe("content", () => {
  const pool = load({}).postgres.pooler;
  const ini = pgbouncerIni({
    pool,
    serverHost: "postgresql.ns.svc.cluster.local",
    database: "stock_analysis",
    authFile: "/etc/pgbouncer-auth/userlist.txt",
  });
  const setting = (k: string) => new RegExp(`^${k} = (.*)$`, "m").exec(ini)?.[1];

  it("serves only the app database on the read-write Service, transaction-pooled", () => {
    assert.match(
      ini,
      /^\[databases\]\nstock_analysis = host=postgresql\.ns\.svc\.cluster\.local port=5432 dbname=stock_analysis\n/,
    );
    assert.equal(setting("listen_addr"), "0.0.0.0");
    assert.equal(setting("listen_port"), "6432");
    assert.equal(setting("pool_mode"), "transaction");
    assert.equal(setting("default_pool_size"), "20");
    assert.equal(setting("reserve_pool_size"), "5");
    // The per-pod cap the budget counts.
    assert.equal(setting("max_db_connections"), "26");
    assert.equal(setting("auth_type"), "scram-sha-256");
    assert.equal(setting("auth_user"), "pgbouncer");
    assert.equal(setting("server_login_retry"), "1");
    assert.equal(setting("ignore_startup_parameters"), "extra_float_digits");
  });

  it("refuses values that would break the ini or the auth file", () => {
    assert.throws(
      () => pgbouncerIni({ pool, serverHost: "a b", database: "x", authFile: "/f" }),
      /unexpected characters/,
    );
    assert.throws(() => poolerUserlist({ authPassword: "a\nb", statsPassword: "s" }), /newlines/);
    assert.equal(
      poolerUserlist({ authPassword: 'p"w', statsPassword: "s" }),
      '"pgbouncer" "p""w"\n"pgbouncer_stats" "s"\n',
    );
  });

  it("builds the URLs the app and the exporter use", () => {
    assert.equal(
      poolerDatabaseUrl({ user: "u", password: "p@ss/w", host: "h", database: "db" }),
      "postgresql://u:p%40ss%2Fw@h:6432/db",
    );
    assert.equal(
      poolerExporterUrl("s"),
      "postgres://pgbouncer_stats:s@127.0.0.1:6432/pgbouncer?sslmode=disable",
    );
  });
});

describe("rendered PgBouncer", () => {
  const stacks: Record<string, RenderResult> = {};
  before(async () => {
    const [dev, prod, off] = await Promise.all([
      render("dev"),
      render("prod"),
      render("dev", { postgres: { pooler: { enabled: false } } }),
    ]);
    Object.assign(stacks, { dev, prod, off });
  });
  const dep = (s: string, name = "postgresql-pooler") =>
    find(stacks[s].objects, "Deployment", name) as Any;
  const dbUrlRef = (s: string, name: string) => {
    const c = dep(s, name).spec.template.spec.containers[0];
    return c.env.find((e: Any) => e.name === "DATABASE_URL").valueFrom.secretKeyRef;
  };

  it("runs 1 pod in dev and 2 spread ones in prod, with a PDB", () => {
    assert.equal(dep("dev").spec.replicas, 1);
    const p = dep("prod").spec;
    assert.equal(p.replicas, 2);
    assert.deepEqual(p.strategy.rollingUpdate, { maxUnavailable: 0, maxSurge: 1 });
    assert.equal(
      p.template.spec.topologySpreadConstraints[0].topologyKey,
      "kubernetes.io/hostname",
    );
    assert.ok(p.template.spec.affinity.podAntiAffinity);
    const pdb = find(stacks.prod.objects, "PodDisruptionBudget", "postgresql-pooler") as Any;
    assert.deepEqual(pdb.spec.selector.matchLabels, { app: "postgresql-pooler" });
  });

  it("mounts the ini and rolls on its change; pgbouncer and the exporter are restricted and pinned", () => {
    const t = dep("prod").spec.template;
    const ini = (find(stacks.prod.objects, "ConfigMap", "postgresql-pooler-config") as Any).data[
      "pgbouncer.ini"
    ];
    assert.match(ini, /host=postgresql\.stock-analysis\.svc\.cluster\.local port=5432/);
    assert.equal(t.metadata.annotations["checksum/config"], checksum(ini));
    assert.equal(t.metadata.annotations["prometheus.io/port"], "9127");
    assert.equal(t.spec.automountServiceAccountToken, false);
    assert.equal(t.spec.securityContext.runAsNonRoot, true);
    const [bouncer, exporter] = t.spec.containers;
    assert.deepEqual(bouncer.command, ["pgbouncer", "/etc/pgbouncer/pgbouncer.ini"]);
    assert.ok(bouncer.readinessProbe && bouncer.livenessProbe);
    for (const c of [bouncer, exporter]) {
      assert.match(c.image, /:v\d+\.\d+\.\d+/);
      assert.equal(c.securityContext.readOnlyRootFilesystem, true);
      assert.deepEqual(c.securityContext.capabilities.drop, ["ALL"]);
    }
    assert.deepEqual(exporter.env, [
      {
        name: "PGBOUNCER_EXPORTER_CONNECTION_STRING",
        valueFrom: {
          secretKeyRef: { name: "postgresql-pooler", key: "exporter-connection-string" },
        },
      },
    ]);
    const auth = t.spec.volumes.find((v: Any) => v.name === "auth").secret;
    assert.equal(auth.secretName, "postgresql-pooler");
    assert.deepEqual(auth.items, [{ key: "userlist.txt", path: "userlist.txt" }]);
  });

  it("keeps every credential in Secrets (stringData marked secret), none in the ConfigMap", () => {
    for (const name of ["postgresql-pooler-secret", "postgresql-pooler-database-url"]) {
      const r = stacks.prod.resources.find(
        (x) => x.type === "kubernetes:core/v1:Secret" && x.name === name,
      );
      assert.ok(
        r?.secretPaths.some((p) => p.startsWith("stringData")),
        name,
      );
    }
    const ini = (find(stacks.prod.objects, "ConfigMap", "postgresql-pooler-config") as Any).data[
      "pgbouncer.ini"
    ];
    assert.doesNotMatch(ini, /password/i);
  });

  it("prepares the database with a Job running the bootstrap SQL as postgres", () => {
    const job = stacks.prod.objects.find(
      (o) => o.kind === "Job" && /^postgresql-pooler-bootstrap-[0-9a-f]{8}$/.test(o.metadata.name),
    ) as Any;
    assert.ok(job, "bootstrap Job");
    const pod = job.spec.template;
    const c = pod.spec.containers[0];
    assert.deepEqual(c.command, [
      "psql",
      "-X",
      "-q",
      "-v",
      "ON_ERROR_STOP=1",
      "-v",
      "pooler_password_file=/secrets/pooler/auth-password",
      "-f",
      "/sql/pooler.sql",
    ]);
    // The mounted files are where the command reads them.
    const mounts = Object.fromEntries(c.volumeMounts.map((m: Any) => [m.name, m.mountPath]));
    assert.deepEqual(mounts, { sql: "/sql", pooler: "/secrets/pooler" });
    const vol = pod.spec.volumes.find((v: Any) => v.name === "pooler").secret;
    assert.deepEqual(vol.items, [{ key: "auth-password", path: "auth-password" }]);
    const env = Object.fromEntries(c.env.map((e: Any) => [e.name, e.value ?? e.valueFrom]));
    assert.equal(env.PGHOST, "postgresql.stock-analysis.svc.cluster.local");
    assert.equal(env.PGDATABASE, "stock_analysis");
    assert.deepEqual(env.PGPASSWORD, {
      secretKeyRef: { name: "postgresql", key: "superuser-password" },
    });
    const sql = (find(stacks.prod.objects, "ConfigMap", "postgresql-pooler-bootstrap-sql") as Any)
      .data["pooler.sql"];
    assert.equal(sql, poolerBootstrapSql());
    // PostgreSQL's policies admit it (as a database Job); the pooler's Service/PDB do not select it.
    const labels = pod.metadata.labels;
    const matches = (sel: Record<string, string>) =>
      Object.entries(sel).every(([k, v]) => labels[k] === v);
    const jobsNp = (find(stacks.prod.objects, "NetworkPolicy", "postgresql-jobs-allow") as Any)
      .spec;
    assert.ok(matches(jobsNp.podSelector.matchLabels), "egress to PostgreSQL allowed");
    const pgNp = (find(stacks.prod.objects, "NetworkPolicy", "postgresql-allow") as Any).spec;
    assert.ok(
      pgNp.ingress.some(
        (r: Any) => r.from[0].podSelector && matches(r.from[0].podSelector.matchLabels),
      ),
      "PostgreSQL admits it",
    );
    const svc = find(stacks.prod.objects, "Service", "postgresql-pooler") as Any;
    assert.ok(!matches(svc.spec.selector), "the pooler Service must not route to the Job");
  });

  it("exposes Service postgresql-pooler:6432 as a stack output", () => {
    const svc = find(stacks.prod.objects, "Service", "postgresql-pooler") as Any;
    assert.deepEqual(svc.spec.selector, { app: "postgresql-pooler" });
    assert.equal(svc.spec.ports[0].port, 6432);
    assert.equal(
      stacks.prod.outputs.databasePoolerHost,
      "postgresql-pooler.stock-analysis.svc.cluster.local",
    );
    assert.equal(stacks.prod.outputs.databaseUrlSecret, "postgresql-pooler-app");
  });

  it("lets only the API and Celery in (Prometheus to the exporter), and only PostgreSQL out", () => {
    const np = (find(stacks.prod.objects, "NetworkPolicy", "postgresql-pooler-allow") as Any).spec;
    const from = np.ingress.map((r: Any) => [
      r.from[0].podSelector.matchLabels.app,
      r.ports[0].port,
    ]);
    assert.deepEqual(from, [
      ["stock-analysis-api", 6432],
      ["stock-analysis-celery", 6432],
      ["prometheus", 9127],
    ]);
    assert.deepEqual(np.egress, [
      {
        to: [{ podSelector: { matchLabels: { app: "postgresql" } } }],
        ports: [{ protocol: "TCP", port: 5432 }],
      },
    ]);
    // PostgreSQL in turn admits the pooler, no longer the apps.
    const pg = (find(stacks.prod.objects, "NetworkPolicy", "postgresql-allow") as Any).spec;
    const apps = pg.ingress.map((r: Any) => r.from[0].podSelector?.matchLabels?.app);
    assert.ok(apps.includes("postgresql-pooler"));
    assert.ok(!apps.includes("stock-analysis-api") && !apps.includes("stock-analysis-celery"));
  });

  it("gives the API and Celery a DATABASE_URL through the pooler (direct when it is off)", () => {
    for (const s of ["dev", "prod"])
      for (const app of ["stock-analysis-api", "stock-analysis-celery"])
        assert.deepEqual(dbUrlRef(s, app), { name: "postgresql-pooler-app", key: "DATABASE_URL" });
    assert.deepEqual(dbUrlRef("off", "stock-analysis-api"), {
      name: "postgresql-app",
      key: "DATABASE_URL",
    });
    assert.ok(!stacks.off.objects.some((o) => o.metadata.name === "postgresql-pooler"));
    const apiEgress = (
      find(stacks.prod.objects, "NetworkPolicy", "stock-analysis-api-allow") as Any
    ).spec.egress;
    assert.ok(
      apiEgress.some(
        (r: Any) =>
          r.to[0].podSelector?.matchLabels?.app === "postgresql-pooler" && r.ports[0].port === 6432,
      ),
    );
    assert.ok(!apiEgress.some((r: Any) => r.to[0].podSelector?.matchLabels?.app === "postgresql"));
  });
});
