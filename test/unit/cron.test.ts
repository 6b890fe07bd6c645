import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { cronSchedule, isPinnedImage } from "../../components/config/validators";

describe("validators", () => {
  it("accepts five-field cron expressions and macros", () => {
    for (const s of ["0 2 * * *", "*/15 * * * *", "0 3 * * 0", "@daily"])
      assert.ok(cronSchedule.safeParse(s).success, s);
  });
  it("rejects cron expressions that do not parse or have the wrong field count", () => {
    for (const s of ["61 2 * * *", "0 2 * *", "0 0 2 * * *", "every day", "@sometimes"]) {
      const r = cronSchedule.safeParse(s);
      assert.ok(!r.success, s);
      assert.match(r.error.issues[0].message, /five-field cron/);
    }
  });
  it("tells pinned from floating image references", () => {
    assert.ok(isPinnedImage("postgres:15.10"));
    assert.ok(isPinnedImage("localhost:5000/team/app:v2.0.0"));
    assert.ok(!isPinnedImage("localhost:5000/team/app"));
    assert.ok(!isPinnedImage("redis:latest"));
    assert.ok(!isPinnedImage("redis"));
  });
});
