/**
 * Every script a person runs answers --help (exit 0, usage on stdout, nothing started), and the
 * TypeScript entry points report an unknown flag in one line with exit 2.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import { migrationScripts } from "../../components/app/migration";
import { postgresScripts } from "../../components/postgres/content";

const ROOT = path.resolve(__dirname, "../..");

/** Executable shell scripts under scripts/ (the CLI wrapper `scripts/pulumi` passes --help to pulumi). */
function shellScripts(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const rel = path.join(dir, e.name);
      if (e.isDirectory()) walk(rel);
      else if (rel !== "scripts/pulumi" && !rel.startsWith("scripts/lib/")) {
        const first = fs.readFileSync(path.join(ROOT, rel), "utf8").split("\n")[0];
        if (/^#!.*\bbash\b/.test(first)) out.push(rel);
      }
    }
  };
  walk("scripts");
  return out.sort();
}

function withoutTestContext(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT;
  return env;
}

const TS_ENTRIES = ["render", "policy", "diff", "e2e", "config-reference"];

/** Pod scripts as their ConfigMaps mount them: each ConfigMap's data written to its own dir. */
function mountedPodScripts(): string[] {
  const out: string[] = [];
  const maps = { postgres: postgresScripts(), migration: migrationScripts() };
  for (const [name, data] of Object.entries(maps)) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `pod-scripts-${name}-`));
    for (const [file, text] of Object.entries(data)) {
      fs.writeFileSync(path.join(dir, file), text, { mode: 0o555 });
      if (text.includes("help_if_asked")) out.push(path.join(dir, file));
    }
  }
  return out.filter((f) => !f.endsWith("/help.sh"));
}

describe("--help", () => {
  it("every shell script prints its usage and exits 0 without doing anything", () => {
    const scripts = shellScripts();
    assert.ok(scripts.length >= 15, `only ${scripts.length} scripts found`);
    for (const s of scripts) {
      const r = spawnSync("bash", [s, "--help"], { cwd: ROOT, encoding: "utf8", timeout: 15_000 });
      assert.equal(r.status, 0, `${s} --help: exit ${r.status} ${r.stderr}`);
      assert.ok(
        r.stdout.trim().split("\n").length >= 1 && r.stdout.trim().length > 20,
        `${s}: no usage`,
      );
      assert.doesNotMatch(r.stdout, /^#/m, `${s}: comment markers in the usage`);
    }
  });

  it("every pod script that takes --help answers it from its ConfigMap alone (help.sh shipped)", () => {
    const scripts = mountedPodScripts();
    assert.ok(scripts.length >= 8, `only ${scripts.length} pod scripts use help.sh`);
    for (const s of scripts) {
      const shell = fs.readFileSync(s, "utf8").startsWith("#!/bin/sh") ? "sh" : "bash";
      const r = spawnSync(shell, [s, "--help"], { encoding: "utf8", timeout: 15_000 });
      assert.equal(r.status, 0, `${s} --help: exit ${r.status} ${r.stderr}`);
      assert.ok(r.stdout.trim().length > 20, `${s}: no usage`);
      assert.doesNotMatch(r.stdout, /^#/m, `${s}: comment markers in the usage`);
    }
    for (const s of scripts) fs.rmSync(path.dirname(s), { recursive: true, force: true });
  });

  for (const name of TS_ENTRIES)
    it(`scripts/${name}.ts: --help exits 0; an unknown flag is one line and exit 2`, () => {
      const run = (arg: string) =>
        spawnSync(process.execPath, ["--import", "tsx", `scripts/${name}.ts`, arg], {
          cwd: ROOT,
          encoding: "utf8",
          timeout: 60_000,
        });
      const help = run("--help");
      assert.equal(help.status, 0, help.stderr);
      assert.match(help.stdout, /^usage: /);
      const bad = run("--no-such-flag");
      assert.equal(bad.status, 2);
      assert.equal(bad.stderr, `${name}: Unknown option '--no-such-flag' (see --help)\n`);
    });
});

describe("scripts/test.sh arguments", () => {
  it("takes a file path as given and passes --test-name-pattern through", () => {
    const r = spawnSync(
      "bash",
      ["scripts/test.sh", "test/unit/e2e-helpers.test.ts", "--test-name-pattern=splits words"],
      // A nested runner that sees NODE_TEST_CONTEXT reports to us instead of printing.
      {
        cwd: ROOT,
        encoding: "utf8",
        timeout: 120_000,
        env: withoutTestContext(),
      },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /ℹ pass 1\n/);
    assert.match(r.stdout, /splits words as the shell does/);
    const missing = spawnSync("bash", ["scripts/test.sh", "test/unit/nope.test.ts"], {
      cwd: ROOT,
      encoding: "utf8",
    });
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /no test file or folder test\/unit\/nope\.test\.ts/);
  });

  it("`npm test -- ./test/x` and an absolute path name the file once; a pattern may follow its flag", () => {
    // npm passes what follows `--` to scripts/test.sh unchanged.
    const r = spawnSync(
      "npm",
      [
        "test",
        "--ignore-scripts",
        "--",
        path.join(ROOT, "test/unit/e2e-helpers.test.ts"),
        "--test-name-pattern",
        "splits words",
      ],
      { cwd: ROOT, encoding: "utf8", timeout: 120_000, env: withoutTestContext() },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /ℹ pass 1\n/);
    assert.match(r.stdout, /splits words as the shell does/);
    for (const p of ["./test/unit/nope.test.ts", path.join(ROOT, "test/unit/nope.test.ts")]) {
      const missing = spawnSync("bash", ["scripts/test.sh", p], { cwd: ROOT, encoding: "utf8" });
      assert.equal(missing.status, 2);
      assert.equal(missing.stderr, "test.sh: no test file or folder test/unit/nope.test.ts\n");
    }
  });
});
