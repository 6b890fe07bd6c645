/**
 * The simulated cluster (scripts/cluster-sim) from TypeScript: build, start, stop, and kubectl.
 * Used by the e2e (scripts/e2e.ts) and the cluster tests (test/cluster).
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { REPO_ROOT } from "./render-stack";
import { runProcess } from "./run-process";

const SIM = path.join(REPO_ROOT, "scripts/cluster-sim");

export interface SimCluster {
  dir: string;
  kubeconfig: string;
  context: string;
  server: string;
  bin: string;
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Builds the binaries when missing (minutes cold, instant warm); progress goes to stderr. */
export function buildSim(): void {
  const r = spawnSync("bash", [path.join(SIM, "build.sh")], { stdio: "inherit" });
  if (r.status !== 0) throw new Error(`scripts/cluster-sim/build.sh failed (${r.status})`);
}

/** Starts a fresh cluster in a new temp dir. `stop` it in a finally block. */
export function startSim(opts: { quiet?: boolean } = {}): SimCluster {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cluster-sim-"));
  const r = spawnSync("bash", [path.join(SIM, "sim.sh"), "start", dir], {
    stdio: ["ignore", "inherit", opts.quiet ? "pipe" : "inherit"],
    encoding: "utf8",
  });
  if (r.status !== 0)
    throw new Error(`cluster-sim start failed (${r.status})${opts.quiet ? `:\n${r.stderr}` : ""}`);
  const info = JSON.parse(fs.readFileSync(path.join(dir, "cluster.json"), "utf8")) as Omit<
    SimCluster,
    "dir"
  >;
  return { dir, ...info };
}

export function stopSim(sim: SimCluster): void {
  spawnSync("bash", [path.join(SIM, "sim.sh"), "stop", sim.dir], {
    stdio: ["ignore", "ignore", "pipe"],
  });
}

/** Stops the cluster when the process is interrupted, so no daemon outlives a cancelled run. */
export function stopOnSignals(sim: SimCluster): void {
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const)
    process.once(sig, () => {
      stopSim(sim);
      process.exit(130);
    });
}

/** Runs kubectl against the cluster (never the user's current context). */
export function kubectl(sim: SimCluster, args: string[], input?: string): KubectlResult {
  const r = spawnSync(
    path.join(sim.bin, "kubectl"),
    ["--kubeconfig", sim.kubeconfig, "--context", sim.context, "--request-timeout=60s", ...args],
    { input, encoding: "utf8", maxBuffer: 256 * 1024 * 1024 },
  );
  return { code: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

/** kubectl that must succeed; returns stdout. */
export function kubectlOk(sim: SimCluster, args: string[], input?: string): string {
  const r = kubectl(sim, args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout;
}

/** Async kubectl, for waits that run side by side. */
export function kubectlAsync(sim: SimCluster, args: string[]): Promise<KubectlResult> {
  const kube = ["--kubeconfig", sim.kubeconfig, "--context", sim.context];
  return runProcess(path.join(sim.bin, "kubectl"), [...kube, ...args]);
}

export interface KubeItem {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    uid: string;
    generation?: number;
    resourceVersion: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
  [key: string]: unknown;
}

/** Every object of the given kinds in the cluster (`kubectl get K1,K2 -A -o json`). */
export function listKinds(sim: SimCluster, kinds: string[]): KubeItem[] {
  const out = kubectlOk(sim, ["get", kinds.join(","), "-A", "-o", "json"]);
  return (JSON.parse(out) as { items: KubeItem[] }).items;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` (returning a problem or undefined) until it passes or `seconds` elapse. */
export async function waitUntil(
  what: string,
  seconds: number,
  check: () => string | undefined | Promise<string | undefined>,
): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  let problem: string | undefined = "not checked";
  while (Date.now() < deadline) {
    problem = await check();
    if (problem === undefined) return;
    await sleep(1000);
  }
  throw new Error(`${what}: not reached in ${seconds} s: ${problem}`);
}
