/**
 * What README.md and docs/RUNBOOK.md name must exist: every config key (in `pulumi config set`
 * commands and in backticks) is a path of the schema, and every repository path is a file or
 * folder of the repo. Docs that send an operator to a missing key or script fail here.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import { isConfigPath, schemaKeyPaths } from "../../scripts/lib/schema-keys";

const ROOT = path.resolve(__dirname, "../..");
const DOCS = ["README.md", "docs/RUNBOOK.md", "docs/ARCHITECTURE.md"];
const paths = schemaKeyPaths();
const topLevel = new Set(paths.map((p) => p.split(".")[0]));

/** Backticked spans of a markdown file, with their line numbers. */
function spans(file: string): { line: number; text: string }[] {
  const out: { line: number; text: string }[] = [];
  fs.readFileSync(path.join(ROOT, file), "utf8")
    .split("\n")
    .forEach((l, i) => {
      for (const m of l.matchAll(/`([^`]+)`/g)) out.push({ line: i + 1, text: m[1] });
    });
  return out;
}

/** Config keys a doc names: dotted spans under a top-level key, and `pulumi config set` targets. */
export function configKeysIn(file: string): { line: number; key: string }[] {
  const found: { line: number; key: string }[] = [];
  const text = fs.readFileSync(path.join(ROOT, file), "utf8").split("\n");
  text.forEach((l, i) => {
    for (const m of l.matchAll(/pulumi config set (?:--\S+ )*'?([A-Za-z][\w.:-]*)'?/g))
      found.push({ line: i + 1, key: m[1].replace(/^stock-analysis:/, "") });
  });
  for (const s of spans(file)) {
    const m = /^(?:stock-analysis:)?([a-z][A-Za-z0-9]*(?:\.[A-Za-z][A-Za-z0-9]*)+)$/.exec(s.text);
    const isFileName = /\.(conf|ya?ml|json|sh|ts|md|txt)$/.test(s.text);
    if (m && !isFileName && topLevel.has(m[1].split(".")[0]))
      found.push({ line: s.line, key: m[1] });
  }
  return found;
}

/** Repository paths a doc names in backticks (`scripts/pg-failover`, `components/redis/`). */
function repoPathsIn(file: string): { line: number; p: string }[] {
  return spans(file)
    .map((s) => ({ line: s.line, p: s.text.split(/\s/)[0].replace(/[#:].*$/, "") }))
    .filter(({ p }) => /^(scripts|components|docs|test|policies|\.ci|\.github)\/[\w./-]*$/.test(p))
    .filter(({ p }) => !/[<>*]/.test(p));
}

describe("docs name what exists", () => {
  it("the schema walk finds keys without a default", () => {
    for (const k of [
      "registry.server",
      "registryPassword",
      "api.build.context",
      "monitoring.alerting.smtpUsername",
    ])
      assert.ok(paths.includes(k), k);
  });

  for (const doc of DOCS) {
    it(`${doc}: every config key is in the schema`, () => {
      const keys = configKeysIn(doc);
      const unknown = keys.filter(
        (k) => !topLevel.has(k.key.split(".")[0]) || !isConfigPath(k.key, paths),
      );
      assert.deepEqual(
        unknown.map((k) => `${doc}:${k.line} ${k.key}`),
        [],
      );
    });
    it(`${doc}: every repository path exists`, () => {
      const missing = repoPathsIn(doc).filter(({ p }) => !fs.existsSync(path.join(ROOT, p)));
      assert.deepEqual(
        missing.map((m) => `${doc}:${m.line} ${m.p}`),
        [],
      );
    });
  }

  it("finds config keys in a set command and in prose", () => {
    const keys = configKeysIn("docs/RUNBOOK.md").map((k) => k.key);
    assert.ok(keys.includes("api.autoscaling.minReplicas"), "prose or command key not found");
    assert.ok(keys.length > 10, `only ${keys.length} keys found`);
  });
});
