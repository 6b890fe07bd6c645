// The Patroni drills (test/helpers/patroni.ts) run what the prod pods run: the patroni ConfigMap's
// files byte for byte, the postgresql container's command, env and volume mounts as rendered, and
// only the loopback overrides on top of the env.
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { parse } from "yaml";
import {
  MemberPod,
  loopbackOverrides,
  memberPod,
  memberProcessEnv,
  stackMembers,
} from "../helpers/patroni";
import { RenderResult, find, render } from "../helpers/render";

interface PodTemplate {
  spec: {
    template: {
      metadata: { labels: Record<string, string> };
      spec: { containers: { name: string }[]; volumes: unknown[] };
    };
  };
}

describe("Patroni drill harness vs the prod render", () => {
  let prod: RenderResult;
  let pod: MemberPod;
  before(async () => {
    prod = await render("prod");
    pod = memberPod(stackMembers("prod"));
  });

  test("the patroni.yml and dcs.json the members run are the ConfigMap's, byte for byte", () => {
    const cm = find(prod.objects, "ConfigMap", `${pod.name}-patroni`) as unknown as {
      metadata: { namespace: string };
      data: Record<string, string>;
    };
    assert.deepEqual(Object.keys(pod.patroniFiles).sort(), Object.keys(cm.data).sort());
    for (const [file, text] of Object.entries(cm.data))
      assert.ok(pod.patroniFiles[file] === text, `${file} differs from the rendered ConfigMap`);
    assert.equal(pod.namespace, cm.metadata.namespace);
    // The drills' promises rest on these prod settings.
    const yml = parse(cm.data["patroni.yml"]) as {
      scope: string;
      bootstrap: { dcs: { synchronous_mode: boolean } };
    };
    assert.equal(yml.scope, pod.name);
    assert.equal(yml.bootstrap.dcs.synchronous_mode, true);
  });

  test("the container's command, env and volume mounts, and the pod's volumes, are rendered ones", () => {
    const sts = find(prod.objects, "StatefulSet", pod.name) as unknown as PodTemplate;
    const rendered = sts.spec.template.spec.containers.find((x) => x.name === "postgresql");
    const mine = pod.container as unknown as Record<string, unknown>;
    for (const k of ["command", "args", "env", "volumeMounts", "workingDir"] as const)
      assert.deepEqual(mine[k], (rendered as Record<string, unknown>)[k], `container ${k}`);
    assert.deepEqual(pod.volumes, sts.spec.template.spec.volumes);
    for (const [k, v] of Object.entries(pod.podLabels))
      assert.equal(sts.spec.template.metadata.labels[k], v, `pod label ${k}`);
  });

  test("the process env is the container's resolved env plus the loopback overrides only", () => {
    const secret = {
      "superuser-password": "su",
      "replication-password": "repl",
      "app-password": "app",
      "monitoring-password": "mon",
      "restapi-password": "rest",
    };
    const o = { podName: `${pod.name}-1`, pgPort: 15432, restPort: 18008, secret };
    const env = memberProcessEnv(pod, o);
    const overrides = loopbackOverrides(o);
    const rendered = pod.container.env ?? [];
    for (const e of rendered) {
      if (e.name in overrides) continue;
      const ref = e.valueFrom?.secretKeyRef;
      if (ref && e.name.startsWith("PGBACKREST_")) {
        assert.equal(env[e.name], undefined, `${e.name}: no object store in the drills`);
        continue;
      }
      assert.ok(e.name in env, `${e.name} from the container spec is set`);
      if (ref) assert.equal(env[e.name], secret[ref.key as keyof typeof secret], e.name);
      else if (e.value && !e.value.includes("$(")) assert.equal(env[e.name], e.value, e.name);
    }
    assert.equal(env.PATRONI_NAME, `${pod.name}-1`);
    assert.equal(env.PATRONI_KUBERNETES_POD_IP, "127.0.0.1");
    // Every override is a variable Patroni or libpq reads; none replaces a password or a path.
    const names = new Set(rendered.map((e) => e.name));
    for (const k of Object.keys(overrides)) {
      assert.match(
        k,
        /^(PATRONI_(POSTGRESQL|RESTAPI)_(LISTEN|CONNECT_ADDRESS)|PATRONI_KUBERNETES_CONTEXT|KUBECONFIG|PGPORT)$/,
      );
      assert.equal(env[k], overrides[k]);
    }
    // The connect addresses the pod sets are overridden (ports), nothing else it sets.
    assert.deepEqual(
      Object.keys(overrides)
        .filter((k) => names.has(k))
        .sort(),
      ["PATRONI_POSTGRESQL_CONNECT_ADDRESS", "PATRONI_RESTAPI_CONNECT_ADDRESS"],
    );
  });
});
