/**
 * The platform is one component (`Platform`) whose children read like docs/ARCHITECTURE.md, and
 * wrapping the former top-level resources in it keeps every URN an existing stack holds: each
 * moved resource declares an alias that resolves (directly or through its ancestors' aliases,
 * as the engine resolves them) to its URN from before, when its old parent was the stack.
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { PLATFORM_TYPE } from "../../components/platform";
import type { AliasSeen, RenderedResource } from "../../scripts/lib/render-stack";
import { RenderResult, render, renderRaw } from "../helpers/render";

/** What the alias check needs of a registration. */
interface Registration {
  type: string;
  name: string;
  /** Parent URN as the mock engine named it; undefined: the stack. */
  parent?: string;
  aliases: AliasSeen[];
}

const registration = (r: RenderedResource): Registration => ({
  type: r.type,
  name: r.name,
  parent: r.options.parent,
  aliases: r.options.aliases,
});

/** The type part of a URN (`a$b$c`). */
const urnType = (urn: string) => urn.split("::")[2];

/**
 * The engine's qualified types (the `a$b$c` part of a URN) under which the engine finds each
 * resource in a stack's state: its own, plus those its aliases and its ancestors' aliases name.
 * Keyed by the resource's engine URN (`qualified type::name`). Parent and type aliases are
 * modelled; the platform renames nothing, so name and URN aliases fail the check.
 */
function reachableTypes(regs: Registration[]): Map<string, Set<string>> {
  // The mock engine names a child by its parent's last type segment only; the real engine
  // chains every ancestor's type, which is what is computed here.
  const mockUrn = (r: Registration) => {
    const parentType = r.parent ? `${urnType(r.parent).split("$").pop()}$` : "";
    return `${parentType}${r.type}::${r.name}`;
  };
  const byUrn = new Map(regs.map((r) => [mockUrn(r), r]));
  const lookup = (urn: string) => {
    const key = urn.split("::").slice(2).join("::");
    const r = byUrn.get(key);
    if (!r) throw new Error(`unknown parent ${urn}`);
    return r;
  };
  const memo = new Map<Registration, { current: string; all: Set<string> }>();
  const resolve = (r: Registration): { current: string; all: Set<string> } => {
    const hit = memo.get(r);
    if (hit) return hit;
    const parent = r.parent ? resolve(lookup(r.parent)) : undefined;
    const current = parent ? `${parent.current}$${r.type}` : r.type;
    const all = new Set<string>();
    for (const p of parent ? parent.all : [""]) all.add(p ? `${p}$${r.type}` : r.type);
    for (const a of r.aliases) {
      assert.ok(!a.urn && !a.name, `${r.type}::${r.name}: unexpected alias kind`);
      // Type aliases are the providers' own (older API versions of a kind).
      const type = a.type ?? r.type;
      const parents = a.noParent
        ? [""]
        : a.parentUrn
          ? resolve(lookup(a.parentUrn)).all
          : (parent?.all ?? [""]);
      for (const p of parents) all.add(p ? `${p}$${type}` : type);
    }
    const out = { current, all };
    memo.set(r, out);
    return out;
  };
  return new Map(regs.map((r) => [`${resolve(r).current}::${r.name}`, resolve(r).all]));
}

/** The qualified type a resource had when the platform's children were the stack's. */
const beforePlatform = (qualified: string) =>
  qualified.startsWith(`${PLATFORM_TYPE}$`) ? qualified.slice(PLATFORM_TYPE.length + 1) : qualified;

/** Resources whose URN before the platform component is not among those the engine resolves. */
function unreachable(regs: Registration[]): string[] {
  const missing: string[] = [];
  for (const [urn, types] of reachableTypes(regs)) {
    const [qualified, name] = urn.split("::");
    if (qualified === PLATFORM_TYPE) continue; // new: nothing to keep
    const old = beforePlatform(qualified);
    if (!types.has(old)) missing.push(`${old}::${name}`);
  }
  return missing;
}

const stacks: Record<string, RenderResult> = {};

