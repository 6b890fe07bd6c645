// Real PostgreSQL 15 members on 127.0.0.1 for tests and benchmarks: each member runs the very
// pg-entrypoint.sh the pod runs, as OS user postgres, in a temp dir with a random port.
import { ChildProcess, execFile, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import {
  memberName,
  pgHbaConf,
  postgresqlConf,
  scriptPath,
} from "../../components/postgres/content";

const execFileP = promisify(execFile);

export const PG_BIN = "/usr/lib/postgresql/15/bin";
export const PG_PATH = `${PG_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;
export const pgUser = { uid: uidOf("postgres"), gid: gidOf("postgres") };

function uidOf(name: string): number {
  const line = fs
    .readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((l) => l.startsWith(`${name}:`));
  if (!line) throw new Error(`no user ${name}`);
  return Number(line.split(":")[2]);
}
function gidOf(name: string): number {
  const line = fs
    .readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((l) => l.startsWith(`${name}:`));
  return Number(line!.split(":")[3]);
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Temp dir owned by postgres (PostgreSQL refuses to run as root). */
export function pgTempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chownSync(dir, pgUser.uid, pgUser.gid);
  return dir;
}

export function writePgFile(file: string, content: string, mode = 0o600): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, content, { mode });
  fs.chownSync(file, pgUser.uid, pgUser.gid);
}

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
  intervalMs = 250,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      lastErr = e;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ""}`);
}

