/**
 * The stack's one `timeZone` key: validated against the tz database, set on every CronJob, shown
 * in the render summary; prod's schedules mean the manual's Beijing-time hours.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CronExpressionParser } from "cron-parser";
import { ConfigError, loadConfig } from "../../components/config/load";
import { ZONEINFO_DIR, timeZoneProblem } from "../../components/config/platform";
import type { K8sObject } from "../../scripts/lib/render-stack";
import { cronSchedules, formatSummary, utcOffsets } from "../../scripts/lib/summary";
import { RenderResult, render } from "../helpers/render";

const load = (timeZone: string) => loadConfig({ "stock-analysis:timeZone": timeZone });

describe("timeZone validation", () => {
  it("accepts tz database names, canonical or alias", () => {
    for (const z of [
      "Asia/Shanghai",
      "Etc/UTC",
      "UTC",
      "Asia/Kolkata",
      "America/Argentina/Buenos_Aires",
      "Etc/GMT-8",
    ])
      assert.equal(timeZoneProblem(z), undefined, z);
  });

  it("refuses what Kubernetes would refuse, naming the rule", () => {
    for (const z of [
      "Local",
      "Beijing",
      "+08:00",
      "",
      "Asia/Shanghai ",
      "../etc/passwd",
      "CST+8",
    ]) {
      const p = timeZoneProblem(z);
      assert.ok(p !== undefined, `${JSON.stringify(z)} accepted`);
      assert.match(p, /must be a tz database time zone/);
    }
  });

  it("is case-sensitive like Go's time.LoadLocation and suggests the spelling", () => {
    assert.match(timeZoneProblem("asia/shanghai")!, /did you mean "Asia\/Shanghai"\?/);
    assert.match(timeZoneProblem("ETC/UTC")!, /must be a tz database time zone/);
  });

  describe("against a given zoneinfo directory", () => {
    let dir = "";
    before(() => {
      dir = mkdtempSync(join(tmpdir(), "zoneinfo-"));
      mkdirSync(join(dir, "Asia"));
      writeFileSync(join(dir, "Asia", "Shanghai"), "TZif2 fake header");
      writeFileSync(join(dir, "zone.tab"), "not a zone");
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    it("needs an exactly spelled TZif entry there, even when ICU knows the zone", () => {
      assert.equal(timeZoneProblem("Asia/Shanghai", dir), undefined);
      // ICU knows Asia/Tokyo, but this host's tz database has no such file.
      assert.ok(timeZoneProblem("Asia/Tokyo", dir));
      assert.ok(timeZoneProblem("Asia/shanghai", dir));
      // A file that is no TZif zone.
      assert.ok(timeZoneProblem("zone.tab", dir));
    });

    it("falls back to ICU's spelling on a host without tz files", () => {
      const none = join(dir, "absent");
      assert.equal(timeZoneProblem("Asia/Tokyo", none), undefined);
      assert.match(timeZoneProblem("asia/tokyo", none)!, /did you mean "Asia\/Tokyo"/);
      assert.ok(timeZoneProblem("Mars/Olympus_Mons", none));
    });
  });

  it("this host's tz database has the zone prod uses", () => {
    // The default path is the one Go reads on Linux; CI runs on Debian with tzdata.
    assert.equal(timeZoneProblem("Asia/Shanghai", ZONEINFO_DIR), undefined);
  });

  it("loadConfig: defaults to Etc/UTC; a bad value is one problem naming key, value and rule", () => {
    assert.equal(loadConfig({}).timeZone, "Etc/UTC");
    assert.equal(load("Asia/Shanghai").timeZone, "Asia/Shanghai");
    try {
      load("asia/shanghai");
      assert.fail("accepted");
    } catch (e) {
      assert.ok(e instanceof ConfigError, String(e));
      assert.equal(e.problems.length, 1, e.message);
      assert.match(
        e.problems[0],
        /^stock-analysis:timeZone = "asia\/shanghai": must be a tz database time zone .* \(did you mean "Asia\/Shanghai"\?\)$/,
      );
    }
  });
});

describe("timeZone on every CronJob", { timeout: 240000 }, () => {
  let prod: RenderResult;
  let dev: RenderResult;
  let ny: RenderResult;
  before(async () => {
    [prod, dev, ny] = await Promise.all([
      render("prod"),
      render("dev"),
      render("dev", { timeZone: "America/New_York" }),
    ]);
  });

  const cronJobs = (r: RenderResult) => r.objects.filter((o) => o.kind === "CronJob");
  const zones = (r: RenderResult) =>
    cronJobs(r).map((o) => `${o.metadata.name}=${(o.spec as { timeZone?: string }).timeZone}`);

  it("every CronJob of a stack carries the stack's key", () => {
    for (const [r, zone, min] of [
      [prod, "Asia/Shanghai", 6],
      [dev, "Etc/UTC", 3],
      [ny, "America/New_York", 3],
    ] as const) {
      const all = cronJobs(r);
      // prod: PostgreSQL's backups, verification and maintenance, Redis's backup and restore
      // template; dev (no object store for PostgreSQL) at least Redis's two and PostgreSQL's
      // maintenance (VACUUM ANALYZE runs without backups too).
      assert.ok(all.length >= min, zones(r).join());
      assert.deepEqual(
        zones(r),
        all.map((o) => `${o.metadata.name}=${zone}`),
      );
    }
  });

  const nextRuns = (cron: K8sObject, n: number): Date[] => {
    const s = cron.spec as { schedule: string; timeZone: string };
    const it = CronExpressionParser.parse(s.schedule, {
      tz: s.timeZone,
      currentDate: new Date("2026-12-01T00:00:00Z"),
    });
    return Array.from({ length: n }, () => it.next().toDate());
  };
  const beijing = (d: Date) =>
    new Intl.DateTimeFormat("en-GB", {
      timeZone: "Asia/Shanghai",
      weekday: "short",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
    }).format(d);

  it("prod runs the manual's 2 a.m. database and 3 a.m. Redis backups on Beijing time", () => {
    // Backup CronJobs carry the policy pack's target label; verification jobs are not backups.
    const backups = cronJobs(prod).filter(
      (o) =>
        o.metadata.labels?.["backup.stock-analysis.io/target"] !== undefined &&
        !(o.spec as { suspend?: boolean }).suspend &&
        !o.metadata.name.includes("verify"),
    );
    const redis = backups.filter((o) => o.metadata.name.startsWith("redis"));
    const pg = backups.filter((o) => o.metadata.name.startsWith("postgresql"));
    assert.equal(redis.length, 1, backups.map((o) => o.metadata.name).join());
    assert.ok(pg.length >= 1, backups.map((o) => o.metadata.name).join());
    assert.deepEqual(nextRuns(redis[0], 3).map(beijing), ["Wed 03:00", "Thu 03:00", "Fri 03:00"]);
    for (const cron of pg)
      for (const d of nextRuns(cron, 7)) {
        assert.equal(beijing(d).split(" ")[1], "02:00", `${cron.metadata.name} at ${beijing(d)}`);
        // 02:00 in Beijing is 18:00 UTC the day before.
        assert.equal(d.getUTCHours(), 18);
      }
  });

  it("no prod job starts in Shanghai trading hours (09:30-15:00 on weekdays, half an hour either side)", () => {
    for (const cron of cronJobs(prod)) {
      if ((cron.spec as { suspend?: boolean }).suspend) continue;
      for (const d of nextRuns(cron, 14)) {
        const [day, hm] = beijing(d).split(" ");
        const inSession = !["Sat", "Sun"].includes(day) && hm >= "09:00" && hm <= "15:30";
        assert.ok(!inSession, `${cron.metadata.name} starts ${beijing(d)} Beijing time`);
      }
    }
  });

  it("the render summary shows each schedule with its zone and offset", () => {
    const text = formatSummary("prod", prod.objects);
    assert.match(text, /CronJob\/redis-backup +0 3 \* \* \* +Asia\/Shanghai \(UTC\+08:00\)/);
    assert.match(text, /CronJob\/redis-restore +\(suspended\) +Asia\/Shanghai/);
    assert.equal(
      cronSchedules(prod.objects).length,
      cronJobs(prod).length,
      "one summary line per CronJob",
    );
    assert.equal(utcOffsets("America/New_York"), "UTC-05:00/-04:00");
    assert.equal(utcOffsets("Etc/UTC"), "UTC+00:00");
  });
});
