/**
 * The render directory's file order is apply order: `kubectl apply -f DIR` reads files sorted
 * by name, and a Deployment applied before its ServiceAccount cannot create pods until retried.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { before, it } from "node:test";
import { parse } from "yaml";
import { writeRenderDir } from "../../scripts/lib/render-files";
import type { K8sObject } from "../../scripts/lib/render-stack";
import { podSpecOf } from "../../scripts/lib/summary";
import { RenderResult, render } from "../helpers/render";

let prod: RenderResult;
before(async () => {
  prod = await render("prod");
});

it("writes the prod render so that everything a pod references sorts before the pod's owner", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "render-order-"));
  try {
    const files = writeRenderDir(prod.objects, dir);
    assert.deepEqual(files, [...files].sort(), "returned in lexical (kubectl) order");
    assert.equal(files.length, prod.objects.length, "one file per object");
    const order = files.map((f) => parse(fs.readFileSync(f, "utf8")) as K8sObject);
    const position = new Map(
      order.map((o, i) => [`${o.kind}/${o.metadata.namespace}/${o.metadata.name}`, i]),
    );
    const at = (kind: string, ns: string | undefined, name: string) =>
      position.get(`${kind}/${ns}/${name}`);
    let checked = 0;
    order.forEach((o, i) => {
      const ns = o.metadata.namespace;
      const nsAt = ns === undefined ? undefined : at("Namespace", undefined, ns);
      if (nsAt !== undefined)
        assert.ok(nsAt < i, `${o.kind}/${o.metadata.name} sorts after its Namespace`);
      const spec = podSpecOf(o) as
        | {
            serviceAccountName?: string;
            volumes?: { secret?: { secretName: string }; configMap?: { name: string } }[];
          }
        | undefined;
      if (!spec) return;
      const refs: [string, string | undefined][] = [["ServiceAccount", spec.serviceAccountName]];
      for (const v of spec.volumes ?? [])
        refs.push(["Secret", v.secret?.secretName], ["ConfigMap", v.configMap?.name]);
      for (const [kind, name] of refs) {
        if (!name) continue;
        const p = at(kind, ns, name);
        if (p === undefined) continue; // the default ServiceAccount, or made by the cluster
        assert.ok(p < i, `${o.kind}/${o.metadata.name} sorts before the ${kind}/${name} it uses`);
        checked++;
      }
    });
    assert.ok(checked > 20, `only ${checked} references checked`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
