/**
 * What the real engine does on a live cluster that mocks cannot show, pinned by the options and
 * annotations that prevent it: a config change rolls StatefulSet members instead of replacing
 * the set, Ingresses do not wait for a load-balancer address, an HPA keeps its count.
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { readStackConfig } from "../../scripts/lib/render-stack";
import { RenderResult, find, render } from "../helpers/render";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

/** The prod file's value of a top-level key merged with `patch` (one level deep). */
function prodWith(key: string, patch: Record<string, unknown>): Record<string, unknown> {
  const raw = readStackConfig("prod").config[`stock-analysis:${key}`];
  const base = raw === undefined ? {} : (JSON.parse(raw) as Record<string, unknown>);
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(patch))
    out[k] =
      typeof v === "object" && v !== null && typeof base[k] === "object"
        ? { ...(base[k] as object), ...v }
        : v;
  return { [key]: out };
}

// Fields of a StatefulSet the API server refuses to change: a diff there means replacement.
const IMMUTABLE = ["serviceName", "selector", "volumeClaimTemplates", "podManagementPolicy"];

let prod: RenderResult;
let unsync: RenderResult;
let brokerEdit: RenderResult;
before(async () => {
  [prod, unsync, brokerEdit] = await Promise.all([
    render("prod"),
    render("prod", prodWith("postgres", { synchronous: false })),
    render("prod", prodWith("redis", { broker: { downAfterMs: 7000 } })),
  ]);
});

function rolledNotReplaced(before: RenderResult, after: RenderResult, sts: string, cm: string) {
  const a = find(before.objects, "StatefulSet", sts).spec as Any;
  const b = find(after.objects, "StatefulSet", sts).spec as Any;
  for (const f of IMMUTABLE) assert.deepEqual(b[f], a[f], `${sts}: spec.${f} changed`);
  assert.equal(b.updateStrategy.type, "RollingUpdate");
  const sum = (s: Any) => s.template.metadata.annotations["checksum/config"];
  assert.ok(sum(a), `${sts} carries no checksum/config annotation`);
  assert.notEqual(sum(b), sum(a), `${sts}: a config change must roll its pods`);
  assert.notDeepEqual(
    find(after.objects, "ConfigMap", cm).data,
    find(before.objects, "ConfigMap", cm).data,
  );
}

describe("live updates", () => {
  it("the provider updates ConfigMaps and Secrets in place (no replacement cascading to StatefulSets)", () => {
    const provider = prod.resources.find((r) => r.type === "pulumi:providers:kubernetes");
    const on = (v: unknown) => v === true || v === "true";
    assert.ok(on(provider?.inputs.enableServerSideApply), "server-side apply");
    assert.ok(on(provider?.inputs.enableConfigMapMutable), "enableConfigMapMutable");
    assert.ok(on(provider?.inputs.enableSecretMutable), "enableSecretMutable");
  });

  it("postgres.synchronous reaches running members through a new config Job, no restart", () => {
    const sts = (r: RenderResult) => find(r.objects, "StatefulSet", "postgresql").spec;
    assert.deepEqual(sts(unsync), sts(prod), "Patroni applies synchronous_mode live");
    const configJob = (r: RenderResult) =>
      r.objects.filter((o) => o.kind === "Job" && o.metadata.name.startsWith("postgresql-config-"));
    assert.equal(configJob(prod).length, 1);
    assert.equal(configJob(unsync).length, 1);
    assert.notEqual(configJob(unsync)[0].metadata.name, configJob(prod)[0].metadata.name);
    const dcs = (r: RenderResult) =>
      (find(r.objects, "ConfigMap", "postgresql-patroni").data as Any)["dcs.json"];
    assert.equal(JSON.parse(dcs(unsync)).synchronous_mode, false);
    assert.equal(JSON.parse(dcs(prod)).synchronous_mode, true);
  });

  it("a member resource change rolls the members, the StatefulSet stays", async () => {
    const resized = await render(
      "prod",
      prodWith("postgres", {
        resources: {
          limits: { memory: "6Gi" },
          requests: { cpu: "2000m", memory: "6Gi" },
        },
      }),
    );
    const a = find(prod.objects, "StatefulSet", "postgresql").spec as Any;
    const b = find(resized.objects, "StatefulSet", "postgresql").spec as Any;
    for (const f of IMMUTABLE) assert.deepEqual(b[f], a[f], `postgresql: spec.${f} changed`);
    assert.notDeepEqual(b.template, a.template);
  });

  it("a broker config change rolls redis-broker, the StatefulSet stays", () =>
    rolledNotReplaced(prod, brokerEdit, "redis-broker", "redis-broker-config"));

  it("a switchover target changes no member and no ConfigMap, only the switchover Job", async () => {
    const moved = await render("prod", prodWith("postgres", { primary: 1 }));
    const sts = (r: RenderResult) => find(r.objects, "StatefulSet", "postgresql").spec;
    assert.deepEqual(sts(moved), sts(prod));
    const maps = (r: RenderResult) => r.objects.filter((o) => o.kind === "ConfigMap");
    assert.deepEqual(maps(moved), maps(prod));
    assert.ok(
      moved.objects.some(
        (o) => o.kind === "Job" && o.metadata.name === "postgresql-switchover-to-1",
      ),
    );
  });

  it("Ingresses do not wait for a load-balancer address", () => {
    const ingresses = prod.objects.filter((o) => o.kind === "Ingress");
    assert.ok(ingresses.length > 0);
    for (const i of ingresses)
      assert.equal(i.metadata.annotations?.["pulumi.com/skipAwait"], "true", i.metadata.name);
  });
});
