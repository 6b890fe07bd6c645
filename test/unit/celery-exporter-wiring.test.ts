import assert from "node:assert/strict";
import { it } from "node:test";
import { find, render } from "../helpers/render";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;

it("dev: the Celery exporter reads the standalone broker's URL Secret and may reach the broker", async () => {
  const { objects } = await render("dev");
  const exporter = find(objects, "Deployment", "celery-exporter");
  const env = (exporter.spec as Any).template.spec.containers[0].env;
  assert.deepEqual(env.find((e: Any) => e.name === "CE_BROKER_URL").valueFrom.secretKeyRef, {
    name: "celery-broker",
    key: "broker-url",
  });
  const brokerPolicy = objects.find(
    (o) => o.kind === "NetworkPolicy" && o.metadata.name.startsWith("redis-broker"),
  )!;
  const fromApps = (brokerPolicy.spec as Any).ingress.map(
    (r: Any) => r.from[0].podSelector?.matchLabels?.app,
  );
  assert.ok(fromApps.includes("celery-exporter"), fromApps.join(","));
  // The cache cluster is not the exporter's business.
  const cachePolicy = find(objects, "NetworkPolicy", "redis-allow");
  const cacheFrom = (cachePolicy.spec as Any).ingress.map(
    (r: Any) => r.from[0].podSelector?.matchLabels?.app,
  );
  assert.ok(cacheFrom.includes("stock-analysis-api") && !cacheFrom.includes("celery-exporter"));
});

it("prod: a Sentinel broker gets no exporter until an explicit broker URL secret is configured", async () => {
  const { objects } = await render("prod");
  assert.ok(!objects.some((o) => o.kind === "Deployment" && o.metadata.name === "celery-exporter"));
});
