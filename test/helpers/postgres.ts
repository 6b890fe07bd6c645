// Real PostgreSQL 15 servers on 127.0.0.1 for tests and benchmarks, as OS user postgres, in a temp
// dir with a random port. A server is bootstrapped the way Patroni bootstraps a member: initdb
// with the options of patroni.yml, the rendered parameters and pg_hba rows, and the very
// pg-roles.sh the pod runs as post_bootstrap. Multi-member HA runs under real Patroni
// (test/drills/).
import { ChildProcess, execFile, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { pgHbaEntries, postgresqlParameters, scriptPath } from "../../components/postgres/content";
import { hbaLine } from "../../components/postgres/patroni";

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

export interface PsqlOptions {
  user?: string;
  db?: string;
  password?: string;
  /** Kill psql (SIGKILL) after this many ms. Default 30 000. */
  timeoutMs?: number;
  /** libpq target_session_attrs (with a multi-host port list: e.g. `read-write`). */
  targetSessionAttrs?: string;
}

/**
 * psql over TCP on 127.0.0.1 (scram); returns unaligned tuples-only output. `port` may list
 * several ports (libpq multi-host: each is tried in turn, see `targetSessionAttrs`).
 */
export async function psql(
  port: number | number[],
  query: string,
  o: PsqlOptions = {},
): Promise<string> {
  const ports = Array.isArray(port) ? port : [port];
  const conn = [
    `host=${ports.map(() => "127.0.0.1").join(",")}`,
    `port=${ports.join(",")}`,
    `user=${o.user ?? "postgres"}`,
    `dbname=${o.db ?? "postgres"}`,
    "connect_timeout=3",
    ...(o.targetSessionAttrs ? [`target_session_attrs=${o.targetSessionAttrs}`] : []),
  ].join(" ");
  const { stdout } = await execFileP(
    `${PG_BIN}/psql`,
    ["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", conn, "-c", query],
    {
      env: { ...process.env, PGPASSWORD: o.password ?? "" },
      timeout: o.timeoutMs ?? 30_000,
      killSignal: "SIGKILL",
    },
  );
  return stdout.trim();
}

/** pg_isready on 127.0.0.1:port. */
export async function pgIsReady(port: number): Promise<boolean> {
  try {
    await execFileP(`${PG_BIN}/pg_isready`, ["-q", "-h", "127.0.0.1", "-p", String(port)]);
    return true;
  } catch {
    return false;
  }
}

/** Whether a process with this pid exists. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Signals pid (a negative pid: its process group); no error when it is gone. */
export function signalPid(pid: number | undefined, sig: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
}

/** The postmaster pid from PGDATA/postmaster.pid; undefined without one. */
export function postmasterPidOf(pgdata: string): number | undefined {
  try {
    return Number(fs.readFileSync(path.join(pgdata, "postmaster.pid"), "utf8").split("\n")[0]);
  } catch {
    return undefined;
  }
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
  /** Servers to run (independent, each bootstrapped on its own). Default 1. */
  members?: number;
  maxSlotWalKeepSize?: string;
  walKeepSize?: string;
  /** Lines appended to every member's postgresql.conf (e.g. archiving parameters). */
  extraConf?: string;
  /** Extra environment of every server (and so of PostgreSQL and archive_command). */
  env?: Record<string, string>;
}

/** postgresql.conf of a test server: the rendered parameters plus what Patroni would set. */
export function testServerConf(o: {
  port: number;
  socketDir: string;
  hbaFile: string;
  maxSlotWalKeepSize?: string;
  walKeepSize?: string;
}): string {
  const params: Record<string, string | number> = {
    ...postgresqlParameters({
      memoryBytes: 256 * 1024 * 1024,
      members: 1,
      maxConnections: 50,
      maxSlotWalKeepSize: o.maxSlotWalKeepSize,
      walKeepSize: o.walKeepSize,
    }),
    listen_addresses: "127.0.0.1",
    port: o.port,
    unix_socket_directories: o.socketDir,
    hba_file: o.hbaFile,
  };
  const quote = (v: string | number) =>
    typeof v === "number" ? String(v) : `'${v.replace(/'/g, "''")}'`;
  return Object.entries(params)
    .map(([k, v]) => `${k} = ${quote(v)}`)
    .join("\n")
    .concat("\n");
}

/** Servers sharing one secrets dir, each bootstrapped like a Patroni leader. */
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

  private extraEnv: Record<string, string> = {};

  private constructor(root: string, ports: number[]) {
    this.root = root;
    this.ports = ports;
  }

  static async create(o: ClusterOptions = {}): Promise<PgCluster> {
    const root = pgTempDir("pgcluster-");
    const ports: number[] = [];
    for (let i = 0; i < (o.members ?? 1); i++) ports.push(await freePort());
    const c = new PgCluster(root, ports);
    c.extraEnv = o.env ?? {};
    const secrets = path.join(root, "secrets");
    writePgFile(path.join(secrets, "superuser"), c.passwords.superuser);
    writePgFile(path.join(secrets, "replication"), c.passwords.replication);
    writePgFile(path.join(secrets, "app"), c.passwords.app);
    writePgFile(path.join(secrets, "monitoring"), c.passwords.monitoring);
    fs.chownSync(secrets, pgUser.uid, pgUser.gid);
    const hba =
      pgHbaEntries({ clientCidrs: ["127.0.0.1/32"] })
        .map(hbaLine)
        .join("\n") + "\n";
    writePgFile(path.join(root, "etc/pg_hba.conf"), hba);
    for (let i = 0; i < ports.length; i++) {
      fs.mkdirSync(path.join(root, `m${i}/run`), { recursive: true });
      fs.chownSync(path.join(root, `m${i}`), pgUser.uid, pgUser.gid);
      fs.chownSync(path.join(root, `m${i}/run`), pgUser.uid, pgUser.gid);
      writePgFile(
        path.join(root, `etc/postgresql-${i}.conf`),
        testServerConf({
          port: ports[i],
          socketDir: path.join(root, `m${i}/run`),
          hbaFile: path.join(root, "etc/pg_hba.conf"),
          maxSlotWalKeepSize: o.maxSlotWalKeepSize,
          walKeepSize: o.walKeepSize,
        }) + (o.extraConf ? `\n${o.extraConf}\n` : ""),
        0o644,
      );
    }
    fs.chownSync(path.join(root, "etc"), pgUser.uid, pgUser.gid);
    return c;
  }

  memberEnv(i: number): Record<string, string> {
    const r = this.root;
    return {
      PGDATA: path.join(r, `m${i}/data/pgdata`),
      PGPORT: String(this.ports[i]),
      PG_SOCKET_DIR: path.join(r, `m${i}/run`),
      PG_SUPERUSER_PASSWORD_FILE: path.join(r, "secrets/superuser"),
      PG_REPLICATION_PASSWORD_FILE: path.join(r, "secrets/replication"),
      PG_APP_PASSWORD_FILE: path.join(r, "secrets/app"),
      PG_MONITORING_PASSWORD_FILE: path.join(r, "secrets/monitoring"),
      ...this.extraEnv,
    };
  }

  logFile(i: number): string {
    return path.join(this.root, `m${i}/postgres.log`);
  }

  /**
   * Starts server i (like Patroni starting PostgreSQL); on the first start it runs initdb with
   * patroni.yml's options and, once up, pg-roles.sh as post_bootstrap. Resolves when it accepts
   * connections (after bootstrap, when the app role can log in).
   */
  async start(i: number): Promise<void> {
    const member = this.memberEnv(i);
    const env = { PATH: PG_PATH, HOME: this.root, LANG: "C.UTF-8", ...member };
    const pgdata = member.PGDATA;
    const fresh = !fs.existsSync(path.join(pgdata, "PG_VERSION"));
    if (fresh) {
      fs.mkdirSync(path.dirname(pgdata), { recursive: true });
      fs.chownSync(path.dirname(pgdata), pgUser.uid, pgUser.gid);
      const init = await runAsPostgres(
        "-c",
        [
          `initdb -D "$PGDATA" -U postgres --encoding=UTF8 --locale=C.UTF-8 --data-checksums --auth-local=peer --auth-host=scram-sha-256 >/dev/null`,
        ],
        env,
      );
      if (init.code !== 0) throw new Error(`initdb failed: ${init.stderr}`);
    }
    const log = fs.openSync(this.logFile(i), "a");
    fs.fchownSync(log, pgUser.uid, pgUser.gid);
    const child = spawn(
      `${PG_BIN}/postgres`,
      ["-D", pgdata, "-c", `config_file=${path.join(this.root, `etc/postgresql-${i}.conf`)}`],
      { env, uid: pgUser.uid, gid: pgUser.gid, stdio: ["ignore", log, log], detached: true },
    );
    fs.closeSync(log);
    this.procs[i] = child;
    this.exits[i] = new Promise((resolve) => child.on("exit", (code) => resolve(code ?? -1)));
    await waitFor(`server ${i} to accept connections`, () => this.accepting(i), 60_000, 200);
    if (fresh) {
      const url = `postgresql://postgres@:${this.ports[i]}/postgres?host=${member.PG_SOCKET_DIR}`;
      const r = await runAsPostgres(scriptPath("pg-roles.sh"), [url], env);
      if (r.code !== 0) throw new Error(`pg-roles.sh failed: ${r.stderr}`);
    }
  }

  postmasterPid(i: number): number | undefined {
    return postmasterPidOf(path.join(this.root, `m${i}/data/pgdata`));
  }

  /** Hard crash (node loss): the postmaster SIGKILLed, no restart. */
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

  /** Graceful stop (pod deletion): SIGTERM to the postmaster (smart shutdown). */
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
    return pgIsReady(this.ports[i]);
  }

  /** psql as superuser over TCP (scram); returns unaligned tuples-only output. */
  async sql(i: number, query: string, db = "postgres", user = "postgres"): Promise<string> {
    const password =
      user === "postgres"
        ? this.passwords.superuser
        : user === "stock_analysis"
          ? this.passwords.app
          : this.passwords.replication;
    return psql(this.ports[i], query, { user, db, password });
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
