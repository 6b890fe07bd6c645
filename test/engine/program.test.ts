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
      `${stack}: runs up to its resource registrations; fails only where a provider plugin is missing`,
      { skip: skipReason(tc) },
      async () => {
        const configFile = await stackConfig(stack, backend);
        const r = await pulumi(
          ["preview", "--json", "--non-interactive", "--stack", stack, "--config-file", configFile],
          backend.env,
        );
        const digest = previewDigest(r);
        const errors = (digest.diagnostics ?? []).filter((d) => d.severity === "error");
        if (tc.providers) {
          assert.equal(r.code, 0, JSON.stringify(errors));
          const registered = (digest.steps ?? []).map((s) => typeAndName(s.urn));
          assert.ok(
            registered.some((t) => t.startsWith("stock-analysis:")),
            "components planned",
          );
        } else {
          // With the providers missing the engine stops when the program registers the first
          // resource of a missing provider: the error is attached to that provider's URN, so the
          // program compiled, validated its config and was registering resources. Any other
          // error (TypeScript, config validation, host protocol) fails the test.
          assert.notEqual(r.code, 0);
          assert.notEqual(errors.length, 0, "expected the missing-plugin error");
          for (const e of errors) {
            assert.match(e.message ?? "", missingPlugin);
            assert.match(
              e.urn ?? "",
              new RegExp(`^urn:pulumi:${stack}::stock-analysis::pulumi:providers:`),
            );
          }
        }
      },
    );
  }
});
