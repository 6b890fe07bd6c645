import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { describe, it } from "node:test";
import { REDIS_SCRIPTS_DIR, REDIS_SCRIPT_NAMES } from "../../components/redis/content";

describe("redis scripts", () => {
  it("are shellcheck-clean, following the sourced lib.sh", () => {
    const files = REDIS_SCRIPT_NAMES.map((n) => join(REDIS_SCRIPTS_DIR, n));
    // Throws with shellcheck's findings when any script has one.
    const out = execFileSync("shellcheck", ["-x", ...files], { encoding: "utf8" });
    assert.equal(out, "");
  });
});
