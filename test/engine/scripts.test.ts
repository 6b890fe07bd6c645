// scripts/pulumi-stack-config and scripts/preview.sh with the real CLI, in temp backends.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { ROOT, runScript, skipReason, tempBackend, toolchain } from "../helpers/pulumi";

const tc = toolchain();
const salt = (file: string) => fs.readFileSync(file, "utf8").match(/^encryptionsalt: .+$/m)?.[0];

describe("scripts/pulumi-stack-config", () => {
  const backend = tempBackend();
  after(() => backend.cleanup());

  it(
    "keeps the salt beside the state, stable across runs, and never edits Pulumi.<stack>.yaml",
    { skip: skipReason(tc) },
    async () => {
      const tracked = path.join(ROOT, "Pulumi.prod.yaml");
      const before = fs.readFileSync(tracked, "utf8");

      const first = await runScript("pulumi-stack-config", ["prod"], backend.env);
      assert.equal(first.code, 0, first.stderr);
      const file = first.stdout.trim();
      assert.ok(file.startsWith(backend.dir), file);
      const firstSalt = salt(file);
      assert.ok(firstSalt, "config copy has an encryption salt");
      assert.ok(
        fs.readFileSync(file, "utf8").endsWith(before),
        "copy ends with the tracked config",
      );

      const second = await runScript("pulumi-stack-config", ["prod"], backend.env);
      assert.equal(second.stdout.trim(), file);
      assert.equal(salt(file), firstSalt);

      // Losing the copy loses nothing: the stack's checkpoint holds the same salt.
      fs.rmSync(file);
      const third = await runScript("pulumi-stack-config", ["prod"], backend.env);
      assert.equal(third.code, 0, third.stderr);
      assert.equal(salt(file), firstSalt);

      assert.equal(fs.readFileSync(tracked, "utf8"), before);
    },
  );
});

describe("npm run preview (scripts/preview.sh)", () => {
  const backend = tempBackend();
  after(() => backend.cleanup());
  const complete = tc.providers && tc.runsPrograms;

  it("without a stack argument prints usage and exits 2", async () => {
    const r = await runScript("preview.sh", [], backend.env);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /usage: npm run preview -- <stack>/);
  });

  it(
    complete
      ? "previews dev with the policy pack"
      : "refuses to preview with an incomplete toolchain, naming every missing piece (exit 3)",
    async () => {
      const r = await runScript("preview.sh", ["dev"], backend.env);
      if (complete) {
        assert.equal(r.code, 0, r.stderr);
        assert.match(r.stdout, /Resources:/);
      } else {
        assert.equal(r.code, 3, r.stderr);
        for (const piece of tc.missing) assert.match(r.stderr, new RegExp(`${piece}\\s+MISSING`));
        assert.match(r.stderr, /run scripts\/install-pulumi/);
      }
    },
  );
});
