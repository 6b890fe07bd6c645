/**
 * Real Redis daemons for tests: cluster nodes, broker servers and sentinels started through the
 * very entrypoint scripts the pods run, on loopback addresses with random free ports and temp dirs.
 *
 * Pod DNS is reproduced without touching the machine's /etc/hosts: every script runs in its own
 * mount namespace (`unshare -m`) where a temp hosts file is bind-mounted over /etc/hosts. Changing
 * that file and restarting a node on another 127.x address is the loopback equivalent of a pod
 * coming back with a new IP under the same DNS name.
 */
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync, rmSync, mkdirSync, openSync, closeSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { REDIS_SCRIPTS_DIR } from "../../components/redis/content";

const execFileP = promisify(execFile);

export const TEST_PASSWORD = "testPassw0rdForRedis";

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` until it returns a truthy value; throws with `what` after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false | null>,
  timeoutMs: number,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`, { cause: lastError });
    }
    await sleep(intervalMs);
  }
}

function canListen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

/** A port free on every host, with port+10000 (the cluster bus) free too. */
export async function freePort(hosts: string[]): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 20000);
    let ok = true;
    for (const h of hosts) {
      if (!(await canListen(h, port)) || !(await canListen(h, port + 10000))) {
        ok = false;
        break;
      }
    }
    if (ok) return port;
  }
  throw new Error("no free port found");
}

/** redis-cli against one server; auth through REDISCLI_AUTH like the scripts. Returns trimmed stdout. */
export async function cli(
  host: string,
  port: number,
  args: string[],
  password: string | undefined = TEST_PASSWORD,
): Promise<string> {
  const { stdout } = await execFileP(
    "redis-cli",
    ["--no-auth-warning", "-h", host, "-p", String(port), ...args],
    { env: { ...process.env, REDISCLI_AUTH: password ?? "" }, timeout: 10000 },
  );
  return stdout.replace(/\r/g, "").trimEnd();
}

/** Parses INFO / CLUSTER INFO output. */
export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const i = line.indexOf(":");
    if (i > 0 && !line.startsWith("#")) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}

export interface ClusterNodeLine {
  id: string;
  ip: string;
  port: number;
  hostname: string;
  flags: string[];
  masterId: string;
  slots: string[];
}

/** Parses CLUSTER NODES. */
export function parseClusterNodes(text: string): ClusterNodeLine[] {
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => {
      const f = l.split(" ");
      const [endpoint, hostname = ""] = f[1].split(",");
      const hostPort = endpoint.split("@")[0];
      const ip = hostPort.slice(0, hostPort.lastIndexOf(":"));
      return {
        id: f[0],
        ip,
        port: Number(hostPort.slice(hostPort.lastIndexOf(":") + 1)),
        hostname,
        flags: f[2].split(","),
        masterId: f[3],
        slots: f.slice(8),
      };
    });
}

/** A temp workspace: dirs, the password file and the namespace hosts file; removed by cleanup(). */
export class Sandbox {
  readonly dir: string;
  readonly passwordFile: string;
  readonly hostsFile: string;
  private readonly procs = new Set<ChildProcess>();
  private hosts = new Map<string, string>();

  constructor(prefix: string) {
    this.dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
    this.passwordFile = join(this.dir, "password");
    writeFileSync(this.passwordFile, TEST_PASSWORD + "\n", { mode: 0o600 });
    this.hostsFile = join(this.dir, "hosts");
    this.writeHosts();
  }

  path(...parts: string[]): string {
    return join(this.dir, ...parts);
  }

  /** Maps a DNS name to an address in the namespace hosts file (rewritten in place: bind mounts keep the inode). */
  setHost(name: string, ip: string): void {
    this.hosts.set(name, ip);
    this.writeHosts();
  }

  lookup(name: string): string | undefined {
    return this.hosts.get(name);
  }

  private writeHosts(): void {
    const lines = ["127.0.0.1 localhost"];
    for (const [name, ip] of this.hosts) lines.push(`${ip} ${name}`);
    writeFileSync(this.hostsFile, lines.join("\n") + "\n");
  }

