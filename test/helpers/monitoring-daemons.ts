import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * Where scripts/prometheus-tools.sh puts promtool, prometheus, amtool and alertmanager built at the
 * versions of the images we ship (components/config/monitoring.ts); `scripts/setup.sh --tools` runs it.
 */
export const MONITORING_TOOLS_BIN = join(__dirname, "../../.tools/prometheus/bin");
export type MonitoringTool = "promtool" | "prometheus" | "amtool" | "alertmanager";

/** Path of a monitoring tool at the shipped version; fails with the command that builds it. */
export function tool(name: MonitoringTool): string {
  const path = join(MONITORING_TOOLS_BIN, name);
  if (!existsSync(path))
    throw new Error(
      `${path} is missing: run \`bash scripts/prometheus-tools.sh\` (scripts/setup.sh --tools does)`,
    );
  return path;
}

/** What scripts/prometheus-tools.sh built: `prometheus-X alertmanager-Y modules ...`. */
export function toolVersions(): string {
  return readFileSync(join(MONITORING_TOOLS_BIN, ".versions"), "utf8").trim();
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      if (addr === null || typeof addr === "string") return reject(new Error("no port"));
      srv.close(() => resolve(addr.port));
    });
  });
}

/** Runs a tool synchronously; returns status and combined output. */
export function run(cmd: string, args: string[], opts: { cwd?: string } = {}) {
  const r = spawnSync(cmd, args, { cwd: opts.cwd, encoding: "utf8", timeout: 120_000 });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, output: `${r.stdout}${r.stderr}` };
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A background daemon we started, with its log kept for failure messages. */
export class Daemon {
  private log = "";
  constructor(
    readonly name: string,
    readonly proc: ChildProcess,
  ) {
    proc.stdout?.on("data", (d: Buffer) => (this.log += d.toString()));
    proc.stderr?.on("data", (d: Buffer) => (this.log += d.toString()));
  }
  output(): string {
    return this.log;
  }
  async stop(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.proc.once("exit", () => resolve()));
    this.proc.kill("SIGTERM");
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
  }
}

export function startDaemon(name: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv) {
  return new Daemon(
    name,
    spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } }),
  );
}

/** Polls `url` until it answers 2xx or the deadline passes. */
export async function waitForHttp(url: string, daemon: Daemon, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (daemon.proc.exitCode !== null) {
      throw new Error(`${daemon.name} exited early:\n${daemon.output()}`);
    }
    if (Date.now() > deadline) throw new Error(`${daemon.name} not ready:\n${daemon.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A real Alertmanager (the shipped version, see {@link tool}) on loopback, clustering off. */
export async function startAlertmanager(configYaml: string) {
  const dir = tempDir("am-");
  const configFile = join(dir, "alertmanager.yml");
  writeFileSync(configFile, configYaml);
  const port = await freePort();
  const daemon = startDaemon("alertmanager", tool("alertmanager"), [
    `--config.file=${configFile}`,
    `--storage.path=${join(dir, "data")}`,
    `--web.listen-address=127.0.0.1:${port}`,
    "--cluster.listen-address=",
  ]);
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${url}/-/ready`, daemon);
  } catch (e) {
    await daemon.stop();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    url,
    daemon,
    async stop() {
      await daemon.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const PG_BIN = "/usr/lib/postgresql/15/bin";
const asPostgres = (cmd: string, args: string[]): [string, string[]] =>
  process.getuid?.() === 0 ? ["runuser", ["-u", "postgres", "--", cmd, ...args]] : [cmd, args];

function mustRun(cmd: string, args: string[]) {
  const r = run(cmd, args);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed:\n${r.output}`);
}

/**
 * A PostgreSQL 15 primary with one streaming replica on loopback (trust auth, temp dirs owned by
 * postgres). Enough for exporters to show their replication metrics.
 */
export async function startPostgresPair() {
  const dir = tempDir("mon-pg-");
  if (process.getuid?.() === 0) mustRun("chown", ["postgres", dir]);
  const primaryPort = await freePort();
  const replicaPort = await freePort();
  const pgctl = (data: string, port: number, action: string) =>
    mustRun(
      ...asPostgres(`${PG_BIN}/pg_ctl`, [
        "-D",
        data,
        "-l",
        `${data}.log`,
        "-w",
        "-o",
        `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`,
        action,
      ]),
    );
  const primary = join(dir, "primary");
  const replica = join(dir, "replica");
  const started: string[] = [];
  const stop = () => {
    for (const data of started.reverse()) {
      run(...asPostgres(`${PG_BIN}/pg_ctl`, ["-D", data, "-m", "immediate", "stop"]));
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    mustRun(...asPostgres(`${PG_BIN}/initdb`, ["-D", primary, "-U", "postgres", "--auth=trust"]));
    pgctl(primary, primaryPort, "start");
    started.push(primary);
    mustRun(
      ...asPostgres(`${PG_BIN}/pg_basebackup`, [
        "-h",
        "127.0.0.1",
        "-p",
        String(primaryPort),
        "-U",
        "postgres",
        "-D",
        replica,
        "-R",
      ]),
    );
    pgctl(replica, replicaPort, "start");
    started.push(replica);
  } catch (e) {
    stop();
    throw e;
  }
  const dsn = (port: number) => `postgresql://postgres@127.0.0.1:${port}/postgres?sslmode=disable`;
  return { primaryDsn: dsn(primaryPort), replicaDsn: dsn(replicaPort), stop };
}

/** A cluster-enabled Redis 7 node on loopback (its bus port is port + 10000, so port <= 55535). */
export function startRedisClusterNode() {
  return startRedisServer(true);
}

/** A Redis 7 server on loopback, cluster-enabled or plain (like the Celery broker). */
export async function startRedisServer(cluster = false) {
  const dir = tempDir("mon-redis-");
  let port = await freePort();
  while (port > 55535) port = await freePort();
  const daemon = startDaemon("redis-server", "redis-server", [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    ...(cluster
      ? ["--cluster-enabled", "yes", "--cluster-config-file", join(dir, "nodes.conf")]
      : []),
    "--maxmemory",
    "64mb",
    "--save",
    "",
    "--appendonly",
    "no",
  ]);
  const deadline = Date.now() + 10_000;
  while (run("redis-cli", ["-p", String(port), "ping"]).output.trim() !== "PONG") {
    if (Date.now() > deadline || daemon.proc.exitCode !== null) {
      await daemon.stop();
      throw new Error(`redis not ready:\n${daemon.output()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    addr: `127.0.0.1:${port}`,
    port,
    async stop() {
      await daemon.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Starts an exporter binary on a free loopback port and returns its scrape URL. */
export async function startExporter(
  bin: string,
  args: (listen: string) => string[],
  env?: NodeJS.ProcessEnv,
) {
  const port = await freePort();
  const listen = `127.0.0.1:${port}`;
  const daemon = startDaemon(bin, bin, args(listen), env);
  const url = `http://${listen}/metrics`;
  await waitForHttp(url, daemon).catch(async (e) => {
    await daemon.stop();
    throw e;
  });
  return { url, daemon };
}

/** Metric names in a Prometheus text exposition. */
export async function scrapeMetricNames(url: string): Promise<Set<string>> {
  const text = await (await fetch(url)).text();
  return new Set(
    text
      .split("\n")
      .filter((l) => l && !l.startsWith("#"))
      .map((l) => l.split(/[{ ]/)[0]),
  );
}
