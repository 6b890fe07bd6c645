/** `--set` what-ifs with `pulumi config set --path` semantics (scripts/lib/config-set.ts). */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  configOverrides,
  deepMerge,
  parsePath,
  parseValue,
  setAtPath,
} from "../../scripts/lib/config-set";
import { UsageError } from "../../scripts/lib/usage-error";

describe("config what-ifs by path", () => {
  it("parses dotted paths with indexes and an optional project prefix", () => {
    assert.deepEqual(parsePath("api.autoscaling.minReplicas"), [
      "api",
      "autoscaling",
      "minReplicas",
    ]);
    assert.deepEqual(parsePath("stock-analysis:ingress.hosts[1]"), ["ingress", "hosts", 1]);
    assert.throws(() => parsePath("api..replicas"), UsageError);
    assert.throws(() => parsePath("api.rep licas"), UsageError);
  });

  it("reads values as YAML scalars or JSON", () => {
    assert.equal(parseValue("7", "k"), 7);
    assert.equal(parseValue('"7"', "k"), "7");
    assert.equal(parseValue("true", "k"), true);
    assert.equal(parseValue("100Gi", "k"), "100Gi");
    assert.deepEqual(parseValue('{"a":[1,2]}', "k"), { a: [1, 2] });
    assert.throws(() => parseValue("{bad", "k"), /neither a YAML scalar nor JSON/);
  });

  it("merges objects, replaces lists and scalars", () => {
    assert.deepEqual(deepMerge({ a: 1, b: { c: 2, d: 3 }, l: [1, 2] }, { b: { c: 9 }, l: [5] }), {
      a: 1,
      b: { c: 9, d: 3 },
      l: [5],
    });
    assert.deepEqual(setAtPath({ hosts: ["a", "b"] }, ["hosts", 1], "x"), { hosts: ["a", "x"] });
    assert.deepEqual(setAtPath(undefined, ["x", "y"], 1), { x: { y: 1 } });
    assert.throws(() => setAtPath({ hosts: ["a"] }, ["hosts", 3], "x"), /past the end/);
    assert.throws(() => setAtPath({ a: 1 }, ["a", "b"], 2), /not an object/);
  });

  it("api.autoscaling.minReplicas=5 keeps prod's resources and the rest of `api`", () => {
    const o = configOverrides("prod", ["api.autoscaling.minReplicas=5"]);
    const api = o.api as {
      autoscaling: Record<string, unknown>;
      resources: { requests: { memory: string } };
      image: string;
    };
    assert.equal(api.autoscaling.minReplicas, 5);
    assert.equal(api.autoscaling.maxReplicas, 10);
    assert.equal(api.autoscaling.enabled, true);
    assert.equal(api.resources.requests.memory, "2Gi");
    assert.equal(api.image, "stock-analysis:1.0.0");
    assert.deepEqual(Object.keys(o), ["api"]);
  });

  it("an object value merges; --replace replaces the whole key, and only when asked", () => {
    const merged = configOverrides("prod", ['api={"autoscaling":{"maxReplicas":12}}'])
      .api as Record<string, unknown>;
    assert.equal((merged.resources as { limits: { memory: string } }).limits.memory, "2Gi");
    assert.equal((merged.autoscaling as Record<string, unknown>).minReplicas, 3);
    const replaced = configOverrides("prod", [], ['api={"replicas":7}']);
    assert.deepEqual(replaced, { api: { replicas: 7 } });
    assert.throws(() => configOverrides("prod", [], ["api.replicas=7"]), /whole top-level key/);
  });

  it("sets after a replace build on the replacement, in order", () => {
    const o = configOverrides("dev", ["frontend.replicas=2"], ['frontend={"image":"nginx:1.27"}']);
    assert.deepEqual(o.frontend, { image: "nginx:1.27", replicas: 2 });
  });

  it("names the problem of a malformed assignment", () => {
    assert.throws(() => configOverrides("dev", ["frontend.replicas"]), /--set expects key=value/);
    assert.throws(() => configOverrides("dev", ["=3"]), /--set expects key=value/);
    assert.throws(() => configOverrides("nope", []), /no stack "nope"/);
  });
});