/** Runs a script as OS user postgres with the given environment; resolves with its output. */
export async function runAsPostgres(
  script: string,
  args: string[],
  env: Record<string, string>,
  timeoutMs = 300_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn("bash", [script, ...args], {
      env: { PATH: PG_PATH, HOME: os.tmpdir(), LANG: "C.UTF-8", ...env },
      uid: pgUser.uid,
      gid: pgUser.gid,
      stdio: ["ignore", "pipe", "pipe"],
      timeout: timeoutMs,
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

export interface Passwords {
  superuser: string;
  replication: string;
  app: string;
  monitoring: string;
}

export interface ClusterOptions {
  members: number;
  synchronous?: boolean;
  primary?: number;
  maxSlotWalKeepSize?: string;
  walKeepSize?: string;
  /** Entrypoint PG_REJOIN_AFTER seconds. Default 10. */
  rejoinAfter?: number;
  /** Lines appended to every member's postgresql.conf (e.g. archiving parameters). */
  extraConf?: string;
  /** Extra environment of every member's entrypoint (and so of PostgreSQL and archive_command). */
  env?: Record<string, string>;
}

/** A cluster of entrypoint-managed members sharing one secrets dir and one "ConfigMap" file. */
export class PgCluster {
  readonly root: string;
  readonly ports: number[];
  readonly passwords: Passwords = {
    superuser: "su-pass:with\\odd'chars",
    replication: "repl-pass",
    app: "app-pass",
    monitoring: "mon-pass",
  };
  private procs: (ChildProcess | undefined)[] = [];
  private exits: (Promise<number> | undefined)[] = [];

  private rejoinAfter = 10;
  private extraEnv: Record<string, string> = {};

  private constructor(root: string, ports: number[]) {
    this.root = root;
    this.ports = ports;
  }

  static async create(o: ClusterOptions): Promise<PgCluster> {
    const root = pgTempDir("pgcluster-");
    const ports: number[] = [];
    for (let i = 0; i < o.members; i++) ports.push(await freePort());
    const c = new PgCluster(root, ports);
    c.rejoinAfter = o.rejoinAfter ?? 10;
    c.extraEnv = o.env ?? {};
    const names = ports.map((_, i) => memberName("postgresql", i));
    const secrets = path.join(root, "secrets");
    writePgFile(path.join(secrets, "superuser"), c.passwords.superuser);
    writePgFile(path.join(secrets, "replication"), c.passwords.replication);
    writePgFile(path.join(secrets, "app"), c.passwords.app);
    writePgFile(path.join(secrets, "monitoring"), c.passwords.monitoring);
    fs.chownSync(secrets, pgUser.uid, pgUser.gid);
    writePgFile(path.join(root, "etc/pg_hba.conf"), pgHbaConf({ clientCidrs: ["127.0.0.1/32"] }));
    for (let i = 0; i < o.members; i++) {
      fs.mkdirSync(path.join(root, `m${i}/run`), { recursive: true });
      fs.chownSync(path.join(root, `m${i}`), pgUser.uid, pgUser.gid);
      fs.chownSync(path.join(root, `m${i}/run`), pgUser.uid, pgUser.gid);
      writePgFile(
        path.join(root, `etc/postgresql-${i}.conf`),
        postgresqlConf({
          memoryBytes: 256 * 1024 * 1024,
          members: names,
          synchronous: o.synchronous ?? false,
          port: ports[i],
          listenAddresses: "127.0.0.1",
          socketDirectory: path.join(root, `m${i}/run`),
          hbaFile: path.join(root, "etc/pg_hba.conf"),
          maxConnections: 50,
          maxSlotWalKeepSize: o.maxSlotWalKeepSize,
          walKeepSize: o.walKeepSize,
        }) + (o.extraConf ? `\n${o.extraConf}\n` : ""),
        0o644,
      );
    }
    fs.chownSync(path.join(root, "etc"), pgUser.uid, pgUser.gid);
    c.setPrimary(o.primary ?? 0);
    return c;
  }

  /** What `pulumi config set postgres.primary N` + the ConfigMap update do in the cluster. */
  setPrimary(ordinal: number): void {
    writePgFile(path.join(this.root, "etc/primary"), `${ordinal}\n`, 0o644);
  }

  memberEnv(i: number): Record<string, string> {
    const r = this.root;
    return {
      PGDATA: path.join(r, `m${i}/data/pgdata`),
      PG_STATE_DIR: path.join(r, `m${i}`),
      PG_CONFIG_FILE: path.join(r, `etc/postgresql-${i}.conf`),
      PG_PEERS: this.ports.map((p) => `127.0.0.1:${p}`).join(" "),
      PG_ORDINAL: String(i),
      PG_PRIMARY_FILE: path.join(r, "etc/primary"),
      PG_SOCKET_DIR: path.join(r, `m${i}/run`),
      PG_SUPERUSER_PASSWORD_FILE: path.join(r, "secrets/superuser"),
      PG_REPLICATION_PASSWORD_FILE: path.join(r, "secrets/replication"),
      PG_APP_PASSWORD_FILE: path.join(r, "secrets/app"),
      PG_MONITORING_PASSWORD_FILE: path.join(r, "secrets/monitoring"),
      PG_LOOP_INTERVAL: "0.5",
      PG_REJOIN_AFTER: String(this.rejoinAfter),
      ...this.extraEnv,
    };
  }

  logFile(i: number): string {
    return path.join(this.root, `m${i}/entrypoint.log`);
  }

  /** Starts member i's entrypoint (like the kubelet starting the container). */
  start(i: number): void {
    const log = fs.openSync(this.logFile(i), "a");
    fs.fchownSync(log, pgUser.uid, pgUser.gid);
    const child = spawn("bash", [scriptPath("pg-entrypoint.sh")], {
      env: { PATH: PG_PATH, HOME: this.root, LANG: "C.UTF-8", ...this.memberEnv(i) },
      uid: pgUser.uid,
      gid: pgUser.gid,
      stdio: ["ignore", log, log],
      detached: true,
    });
    fs.closeSync(log);
    this.procs[i] = child;
    this.exits[i] = new Promise((resolve) => child.on("exit", (code) => resolve(code ?? -1)));
  }

  postmasterPid(i: number): number | undefined {
    try {
      const pid = fs.readFileSync(path.join(this.root, `m${i}/data/pgdata/postmaster.pid`), "utf8");
      return Number(pid.split("\n")[0]);
    } catch {
      return undefined;
    }
  }

  /** Hard crash of the whole member (node loss): entrypoint and postmaster SIGKILLed, no restart. */
  async crash(i: number): Promise<void> {
    const pm = this.postmasterPid(i);
    const child = this.procs[i];
    if (child?.pid) process.kill(child.pid, "SIGKILL");
    if (pm) process.kill(pm, "SIGKILL");
    await this.exits[i];
    this.procs[i] = undefined;
    // Backends notice postmaster death on their own; wait until the port is free.
    await waitFor(`member ${i} port to close`, async () => !(await this.accepting(i)), 30_000);
  }

  /** Graceful stop (pod deletion): SIGTERM to the entrypoint. */
  async stop(i: number): Promise<void> {
    const child = this.procs[i];
    if (!child?.pid) return;
    process.kill(child.pid, "SIGTERM");
    const t = setTimeout(() => child.pid && process.kill(-child.pid, "SIGKILL"), 60_000);
    await this.exits[i];
    clearTimeout(t);
    this.procs[i] = undefined;
  }

  running(i: number): boolean {
    return this.procs[i] !== undefined && this.procs[i]!.exitCode === null;
  }

  async accepting(i: number): Promise<boolean> {
    try {
      await execFileP(`${PG_BIN}/pg_isready`, [
        "-q",
        "-h",
        "127.0.0.1",
        "-p",
        String(this.ports[i]),
      ]);
      return true;
    } catch {
      return false;
    }
  }

  /** psql as superuser over TCP (scram); returns unaligned tuples-only output. */
  async sql(i: number, query: string, db = "postgres", user = "postgres"): Promise<string> {
    const password =
      user === "postgres"
        ? this.passwords.superuser
        : user === "stock_analysis"
          ? this.passwords.app
          : this.passwords.replication;
    const { stdout } = await execFileP(
      `${PG_BIN}/psql`,
      [
        "-X",
        "-q",
        "-At",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        "127.0.0.1",
        "-p",
        String(this.ports[i]),
      ].concat(["-U", user, "-d", db, "-c", query]),
      { env: { ...process.env, PGPASSWORD: password, PGCONNECT_TIMEOUT: "3" }, timeout: 30_000 },
    );
    return stdout.trim();
  }

  async role(i: number): Promise<"primary" | "standby" | "down"> {
    try {
      const r = await this.sql(i, "select pg_is_in_recovery()");
      return r === "f" ? "primary" : "standby";
    } catch {
      return "down";
    }
  }

  async waitRole(i: number, role: "primary" | "standby", timeoutMs = 90_000): Promise<void> {
    await waitFor(
      `member ${i} to be ${role}`,
      async () => (await this.role(i)) === role,
      timeoutMs,
      300,
    );
  }

  /** Primary i finished first-start setup: the app role logs in to its database. */
  async waitAppReady(i: number, timeoutMs = 90_000): Promise<void> {
    await waitFor(
      `app login on member ${i}`,
      async () => (await this.sql(i, "select 1", "stock_analysis", "stock_analysis")) === "1",
      timeoutMs,
      300,
    );
  }

  /** Member i streams from the primary (pg_stat_wal_receiver). */
  async waitStreaming(i: number, timeoutMs = 90_000): Promise<void> {
    await waitFor(
      `member ${i} to stream`,
      async () => (await this.sql(i, "select status from pg_stat_wal_receiver")) === "streaming",
      timeoutMs,
      300,
    );
  }

  logs(i: number): string {
    try {
      return fs.readFileSync(this.logFile(i), "utf8");
    } catch {
      return "";
    }
  }

  async destroy(): Promise<void> {
    for (let i = 0; i < this.ports.length; i++) {
      try {
        await this.stop(i);
      } catch {
        /* already gone */
      }
      const pm = this.postmasterPid(i);
      if (pm) {
        try {
          process.kill(pm, "SIGKILL");
        } catch {
          /* not running */
        }
      }
    }
    if (!process.env.KEEP_PG_TEMP) fs.rmSync(this.root, { recursive: true, force: true });
  }
}
