// The real Node.js language host runs index.ts with ts-node (not tsx as the offline render does)
// and hands it the engine's config: the program must compile and run there too.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import {
  previewDigest,
  pulumi,
  skipReason,
  stackConfig,
  tempBackend,
  toolchain,
  typeAndName,
} from "../helpers/pulumi";

const tc = toolchain();
const missingPlugin =
  /^error: no resource plugin 'pulumi-resource-(kubernetes|random|command)' found/;

describe("the real language host compiles and runs the program", () => {
  const backend = tempBackend();
  after(() => backend.cleanup());

  for (const stack of ["dev", "prod"]) {
    it(
      `${stack}: registers its components; fails only where a provider plugin is missing`,
      { skip: skipReason(tc) },
      async () => {
        const configFile = await stackConfig(stack, backend);
        const r = await pulumi(
          ["preview", "--json", "--non-interactive", "--stack", stack, "--config-file", configFile],
          backend.env,
        );
        const digest = previewDigest(r);
        const errors = (digest.diagnostics ?? []).filter((d) => d.severity === "error");
        const registered = (digest.steps ?? []).map((s) => typeAndName(s.urn));
        assert.ok(
          registered.some((t) => t.startsWith("stock-analysis:")),
          `no component of the program was registered: ${JSON.stringify(digest.diagnostics)}`,
        );
        if (tc.providers) {
          assert.equal(r.code, 0, JSON.stringify(errors));
        } else {
          // With the providers missing the engine stops at the first provider the program needs;
          // any other error (TypeScript, config validation, host protocol) fails the test.
          assert.notEqual(errors.length, 0, "expected the missing-plugin error");
          for (const e of errors) assert.match(e.message ?? "", missingPlugin);
        }
      },
    );
  }
});