  /** Command line running a script inside a mount namespace that sees the sandbox hosts file. */
  private nsArgs(script: string, args: string[]): string[] {
    return [
      "-m",
      "bash",
      "-c",
      'mount --bind "$SANDBOX_HOSTS" /etc/hosts && exec bash "$@"',
      "ns",
      join(REDIS_SCRIPTS_DIR, script),
      ...args,
    ];
  }

  /** Starts a long-running script (an entrypoint that execs a daemon); output goes to `logName`. */
  start(script: string, env: Record<string, string>, logName: string): ChildProcess {
    mkdirSync(this.path("logs"), { recursive: true });
    const fd = openSync(this.path("logs", logName), "a");
    const child = spawn("unshare", this.nsArgs(script, []), {
      env: { ...process.env, ...env, SANDBOX_HOSTS: this.hostsFile },
      stdio: ["ignore", fd, fd],
    });
    closeSync(fd);
    this.procs.add(child);
    child.once("exit", () => this.procs.delete(child));
    return child;
  }

  /** Runs a script to completion; resolves with its exit code and output. */
  run(
    script: string,
    env: Record<string, string>,
    args: string[] = [],
    timeoutMs = 120000,
  ): Promise<{ code: number; output: string }> {
    return new Promise((resolve, reject) => {
      const child = spawn("unshare", this.nsArgs(script, args), {
        env: { ...process.env, ...env, SANDBOX_HOSTS: this.hostsFile },
        stdio: ["ignore", "pipe", "pipe"],
      });
      this.procs.add(child);
      let output = "";
      child.stdout.on("data", (d) => (output += d));
      child.stderr.on("data", (d) => (output += d));
      const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
      child.once("error", reject);
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        this.procs.delete(child);
        resolve({ code: code ?? (signal ? 128 : 1), output });
      });
    });
  }

  /** Spawns any program inside the sandbox's DNS view (stdout/stderr piped), tracked for cleanup. */
  spawnInNs(command: string, args: string[], env: Record<string, string> = {}): ChildProcess {
    const child = spawn(
      "unshare",
      [
        "-m",
        "bash",
        "-c",
        'mount --bind "$SANDBOX_HOSTS" /etc/hosts && exec "$@"',
        "ns",
        command,
        ...args,
      ],
      {
        env: { ...process.env, ...env, SANDBOX_HOSTS: this.hostsFile },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    this.procs.add(child);
    child.once("exit", () => this.procs.delete(child));
    return child;
  }

  /** Kills every process still running and removes the temp dir. */
  async cleanup(): Promise<void> {
    const waits = [...this.procs].map(
      (p) => new Promise<void>((r) => (p.exitCode !== null ? r() : p.once("exit", () => r()))),
    );
    for (const p of this.procs) p.kill("SIGKILL");
    await Promise.all(waits);
    if (!process.env.KEEP_REDIS_TEST_DIRS) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Kills a daemon with a signal and waits until it has exited. */
export function killProcess(
  child: ChildProcess,
  signal: NodeJS.Signals = "SIGKILL",
): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill(signal);
  });
}

export interface TestNode {
  name: string;
  ip: string;
  port: number;
  dataDir: string;
  child?: ChildProcess;
}

/**
 * Cluster nodes on loopback: node i is DNS name `<prefix>-i.<prefix>-headless.test` at 127.0.<subnet>.<10+i>,
 * all on one port like pods, started through node-entrypoint.sh with the generated redis.conf.
 */
export class ClusterNodes {
  readonly nodes: TestNode[] = [];
  readonly confFile: string;

  constructor(
    readonly sb: Sandbox,
    readonly subnet: number,
    readonly port: number,
    conf: string,
    readonly prefix = "redis",
  ) {
    this.confFile = sb.path(`${prefix}.conf`);
    writeFileSync(this.confFile, conf);
  }

  /** Adds node definitions up to `count` (not started). */
  define(count: number): void {
    for (let i = this.nodes.length; i < count; i++) {
      const name = `${this.prefix}-${i}.${this.prefix}-headless.test`;
      const node = {
        name,
        ip: `127.0.${this.subnet}.${10 + i}`,
        port: this.port,
        dataDir: this.sb.path(`${this.prefix}-${i}`, "data"),
      };
      this.sb.setHost(name, node.ip);
      this.nodes.push(node);
    }
  }

