import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { schemaErrors } from "../../scripts/lib/validate-schema";
import { render } from "../helpers/render";

describe("Kubernetes OpenAPI schema (kubernetes-models, offline)", () => {
  for (const stack of ["dev", "prod"]) {
    it(`every object of ${stack} validates`, async () => {
      const { objects } = await render(stack);
      assert.ok(objects.length > 0);
      const errors: string[] = [];
      for (const o of objects) {
        const err = await schemaErrors(o);
        if (err) errors.push(`${o.kind}/${o.metadata.name}: ${err}`);
      }
      assert.deepEqual(errors, []);
    });
  }

  it("the validator rejects a malformed object", async () => {
    const err = await schemaErrors({
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "broken" },
      spec: { replicas: "five", selector: {}, template: {} },
    });
    assert.match(err ?? "", /replicas must be integer/);
  });
});
