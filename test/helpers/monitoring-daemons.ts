import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

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

/** A real Alertmanager (Debian `prometheus-alertmanager`) on loopback, clustering off. */
export async function startAlertmanager(configYaml: string) {
  const dir = tempDir("am-");
  const configFile = join(dir, "alertmanager.yml");
  writeFileSync(configFile, configYaml);
  const port = await freePort();
  const daemon = startDaemon("alertmanager", "prometheus-alertmanager", [
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
