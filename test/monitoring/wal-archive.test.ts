/**
 * WAL-archiving alerts end to end on real tools: a PostgreSQL 15 member bootstrapped like ours
 * (pg-roles.sh: the exporter logs in as `monitoring`, a pg_monitor member) with archive_mode on and
 * an archive_command that fails while a flag file exists; the real postgres_exporter with the
 * shipped custom queries file (exporter-queries.ts, read through PG_EXPORTER_EXTEND_QUERY_PATH as
 * in the pod); its scrapes, one per second, are replayed one per evaluation interval (a time-lapse:
 * every `for` and window of the shipped rules is counted in scrapes) into `promtool test rules`
 * with the rules exactly as rendered for the test's archive_timeout.
 *
 * Phases: idle (something archived, then nothing written: the archive is not behind, while the
 * exporter's built-in last_archive_age keeps growing), failing (writes and a segment switch with
 * archive_command failing), recovered (the flag removed, the archiver retries).
 *
 * The exporter is the Debian package (0.11.1) unless POSTGRES_EXPORTER_BIN names another build;
 * the pinned v0.15.0 has the same built-in pg_stat_archiver map and the same queries-file
 * handling (see exporter-queries.ts).
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { parse, stringify } from "yaml";
import { alertGroups, renderAlertRules } from "../../components/monitoring/alert-rules";
import { metricSource } from "../../components/monitoring/catalogue";
import { archiveParameters } from "../../components/postgres/backrest";
import { postgresExporterQueries } from "../../components/postgres/exporter-queries";
import { Daemon, run, startExporter, tempDir, tool } from "../helpers/monitoring-daemons";
import { RULE_OPTIONS } from "../helpers/monitoring-fixtures";
import { PgCluster, pgTempDir, pgUser, waitFor } from "../helpers/postgres";

/** archive_timeout of the test server, and so the rules' lag threshold (seconds). */
const ARCHIVE_TIMEOUT = 2;
const EXPORTER = process.env.POSTGRES_EXPORTER_BIN ?? "prometheus-postgres-exporter";
const NS = RULE_OPTIONS.namespace;
/** The labels Prometheus' pod discovery gives a member's exporter target (prometheus-config.ts). */
const TARGET = {
  namespace: NS,
  app: "postgresql",
  pod: "postgresql-0",
  instance: "10.1.0.7:9187",
  job: "postgres-exporter",
};
const ALERT_LABELS = { namespace: NS, app: "postgresql", pod: "postgresql-0", team: "dba" };
const SCRAPED = [
  "pg_wal_archive_failing",
  "pg_wal_archive_lag_seconds",
  "pg_wal_archive_pending_files",
  "pg_stat_archiver_failed_count",
  "pg_stat_archiver_archived_count",
  "pg_stat_archiver_last_archive_age",
] as const;
type Sample = Record<(typeof SCRAPED)[number], number>;

/** The single unlabelled-by-us sample of `name` in an exposition (the exporter may add `server`). */
function value(text: string, name: string): number {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m").exec(text);
  assert.ok(m, `${name} not scraped:\n${text.slice(0, 2000)}`);
  return Number(m[1]);
}

