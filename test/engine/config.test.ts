// The offline render reads Pulumi.<stack>.yaml itself; the real engine hands the program the
// config the CLI parsed. These must agree, or the render shows a platform the engine would not build.
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { PROJECT } from "../../components/config/load";
import { readStackConfig } from "../../scripts/lib/render-stack";
import { pulumi, skipReason, stackConfig, tempBackend, toolchain } from "../helpers/pulumi";

const skip = skipReason(toolchain());

interface EngineConfigValue {
  value?: string;
  secret: boolean;
}

/** What the program sees after its own JSON.parse of object values. */
function asProgramSees(v: string | undefined): unknown {
  if (v === undefined) return undefined;
  try {
    return JSON.parse(v) as unknown;
  } catch {
    return v;
  }
}

describe("the real CLI reads each stack's config as the offline render does", () => {
  const backend = tempBackend();
  after(() => backend.cleanup());

  for (const stack of ["dev", "prod"]) {
    it(stack, { skip }, async () => {
      const configFile = await stackConfig(stack, backend);
      const r = await pulumi(
        ["config", "--json", "--show-secrets", "--stack", stack, "--config-file", configFile],
        backend.env,
      );
      assert.equal(r.code, 0, r.stderr);
      const engine = JSON.parse(r.stdout) as Record<string, EngineConfigValue>;
      const ours = Object.fromEntries(
        Object.entries(engine).filter(([k]) => k.startsWith(`${PROJECT}:`)),
      );
      const offline = readStackConfig(stack);

      assert.deepEqual(Object.keys(ours).sort(), Object.keys(offline.config).sort());
      assert.ok(Object.keys(ours).length > 0, "stack has project config");
      for (const [key, value] of Object.entries(offline.config)) {
        const secret = offline.secretKeys.includes(key);
        assert.equal(ours[key].secret, secret, `${key}: secret flag`);
        if (!secret) assert.deepEqual(asProgramSees(ours[key].value), asProgramSees(value), key);
      }
    });
  }
});
