/**
 * celery_queue_length in every stack: the broker's redis_exporter sidecars export the queues' key
 * sizes, a recording rule turns them into celery_queue_length, and the Celery exporter's own copy
 * (dev) is dropped at scrape time so the alert reads exactly one series per queue.
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { parse } from "yaml";
import { celerySchema } from "../../components/config/app";
import { celeryQueueKeys } from "../../components/redis/content";
import { RenderResult, find, render } from "../helpers/render";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
const stacks: Record<string, RenderResult> = {};

before(async () => {
  const [dev, prod, queues] = await Promise.all([
    render("dev"),
    render("prod"),
    render("prod", { celery: { queues: ["celery", "reports"] } }),
  ]);
  Object.assign(stacks, { dev, prod, queues });
});

const exporterEnv = (r: RenderResult, sts: string): Record<string, string> => {
  const c = (find(r.objects, "StatefulSet", sts).spec as Any).template.spec.containers.find(
    (x: Any) => x.name === "redis-exporter",
  );
  assert.ok(c, `${sts} has a redis-exporter sidecar`);
  return Object.fromEntries((c.env ?? []).map((e: Any) => [e.name, e.value ?? e.valueFrom]));
};

describe("celery queue length", () => {
  for (const stack of ["dev", "prod"]) {
    it(`${stack}: only the broker's exporters check the Celery queue keys`, () => {
      assert.equal(
        exporterEnv(stacks[stack], "redis-broker").REDIS_EXPORTER_CHECK_SINGLE_KEYS,
        "db0=celery",
      );
      assert.equal(exporterEnv(stacks[stack], "redis").REDIS_EXPORTER_CHECK_SINGLE_KEYS, undefined);
    });

    it(`${stack}: the rules record celery_queue_length from broker key sizes; CeleryQueueHigh reads it`, () => {
      const rules = parse(
        (find(stacks[stack].objects, "ConfigMap", "prometheus-rules").data as Any)[
          "alert_rules.yml"
        ],
      ) as Any;
      const all = rules.groups.flatMap((g: Any) => g.rules);
      const recorded = all.filter((r: Any) => r.record === "celery_queue_length");
      assert.equal(recorded.length, 1);
      assert.match(recorded[0].expr, /redis_key_size\{app="redis-broker", db="db0"\}/);
      const alert = all.find((r: Any) => r.alert === "CeleryQueueHigh");
      assert.equal(alert.expr, "celery_queue_length > 1000");
      assert.equal(alert.for, "5m");
    });
  }

  it("the queues of celery.queues reach the broker's exporters", () => {
    assert.equal(
      exporterEnv(stacks.queues, "redis-broker").REDIS_EXPORTER_CHECK_SINGLE_KEYS,
      "db0=celery,db0=reports",
    );
  });

  it("dev: the Celery exporter runs but its celery_queue_length is dropped at scrape time", () => {
    find(stacks.dev.objects, "Deployment", "celery-exporter");
    const prom = parse(
      (find(stacks.dev.objects, "ConfigMap", "prometheus-config").data as Any)["prometheus.yml"],
    ) as Any;
    const job = prom.scrape_configs.find((j: Any) => j.job_name === "celery-exporter");
    assert.deepEqual(job.metric_relabel_configs, [
      { source_labels: ["__name__"], regex: "celery_queue_length", action: "drop" },
    ]);
  });
});

it("queue names the exporter's key list cannot carry are refused", () => {
  for (const bad of ["a,b", "a=b", "a b", ""])
    assert.ok(!celerySchema.safeParse({ queues: [bad] }).success, JSON.stringify(bad));
  assert.ok(celerySchema.safeParse({ queues: ["celery", "reports.daily"] }).success);
  assert.throws(() => celeryQueueKeys(["a,b"]));
});