before(async () => {
  // Also the optional top-level pieces: pull Secret, image builds, kind (image loads).
  const variant = renderRaw(
    "dev",
    {
      cluster: { mode: "kind" },
      registry: { server: "registry.example.com", username: "ci" },
      api: { image: "registry.example.com/stock-analysis:2.1.0", build: { context: "./app" } },
      frontend: { build: { context: "./web" } },
    },
    { registryPassword: "hunter2" },
  ).then((r) => {
    if (r.code !== 0) throw new Error(`render failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as RenderResult;
  });
  const [dev, prod, built] = await Promise.all([render("dev"), render("prod"), variant]);
  Object.assign(stacks, { dev, prod, built });
});

describe("the platform component", () => {
  for (const stack of ["dev", "prod", "built"]) {
    it(`${stack}: one root, the Platform; every other resource has a parent`, () => {
      const roots = stacks[stack].resources.filter((r) => !r.options.parent);
      assert.deepEqual(
        roots.map((r) => `${r.type}::${r.name}`),
        [`${PLATFORM_TYPE}::platform`],
      );
    });

    it(`${stack}: every resource moved under the platform keeps its URN from before`, () => {
      const regs = stacks[stack].resources.map(registration);
      assert.ok(regs.length > 100, `only ${regs.length} resources`);
      assert.deepEqual(unreachable(regs), []);
    });
  }

  it("the optional top-level pieces are rendered by the variant (pull Secret, images, kind)", () => {
    const names = new Set(stacks.built.resources.map((r) => `${r.type}::${r.name}`));
    for (const n of [
      "kubernetes:core/v1:Secret::registry-pull",
      "docker:index/image:Image::api-image",
      "docker:index/image:Image::frontend-image",
      "command:local:Command::frontend-kind-load",
      "command:local:Command::cluster-kind",
    ])
      assert.ok(names.has(n), n);
  });

  it("the platform's children follow the architecture doc", () => {
    const children = stacks.prod.resources
      .filter((r) => r.options.parent && urnType(r.options.parent) === PLATFORM_TYPE)
      .map((r) => `${r.type.split(":").pop()}/${r.name}`);
    // Registration order is asynchronous: compared as sets.
    assert.deepEqual(
      children.sort(),
      [
        "ClusterTarget/cluster",
        "PlatformNamespace/namespace",
        "Image/postgres-image",
        "RandomPassword/api-secret-key",
        "Secret/app-secret",
        "RedisCluster/redis",
        "RedisBroker/redis-broker",
        "RedisBackup/redis-backup",
        "PostgresCluster/postgres",
        "PgBouncer/pooler",
        "ApiMigration/api-migration",
        "WebService/api",
        "WebService/frontend",
        "CeleryWorker/celery",
        "PlatformIngress/ingress",
        "Monitoring/monitoring",
      ].sort(),
    );
  });
});

describe("the alias check itself", () => {
  const stackChild = (type: string, name: string, aliases: AliasSeen[] = []): Registration => ({
    type,
    name,
    parent: `urn:pulumi:s::p::${PLATFORM_TYPE}::platform`,
    aliases,
  });
  const platform: Registration = { type: PLATFORM_TYPE, name: "platform", aliases: [] };
  const grandChild: Registration = {
    type: "kubernetes:apps/v1:Deployment",
    name: "web",
    parent: `urn:pulumi:s::p::${PLATFORM_TYPE}$x:app:Web::web`,
    aliases: [],
  };

  it("reports a moved resource without an alias, and its children", () => {
    assert.deepEqual(unreachable([platform, stackChild("x:app:Web", "web"), grandChild]), [
      "x:app:Web::web",
      "x:app:Web$kubernetes:apps/v1:Deployment::web",
    ]);
  });

  it("accepts the stack as old parent, inherited by the children", () => {
    const aliased = stackChild("x:app:Web", "web", [{ noParent: true }]);
    assert.deepEqual(unreachable([platform, aliased, grandChild]), []);
  });

  it("rejects an alias naming the wrong old parent", () => {
    const wrong = stackChild("x:app:Web", "web", [
      { parentUrn: `urn:pulumi:s::p::${PLATFORM_TYPE}::platform` },
    ]);
    assert.equal(unreachable([platform, wrong, grandChild]).length, 2);
  });
});
