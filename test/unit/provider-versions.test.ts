import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { it } from "node:test";

const root = path.join(__dirname, "../..");
const pkg = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as {
  dependencies: Record<string, string>;
};
const readme = fs.readFileSync(path.join(root, "README.md"), "utf8");

/** The npm packages that bring a resource provider plugin (the SDK and the policy SDK do not). */
const providerPackages = Object.keys(pkg.dependencies).filter(
  (name) => name.startsWith("@pulumi/") && !["@pulumi/pulumi", "@pulumi/policy"].includes(name),
);

it("pins every provider package to an exact version", () => {
  assert.ok(providerPackages.length > 0, "no @pulumi provider package in package.json");
  for (const name of providerPackages) {
    assert.match(pkg.dependencies[name], /^\d+\.\d+\.\d+$/, `${name} is not pinned exactly`);
  }
});

it("README's 'Deploying for real' lists the plugin version of each provider package", () => {
  // Lines like: - `kubernetes` 4.32.0 (`@pulumi/kubernetes`): ...
  const listed = new Map<string, string>();
  for (const m of readme.matchAll(/^- `([a-z-]+)` (\d+\.\d+\.\d+) \(`(@pulumi\/[a-z-]+)`\)/gm)) {
    assert.equal(`@pulumi/${m[1]}`, m[3], `README plugin line names ${m[1]} for ${m[3]}`);
    listed.set(m[3], m[2]);
  }
  assert.deepEqual(
    [...listed.keys()].sort(),
    [...providerPackages].sort(),
    "README lists other plugins than package.json has",
  );
  for (const name of providerPackages) {
    assert.equal(listed.get(name), pkg.dependencies[name], `README's version of ${name}`);
  }
});
