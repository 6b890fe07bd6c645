// The real engine with the real providers: preview of each stack (with the policy pack), an
// update that changes one replica count, and `pulumi up` into manifests on disk (renderYamlToDirectory:
// no cluster). Needs the full toolchain from scripts/install-pulumi; skipped, saying why, without it.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { parse as parseYaml, parseAllDocuments, stringify } from "yaml";
import type { K8sObject } from "../../scripts/lib/render-stack";
import { schemaErrors } from "../../scripts/lib/validate-schema";
import { render } from "../helpers/render";
import {
  ROOT,
  policyArgs,
  previewDigest,
  pulumi,
  skipReason,
  stackConfig,
  tempBackend,
  toolchain,
  typeAndName,
} from "../helpers/pulumi";

const usesPolicies = fs.existsSync(path.join(ROOT, "policies/PulumiPolicy.yaml"));
const skip = skipReason(toolchain(), { providers: true, policyPacks: usesPolicies });

/** Resources the program registered itself (not the stack root, not engine default providers). */
function programResources(types: string[]): string[] {
  return types
    .filter((t) => !t.startsWith("pulumi:pulumi:Stack::"))
    .filter((t) => !/^pulumi:providers:[^:]+::default(_|$)/.test(t))
    .sort();
}

function objectKey(o: K8sObject): string {
  return `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`;
}

/** A stack config file: Pulumi.<stack>.yaml with some top-level keys replaced. */
function configCopy(
  dir: string,
  stack: string,
  name: string,
  sets: Record<string, unknown>,
): string {
  const doc = parseYaml(fs.readFileSync(path.join(ROOT, `Pulumi.${stack}.yaml`), "utf8")) as {
    config: Record<string, unknown>;
  };
  for (const [k, v] of Object.entries(sets)) doc.config[`stock-analysis:${k}`] = v;
  const file = path.join(dir, `Pulumi.${name}.yaml`);
  fs.writeFileSync(file, stringify(doc));
  return file;
}

function prodValue(key: string): Record<string, unknown> {
  const doc = parseYaml(fs.readFileSync(path.join(ROOT, "Pulumi.prod.yaml"), "utf8")) as {
    config: Record<string, Record<string, unknown>>;
  };
  return structuredClone(doc.config[`stock-analysis:${key}`] ?? {});
}

describe("the real engine previews both stacks", () => {
  const backend = tempBackend();
  after(() => backend.cleanup());

  for (const stack of ["dev", "prod"]) {
    it(
      `${stack}: succeeds with the policy pack and plans exactly the offline render's resources`,
      { skip },
      async () => {
        const configFile = await stackConfig(stack, backend);
        const r = await pulumi(
          [
            "preview",
            "--json",
            "--non-interactive",
            "--stack",
            stack,
            "--config-file",
            configFile,
            ...policyArgs(stack),
          ],
          backend.env,
        );
        const digest = previewDigest(r);
        const errors = (digest.diagnostics ?? []).filter((d) => d.severity === "error");
        assert.deepEqual(errors, [], "errors or mandatory policy violations");
        assert.equal(r.code, 0, r.stderr);

        const steps = digest.steps ?? [];
        assert.deepEqual(
          [...new Set(steps.map((s) => s.op))],
          ["create"],
          "a new stack only creates",
        );
        const offline = await render(stack);
        assert.deepEqual(
          programResources(steps.map((s) => typeAndName(s.urn))),
          programResources(offline.resources.map((x) => `${x.type}::${x.name}`)),
        );
      },
    );
  }
});

describe(
  "pulumi up of prod into manifests on disk, then a one-line config change",
  { skip },
  () => {
    const backend = tempBackend();
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "engine-yaml-"));
    const renderDir = path.join(work, "rendered");
    const yamlCluster = { mode: "yaml", renderDir };
    const stack = "prod-yaml";
    let configFile = "";

    before(async () => {
      configFile = await stackConfig(
        stack,
        backend,
        configCopy(work, "prod", stack, { cluster: yamlCluster }),
      );
    });
    after(() => {
      backend.cleanup();
      fs.rmSync(work, { recursive: true, force: true });
    });

    it(
      "writes schema-valid manifests, name for name the offline render's objects",
      { skip },
      async () => {
        const r = await pulumi(
          [
            "up",
            "--yes",
            "--skip-preview",
            "--non-interactive",
            "--stack",
            stack,
            "--config-file",
            configFile,
          ],
          backend.env,
        );
        assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);

        const written: K8sObject[] = [];
        for (const sub of fs.readdirSync(renderDir)) {
          for (const file of fs.readdirSync(path.join(renderDir, sub))) {
            const text = fs.readFileSync(path.join(renderDir, sub, file), "utf8");
            for (const doc of parseAllDocuments(text)) {
              const obj = doc.toJS() as K8sObject | null;
              if (obj) written.push(obj);
            }
          }
        }
        for (const obj of written) assert.equal(await schemaErrors(obj), undefined, objectKey(obj));

        const offline = await render("prod", { cluster: yamlCluster });
        assert.deepEqual(written.map(objectKey).sort(), offline.objects.map(objectKey).sort());
      },
    );

    it("previews a changed Celery replica count as exactly that one update", { skip }, async () => {
      const celery = prodValue("celery");
      celery.replicas = Number(celery.replicas ?? 1) + 1;
      // The offline render says which object the change touches; the engine must agree.
      const base = await render("prod", { cluster: yamlCluster });
      const afterChange = await render("prod", { cluster: yamlCluster, celery });
      const changed = afterChange.objects
        .filter((o) => {
          const old = base.objects.find((b) => objectKey(b) === objectKey(o));
          return JSON.stringify(old) !== JSON.stringify(o);
        })
        .map(objectKey);
      assert.equal(changed.length, 1, `offline render: ${changed.join(", ")}`);

      const changedConfig = await stackConfig(
        stack,
        backend,
        configCopy(work, "prod", stack, { cluster: yamlCluster, celery }),
      );
      const r = await pulumi(
        [
          "preview",
          "--json",
          "--non-interactive",
          "--stack",
          stack,
          "--config-file",
          changedConfig,
        ],
        backend.env,
      );
      assert.equal(r.code, 0, r.stderr);
      const steps = (previewDigest(r).steps ?? []).filter((s) => s.op !== "same");
      assert.equal(steps.length, 1, JSON.stringify(steps.map((s) => `${s.op} ${s.urn}`)));
      assert.equal(steps[0].op, "update");
      const [kind, , name] = changed[0].split("/");
      assert.equal(typeAndName(steps[0].urn).split("::")[0].split(":").pop(), kind);
      const metadata = steps[0].newState?.inputs?.metadata as { name?: string } | undefined;
      assert.equal(metadata?.name, name);
      assert.ok(
        Object.keys(steps[0].detailedDiff ?? {}).some((k) => k.includes("replicas")),
        JSON.stringify(steps[0].detailedDiff),
      );
    });
  },
);
