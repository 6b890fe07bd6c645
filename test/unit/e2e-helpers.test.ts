/** Pure parts of the e2e and preflight: which runbook commands run, what each stack requires. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { clusterRequirements, preflightMessage } from "../../components/cluster/preflight";
import { stackConfig } from "../../scripts/lib/e2e-render";
import { runbookCommands, words } from "../../scripts/lib/e2e-runbook";

describe("runbook command extraction", () => {
  const md = [
    "text `kubectl get pods` outside a block is prose",
    "```bash",
    "kubectl get pods -n stock-analysis -l app=x | grep Running   # comment",
    "kubectl describe pod <pod> -n stock-analysis",
    "kubectl exec postgresql-0 -- psql",
    'kubectl get pvc -n stock-analysis -o jsonpath="{.items[*].metadata.name}"',
    "kubectl rollout status deployment/stock-analysis-api -n stock-analysis",
    "kubectl rollout undo deployment/stock-analysis-api -n stock-analysis",
    "kubectl scale deployment stock-analysis-celery --replicas=6 -n stock-analysis   # then commit it",
    "kubectl get pods -n $NS",
    "```",
  ].join("\n");
  it("keeps read-only verbs and scale, without placeholders, variables or exec", () => {
    assert.deepEqual(
      runbookCommands(md).map((c) => [c.line, c.args[0]]),
      [
        [3, "get"],
        [6, "get"],
        [7, "rollout"],
        [9, "scale"],
      ],
    );
  });
  it("splits words as the shell does", () => {
    assert.deepEqual(words(`get pvc -o jsonpath="{.a b}" 'x y'`), [
      "get",
      "pvc",
      "-o",
      "jsonpath={.a b}",
      "x y",
    ]);
    assert.equal(words(`get "unterminated`), undefined);
  });
});

describe("cluster prerequisites per stack", () => {
  it("dev needs the ingress controller's namespace and class and a default StorageClass, no HPA metrics", () => {
    const kinds = clusterRequirements(stackConfig("dev")).map((r) => r.kind);
    assert.deepEqual([...kinds].sort(), ["DefaultStorageClass", "IngressClass", "Namespace"]);
  });
  it("prod names the ssd StorageClass with every config key that uses it", () => {
    const ssd = clusterRequirements(stackConfig("prod")).find(
      (r) => r.kind === "StorageClass" && r.name === "ssd",
    );
    assert.ok(ssd);
    assert.match(ssd.why, /postgres\.storage\.storageClass/);
  });
  it("reports nothing when everything is present", () => {
    const reqs = clusterRequirements(stackConfig("prod"));
    assert.equal(
      preflightMessage(
        "https://x",
        reqs.map((requirement) => ({ requirement })),
      ),
      undefined,
    );
  });
});
