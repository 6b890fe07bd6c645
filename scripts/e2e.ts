/**
 * End-to-end on a real control plane (scripts/cluster-sim): a stack's render applied with
 * server-side apply in file order, every workload rolled out, then an upgrade drill.
 *   npm run e2e -- --stack dev|prod [--keep]
 * Exit 0 when every check passed; 1 when one failed (each failure is printed); 2 on bad usage.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { kubeReader } from "../components/cluster/kube-client";
import {
  checkCluster,
  clusterRequirements,
  describeRequirement,
} from "../components/cluster/preflight";
import { parseCommandLine, runMain } from "./lib/cli";
import {
  e2eChecks,
  provideOperatorSecrets,
  providePrerequisites,
  SIM_GAPS,
} from "./lib/e2e-checks";
import { stackConfig } from "./lib/e2e-render";
import { buildSim, startSim, stopOnSignals, stopSim } from "./lib/sim-cluster";

const USAGE = `usage: npm run e2e -- --stack dev|prod [--keep] [--prepare-only]
  --stack          the stack whose render is applied (Pulumi.<stack>.yaml)
  --keep           leave the simulated cluster running and print how to reach it
  --prepare-only   start the cluster with exactly the stack's prerequisites, apply nothing,
                   keep it running (a target for a real \`pulumi up\` with cluster.mode existing)`;

async function main(): Promise<number> {
  const values = parseCommandLine(USAGE, {
    stack: { type: "string" },
    keep: { type: "boolean", default: false },
    "prepare-only": { type: "boolean", default: false },
  });
  const stack = values.stack;
  if (!stack || !fs.existsSync(path.join(__dirname, "..", `Pulumi.${stack}.yaml`))) {
    process.stderr.write(`e2e: --stack must name a stack file (got ${stack ?? "nothing"})\n`);
    return 2;
  }
  const prepareOnly = values["prepare-only"];
  const t0 = Date.now();
  const log = (msg: string) =>
    process.stdout.write(`e2e ${stack} [${((Date.now() - t0) / 1000).toFixed(0)}s] ${msg}\n`);

  buildSim();
  const sim = startSim();
  stopOnSignals(sim);
  const failures: string[] = [];
  try {
    const cfg = stackConfig(stack);
    const reader = kubeReader({ kubeconfig: sim.kubeconfig, context: sim.context });
    const reqs = clusterRequirements(cfg);

    // The bare cluster has none of the prerequisites: the preflight must name every one.
    const before = await checkCluster(reader, reqs);
    const unnoticed = before.filter((r) => r.problem === undefined);
    if (unnoticed.length > 0)
      failures.push(
        `preflight on a bare cluster found present: ${unnoticed.map((r) => describeRequirement(r.requirement)).join(", ")}`,
      );
    log(
      `preflight on the bare cluster: ${before.length - unnoticed.length}/${before.length} prerequisites reported missing`,
    );

    // Provide exactly what the preflight names, as a cluster admin would, and nothing else: an
    // object the stack puts anywhere else must then fail to apply or stay Pending.
    providePrerequisites(sim, reqs, log);
    const after = await checkCluster(reader, reqs);
    for (const r of after.filter((x) => x.problem !== undefined)) {
      if (SIM_GAPS.has(r.requirement.kind))
        log(
          `preflight: ${describeRequirement(r.requirement)} missing (${SIM_GAPS.get(r.requirement.kind)})`,
        );
      else
        failures.push(
          `preflight after providing: ${describeRequirement(r.requirement)}: ${r.problem}`,
        );
    }

    provideOperatorSecrets(sim, cfg, log);

    if (!prepareOnly) {
      const work = fs.mkdtempSync(path.join(os.tmpdir(), `e2e-${stack}-`));
      failures.push(...(await e2eChecks({ sim, stack, cfg, work, log })));
    }
  } catch (e) {
    failures.push(e instanceof Error ? e.message : String(e));
  } finally {
    if (values.keep || prepareOnly) {
      process.stdout.write(
        `cluster kept: export KUBECONFIG=${sim.kubeconfig}; stop: bash scripts/cluster-sim/sim.sh stop ${sim.dir}\n`,
      );
    } else stopSim(sim);
  }
  if (failures.length > 0) {
    process.stdout.write(`\ne2e ${stack}: FAILED (${failures.length})\n`);
    for (const f of failures) process.stdout.write(`  - ${f}\n`);
    return 1;
  }
  log("passed");
  return 0;
}

runMain("e2e", main);