describe("WAL archiving alerts on a real PostgreSQL and postgres_exporter", () => {
  let pg: PgCluster;
  let exporter: Daemon | undefined;
  let url = "";
  let dir = "";
  let flag = "";
  const samples: { phase: string; s: Sample }[] = [];

  const sql = (q: string) => pg.sql(0, q);
  const scrape = async (): Promise<Sample> => {
    const text = await (await fetch(url)).text();
    return Object.fromEntries(SCRAPED.map((n) => [n, value(text, n)])) as Sample;
  };
  /**
   * One scrape per second for `seconds`, recorded under `phase`; returns the last. `busy`: new WAL
   * and a segment switch every third second, as on a primary taking writes.
   */
  const record = async (phase: string, seconds: number, busy = false): Promise<Sample> => {
    let s: Sample | undefined;
    for (let i = 0; i < seconds; i++) {
      if (busy && i % 3 === 0) await writeAndSwitch();
      s = await scrape();
      samples.push({ phase, s });
      await new Promise((r) => setTimeout(r, 1000));
    }
    return s!;
  };
  /** Some WAL, then a segment switch: a complete segment is due for archiving. */
  const writeAndSwitch = () =>
    sql("INSERT INTO wal_probe SELECT g FROM generate_series(1, 1000) g; SELECT pg_switch_wal()");

  before(async () => {
    const archive = archiveParameters({ stanza: "test", archiveTimeout: ARCHIVE_TIMEOUT });
    dir = pgTempDir("wal-archive-");
    fs.mkdirSync(path.join(dir, "wal"));
    fs.chownSync(path.join(dir, "wal"), pgUser.uid, pgUser.gid);
    flag = path.join(dir, "fail");
    pg = await PgCluster.create({
      // The rendered archive_timeout; a local command instead of pgBackRest (no object store here:
      // the metrics come from PostgreSQL's archiver, whatever command it runs).
      extraConf: [
        "archive_mode = on",
        `archive_timeout = '${archive.parameters.archive_timeout}'`,
        `archive_command = 'test ! -e "$ARCHIVE_DIR/fail" && cp "%p" "$ARCHIVE_DIR/wal/%f"'`,
      ].join("\n"),
      env: { ARCHIVE_DIR: dir },
    });
    await pg.start(0);
    await pg.waitAppReady(0);
    await sql("CREATE TABLE wal_probe (n int)");

    const queries = path.join(tempDir("pg-exporter-queries-"), "queries.yaml");
    fs.writeFileSync(queries, postgresExporterQueries());
    const e = await startExporter(EXPORTER, (listen) => [`--web.listen-address=${listen}`], {
      DATA_SOURCE_NAME: `postgresql://monitoring:${pg.passwords.monitoring}@127.0.0.1:${pg.ports[0]}/postgres?sslmode=disable`,
      PG_EXPORTER_EXTEND_QUERY_PATH: queries,
    });
    exporter = e.daemon;
    url = e.url;
  });
  after(async () => {
    await exporter?.stop();
    await pg?.destroy();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test("the exporter reports archive failure and lag, an idle database is not behind, and the shipped rules fire and clear", async () => {
    // Something archived, then an idle database: nothing is due.
    await writeAndSwitch();
    await waitFor(
      "first archived segment",
      async () => (await scrape()).pg_stat_archiver_archived_count >= 1,
      30_000,
    );
    const idle = await record("idle", 10);
    assert.equal(idle.pg_wal_archive_pending_files, 0);
    assert.equal(idle.pg_wal_archive_lag_seconds, 0);
    assert.equal(idle.pg_wal_archive_failing, 0);
    // What an alert on the built-in age would have read: long past the goal, with nothing to archive.
    assert.ok(idle.pg_stat_archiver_last_archive_age > 2 * ARCHIVE_TIMEOUT, JSON.stringify(idle));

    // archive_command fails while the primary takes writes: segments wait, failures are counted.
    // Each new segment wakes the archiver, which retries (3 attempts, then it sleeps until the
    // next segment or 60 s): in real time a failing archive fails at least every minute, so the
    // rule's 10-minute window always sees new failures; in this time-lapse a minute is one scrape,
    // hence the writes.
    fs.writeFileSync(flag, "");
    const failing = await record("failing", 12, true);
    assert.equal(failing.pg_wal_archive_failing, 1, JSON.stringify(failing));
    assert.ok(failing.pg_wal_archive_pending_files >= 1, JSON.stringify(failing));
    assert.ok(failing.pg_wal_archive_lag_seconds > ARCHIVE_TIMEOUT + 5, JSON.stringify(failing));
    assert.ok(failing.pg_stat_archiver_failed_count >= 3, JSON.stringify(failing));

    // Fixed: new WAL wakes the archiver, which retries and catches up.
    fs.rmSync(flag);
    await writeAndSwitch();
    await waitFor(
      "archive caught up",
      async () => (await scrape()).pg_wal_archive_pending_files === 0,
      90_000,
    );
    const recovered = await record("recovered", 4);
    assert.equal(recovered.pg_wal_archive_failing, 0, JSON.stringify(recovered));
    assert.equal(recovered.pg_wal_archive_lag_seconds, 0);
    assert.ok(fs.readdirSync(path.join(dir, "wal")).length >= 3, "segments reached the archive");

    // Every catalogued name of the custom queries is really exported.
    const text = await (await fetch(url)).text();
    for (const m of metricSource("postgres-exporter-queries").metrics)
      assert.match(text, new RegExp(`^${m}(\\{|\\s)`, "m"), m);

    // Replay the scrapes, one per evaluation interval, into the shipped rules.
    const rulesDir = tempDir("wal-rules-");
    try {
      const opts = {
        ...RULE_OPTIONS,
        postgresBackup: {
          archiveTimeoutSeconds: ARCHIVE_TIMEOUT,
          verifyCronJob: "postgresql-backup-verify",
        },
      };
      // Annotations dropped: promtool compares them too, and their text is not under test here.
      const doc = parse(renderAlertRules(alertGroups(opts), opts.runbookUrl)) as {
        groups: { rules: Record<string, unknown>[] }[];
      };
      for (const g of doc.groups) for (const r of g.rules) delete r.annotations;
      fs.writeFileSync(path.join(rulesDir, "rules.yml"), stringify(doc, { lineWidth: 0 }));
      const series = SCRAPED.map((name) => ({
        series: `${name}{${Object.entries(TARGET)
          .map(([k, v]) => `${k}="${v}"`)
          .join(",")}}`,
        values: samples.map((x) => String(x.s[name])).join(" "),
      }));
      const last = (phase: string) => samples.map((x) => x.phase).lastIndexOf(phase);
      const expect = (alert: string, at: number, severity?: string) => ({
        eval_time: `${at}m`,
        alertname: alert,
        exp_alerts: severity ? [{ exp_labels: { ...ALERT_LABELS, severity } }] : [],
      });
      const cases = [
        // Idle: neither alert, although last_archive_age is past the goal.
        expect("PostgreSQLWALArchiveLag", last("idle"), undefined),
        expect("PostgreSQLWALArchivingFailing", last("idle"), undefined),
        // End of the failing phase: both fire (their `for` has elapsed in scrapes).
        expect("PostgreSQLWALArchiveLag", last("failing"), "warning"),
        expect("PostgreSQLWALArchivingFailing", last("failing"), "critical"),
        // Recovered: both cleared.
        expect("PostgreSQLWALArchiveLag", last("recovered"), undefined),
        expect("PostgreSQLWALArchivingFailing", last("recovered"), undefined),
      ];
      fs.writeFileSync(
        path.join(rulesDir, "replay.test.yml"),
        stringify({
          rule_files: ["rules.yml"],
          evaluation_interval: "1m",
          tests: [{ name: "replay", interval: "1m", input_series: series, alert_rule_test: cases }],
        }),
      );
      const r = run(tool("promtool"), ["test", "rules", "replay.test.yml"], { cwd: rulesDir });
      assert.equal(r.status, 0, `${r.output}\nsamples: ${JSON.stringify(samples)}`);
    } finally {
      fs.rmSync(rulesDir, { recursive: true, force: true });
    }
  });
});