  async start(i: number): Promise<void> {
    const n = this.nodes[i];
    n.child = this.sb.start(
      "node-entrypoint.sh",
      {
        REDIS_CONF: this.confFile,
        REDIS_DATA_DIR: n.dataDir,
        REDIS_RUNTIME_DIR: this.sb.path(`${this.prefix}-${i}`, "run"),
        REDIS_PORT: String(n.port),
        REDIS_BIND: n.ip,
        REDIS_BIND_SOURCE_ADDR: n.ip,
        REDIS_PASSWORD_FILE: this.sb.passwordFile,
        REDIS_ANNOUNCE_HOSTNAME: n.name,
      },
      `${this.prefix}-${i}.log`,
    );
    await waitFor(
      `${n.name} to answer PING`,
      async () => (await cli(n.ip, n.port, ["PING"])) === "PONG",
      15000,
    );
  }

  async kill(i: number, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const c = this.nodes[i].child;
    if (c) await killProcess(c, signal);
  }

  /** Moves node i to a new loopback address under the same DNS name (a pod IP change). */
  readdress(i: number, ip: string): void {
    this.nodes[i].ip = ip;
    this.sb.setHost(this.nodes[i].name, ip);
  }

  /** Runs the formation script, exactly as the Job does, over the first `count` nodes. */
  form(masters: number, replicasPerMaster: number, count = masters * (1 + replicasPerMaster)) {
    return this.sb.run("cluster-form.sh", {
      REDIS_NODES: this.nodes
        .slice(0, count)
        .map((n) => `${n.name}:${n.port}`)
        .join(" "),
      REDIS_MASTERS: String(masters),
      REDIS_REPLICAS_PER_MASTER: String(replicasPerMaster),
      REDIS_PASSWORD_FILE: this.sb.passwordFile,
      REDIS_FORM_TIMEOUT_S: "60",
    });
  }

  /** CLUSTER NODES as seen by node i. */
  async view(i: number): Promise<ClusterNodeLine[]> {
    const n = this.nodes[i];
    return parseClusterNodes(await cli(n.ip, n.port, ["CLUSTER", "NODES"]));
  }

  async clusterInfo(i: number): Promise<Record<string, string>> {
    const n = this.nodes[i];
    return parseInfo(await cli(n.ip, n.port, ["CLUSTER", "INFO"]));
  }

  /** Index of the node with this DNS name. */
  indexOf(hostname: string): number {
    return this.nodes.findIndex((n) => n.name === hostname);
  }

  /** ioredis natMap: clients are redirected by DNS name; resolve it like the pods' DNS would. */
  natMap = (key: string): { host: string; port: number } | null => {
    const i = key.lastIndexOf(":");
    const ip = this.sb.lookup(key.slice(0, i));
    return ip ? { host: ip, port: Number(key.slice(i + 1)) } : null;
  };
}

/**
 * The Celery broker on loopback like the prod pods: broker-i (Redis + Sentinel sidecar) is DNS name
 * `broker-i.redis-broker-headless.test` at 127.0.<subnet>.<10+i>; Redis and Sentinel ports shared.
 * With `sentinels: false` a single standalone server, as in dev.
 */
export class BrokerSet {
  readonly nodes: TestNode[] = [];
  readonly sentinels: (ChildProcess | undefined)[] = [];
  readonly confFile: string;
  readonly sentinelTemplate: string;

  constructor(
    readonly sb: Sandbox,
    readonly subnet: number,
    readonly port: number,
    readonly sentinelPort: number,
    brokerConf: string,
    sentinelConf: string,
    readonly size: number,
    readonly useSentinels: boolean,
    readonly masterName = "broker",
  ) {
    this.confFile = sb.path("broker.conf");
    writeFileSync(this.confFile, brokerConf);
    this.sentinelTemplate = sb.path("sentinel.conf");
    writeFileSync(this.sentinelTemplate, sentinelConf);
    for (let i = 0; i < size; i++) {
      const name = `broker-${i}.redis-broker-headless.test`;
      const node = {
        name,
        ip: `127.0.${subnet}.${10 + i}`,
        port,
        dataDir: sb.path(`broker-${i}`, "data"),
      };
      sb.setHost(name, node.ip);
      this.nodes.push(node);
    }
  }

  private sentinelList(): string {
    return this.nodes.map((n) => `${n.name}:${this.sentinelPort}`).join(" ");
  }

  async start(i: number): Promise<void> {
    const n = this.nodes[i];
    const env: Record<string, string> = {
      BROKER_CONF: this.confFile,
      REDIS_DATA_DIR: n.dataDir,
      REDIS_RUNTIME_DIR: this.sb.path(`broker-${i}`, "run"),
      REDIS_PORT: String(n.port),
      REDIS_BIND: n.ip,
      REDIS_BIND_SOURCE_ADDR: n.ip,
      REDIS_PASSWORD_FILE: this.sb.passwordFile,
    };
    if (this.useSentinels) {
      Object.assign(env, {
        BROKER_SENTINELS: this.sentinelList(),
        BROKER_MASTER_NAME: this.masterName,
        BROKER_ANNOUNCE_HOSTNAME: n.name,
        BROKER_INITIAL_PRIMARY: `${this.nodes[0].name}:${this.port}`,
      });
    }
    n.child = this.sb.start("broker-entrypoint.sh", env, `broker-${i}.log`);
    await waitFor(
      `${n.name} to answer PING`,
      async () => (await cli(n.ip, n.port, ["PING"])) === "PONG",
      15000,
    );
  }

  async startSentinel(i: number): Promise<void> {
    const n = this.nodes[i];
    this.sentinels[i] = this.sb.start(
      "sentinel-entrypoint.sh",
      {
        SENTINEL_TEMPLATE: this.sentinelTemplate,
        SENTINEL_RUNTIME_DIR: this.sb.path(`broker-${i}`, "sentinel"),
        SENTINEL_PORT: String(this.sentinelPort),
        SENTINEL_BIND: n.ip,
        REDIS_BIND_SOURCE_ADDR: n.ip,
        SENTINEL_ANNOUNCE_HOSTNAME: n.name,
        REDIS_PASSWORD_FILE: this.sb.passwordFile,
        BROKER_MASTER_NAME: this.masterName,
        BROKER_SENTINELS: this.sentinelList(),
        BROKER_INITIAL_PRIMARY: `${this.nodes[0].name}:${this.port}`,
      },
      `sentinel-${i}.log`,
    );
    await waitFor(
      `sentinel ${i} to answer PING`,
      async () => (await cli(n.ip, this.sentinelPort, ["PING"])) === "PONG",
      15000,
    );
  }

  /** Starts every server, then (with Sentinel) every sentinel, and waits until they see each other. */
  async startAll(): Promise<void> {
    for (let i = 0; i < this.size; i++) await this.start(i);
    if (!this.useSentinels) return;
    for (let i = 0; i < this.size; i++) await this.startSentinel(i);
    for (let i = 0; i < this.size; i++) {
      await waitFor(
        `sentinel ${i} to see ${this.size - 1} replicas and ${this.size - 1} other sentinels`,
        async () => {
          const m = await this.sentinelMaster(i);
          return (
            m["num-slaves"] === String(this.size - 1) &&
            m["num-other-sentinels"] === String(this.size - 1)
          );
        },
        30000,
        200,
      );
    }
  }

  /** SENTINEL MASTER <name> as a record, from sentinel i. */
  async sentinelMaster(i: number): Promise<Record<string, string>> {
    const out = (
      await cli(this.nodes[i].ip, this.sentinelPort, ["SENTINEL", "MASTER", this.masterName])
    ).split("\n");
    const rec: Record<string, string> = {};
    for (let k = 0; k + 1 < out.length; k += 2) rec[out[k]] = out[k + 1];
    return rec;
  }

  /** Index of the server a sentinel currently reports as primary. */
  async primaryIndex(sentinel: number): Promise<number> {
    const [host] = (
      await cli(this.nodes[sentinel].ip, this.sentinelPort, [
        "SENTINEL",
        "GET-MASTER-ADDR-BY-NAME",
        this.masterName,
      ])
    ).split("\n");
    return this.nodes.findIndex((n) => n.name === host);
  }

  async kill(i: number): Promise<void> {
    const c = this.nodes[i].child;
    if (c) await killProcess(c);
  }

  natMap = (key: string): { host: string; port: number } | null => {
    const i = key.lastIndexOf(":");
    const ip = this.sb.lookup(key.slice(0, i));
    return ip ? { host: ip, port: Number(key.slice(i + 1)) } : null;
  };
}
