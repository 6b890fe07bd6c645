// Real PgBouncer (Debian's /usr/sbin/pgbouncer) on 127.0.0.1 for tests and benchmarks, run on
// the ini the component renders with only addresses, ports and paths substituted.
import { ChildProcess, execFile, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import {
  POOLER_AUTH_USER,
  POOLER_STATS_USER,
  PgBouncerIniOptions,
  pgbouncerIni,
  poolerBootstrapCommand,
  poolerBootstrapSql,
  poolerUserlist,
} from "../../components/postgres/pgbouncer-content";
import { PG_BIN, freePort, pgUser, psql, waitFor } from "./postgres";

const execFileP = promisify(execFile);

export const PGBOUNCER_BIN = "/usr/sbin/pgbouncer";

export interface StartPgBouncerOptions {
  /** Pool settings etc.; serverHost/serverPort/database as the component passes them. */
  ini: Omit<PgBouncerIniOptions, "authFile" | "listenAddr" | "listenPort" | "unixSocketDir">;
  /** The `pgbouncer` lookup role's password (as in the Secret). */
  authPassword: string;
  /** The admin console's stats user password. Default a fixed test value. */
  statsPassword?: string;
}

/** A running pgbouncer; stop() ends it and removes its temp dir. */
export interface RunningPgBouncer {
  port: number;
  dir: string;
  iniText: string;
  statsPassword: string;
  authPassword: string;
  process: ChildProcess;
  log(): string;
  /** psql against the pgbouncer admin console (SHOW ...) as the stats user; unaligned rows. */
  admin(command: string): Promise<string>;
  /** SHOW POOLS as objects keyed by column name. */
  pools(): Promise<Record<string, string>[]>;
  stop(): Promise<void>;
}

/**
 * The rendered pgbouncer.ini with only listen address/port and the auth file path substituted,
 * run as OS user postgres (pgbouncer refuses root) in a temp dir.
 */
export async function startPgBouncer(o: StartPgBouncerOptions): Promise<RunningPgBouncer> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pgbouncer-"));
  fs.chownSync(dir, pgUser.uid, pgUser.gid);
  const port = await freePort();
  const statsPassword = o.statsPassword ?? "stats-pass";
  const authFile = path.join(dir, "userlist.txt");
  fs.writeFileSync(authFile, poolerUserlist({ authPassword: o.authPassword, statsPassword }), {
    mode: 0o600,
  });
  fs.chownSync(authFile, pgUser.uid, pgUser.gid);
  const iniText = pgbouncerIni({ ...o.ini, authFile, listenAddr: "127.0.0.1", listenPort: port });
  const iniFile = path.join(dir, "pgbouncer.ini");
  fs.writeFileSync(iniFile, iniText, { mode: 0o644 });
  const logFile = path.join(dir, "pgbouncer.log");
  const log = fs.openSync(logFile, "a");
  const child = spawn(PGBOUNCER_BIN, [iniFile], {
    uid: pgUser.uid,
    gid: pgUser.gid,
    cwd: dir,
    stdio: ["ignore", log, log],
    env: { PATH: "/usr/sbin:/usr/bin:/bin", LANG: "C.UTF-8" },
  });
  fs.closeSync(log);
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  const readLog = () => {
    try {
      return fs.readFileSync(logFile, "utf8");
    } catch {
      return "";
    }
  };
  const admin = async (command: string) => {
    const { stdout } = await execFileP(
      `${PG_BIN}/psql`,
      ["-X", "-At", "-F", "\t", "-h", "127.0.0.1", "-p", String(port)].concat([
        "-U",
        POOLER_STATS_USER,
        "-d",
        "pgbouncer",
        "-c",
        command,
      ]),
      {
        env: { ...process.env, PGPASSWORD: statsPassword, PGCONNECT_TIMEOUT: "3" },
        timeout: 10_000,
      },
    );
    return stdout.trim();
  };
  const running: RunningPgBouncer = {
    port,
    dir,
    iniText,
    statsPassword,
    authPassword: o.authPassword,
    process: child,
    log: readLog,
    admin,
    async pools() {
      const { stdout } = await execFileP(
        `${PG_BIN}/psql`,
        ["-X", "-A", "-F", "\t", "-h", "127.0.0.1", "-p", String(port)].concat([
          "-U",
          POOLER_STATS_USER,
          "-d",
          "pgbouncer",
          "-c",
          "SHOW POOLS",
        ]),
        { env: { ...process.env, PGPASSWORD: statsPassword }, timeout: 10_000 },
      );
      const lines = stdout.trim().split("\n");
      const header = lines[0].split("\t");
      return lines
        .slice(1)
        .filter((l) => l.includes("\t"))
        .map((l) => Object.fromEntries(l.split("\t").map((v, i) => [header[i], v])));
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGINT");
        const t = setTimeout(() => child.kill("SIGKILL"), 5_000);
        await exited;
        clearTimeout(t);
      }
      if (!process.env.KEEP_PG_TEMP) fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await waitFor(`pgbouncer on ${port}`, async () => (await admin("SHOW VERSION")) !== "", 15_000);
  } catch (e) {
    await running.stop();
    throw new Error(`${String(e)}\n${readLog()}`);
  }
  return running;
}

/**
 * Runs poolerBootstrapSql() as `postgres` against a database, the way Patroni's post_bootstrap
 * does: psql reads the lookup role's password from a file.
 */
export async function applyPoolerBootstrap(c: {
  port: number;
  database: string;
  superuserPassword: string;
  authPassword: string;
}): Promise<{ stdout: string; stderr: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pooler-sql-"));
  try {
    const sql = path.join(dir, "pooler.sql");
    const pw = path.join(dir, "pooler-auth-password");
    fs.writeFileSync(sql, poolerBootstrapSql());
    fs.writeFileSync(pw, c.authPassword, { mode: 0o600 });
    // The bootstrap Job's very command, connection from the same PG* variables.
    const [cmd, ...args] = poolerBootstrapCommand(sql, pw);
    return await execFileP(`${PG_BIN}/${cmd}`, args, {
      env: {
        ...process.env,
        PGHOST: "127.0.0.1",
        PGPORT: String(c.port),
        PGUSER: "postgres",
        PGDATABASE: c.database,
        PGPASSWORD: c.superuserPassword,
      },
      timeout: 30_000,
    });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export { POOLER_AUTH_USER };

/** What {@link followService} needs of a PatroniCluster (test/helpers/patroni.ts). */
export interface ServiceEndpointSource {
  endpointPodsAsync(service: string): Promise<string[]>;
  readonly pgPorts: number[];
}

/** A running stand-in for a ClusterIP Service: {@link followService}. */
export interface ServiceForwarder {
  port: number;
  /** The member port new connections currently go to (undefined: no ready endpoint). */
  target(): number | undefined;
  stop(): Promise<void>;
}

/**
 * A TCP stand-in for a Service with one endpoint (`postgresql`, the leader): every `refreshMs`
 * it reads the Service's ready endpoints from the API server, the way kube-proxy follows them,
 * and sends each new connection to that member's PostgreSQL port; with no single endpoint a new
 * connection is closed at once (a ClusterIP without endpoints rejects). Open connections are
 * left alone, as kube-proxy leaves established conntrack entries.
 */
export async function followService(
  c: ServiceEndpointSource,
  service: string,
  refreshMs = 250,
): Promise<ServiceForwarder> {
  const port = await freePort();
  let target: number | undefined;
  let refreshing = true;
  const sockets = new Set<net.Socket>();
  const refresher = (async () => {
    while (refreshing) {
      const pods = await c.endpointPodsAsync(service).catch(() => []);
      const i = pods.length === 1 ? Number(/-(\d+)$/.exec(pods[0])?.[1]) : NaN;
      target = Number.isInteger(i) ? c.pgPorts[i] : undefined;
      await new Promise((r) => setTimeout(r, refreshMs));
    }
  })();
  const server = net.createServer((client) => {
    if (target === undefined) {
      client.destroy();
      return;
    }
    const upstream = net.connect(target, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
    }
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", close);
    upstream.on("error", close);
    client.on("close", close);
    upstream.on("close", close);
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  return {
    port,
    target: () => target,
    async stop() {
      refreshing = false;
      await refresher;
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/**
 * A continuous writer through a PgBouncer, one transaction (one client connection, as a
 * short-lived app request) at a time: an id counts as acknowledged only when psql exits 0 with
 * the id echoed; every failed attempt is recorded with its time, then retried after `retryMs`.
 */
export class PoolerWriteLoad {
  readonly acked: number[] = [];
  readonly ackedAt: number[] = [];
  /** When each acknowledged write started (ms since epoch). */
  readonly startedAt: number[] = [];
  /** When each failed attempt ended (ms since epoch). */
  readonly errorsAt: number[] = [];
  private next = 1;
  private running = false;
  private loop?: Promise<void>;

  constructor(
    private port: number,
    private login: { user: string; password: string; db: string },
    readonly table = "pooler_load",
    private retryMs = 100,
  ) {}

  start(): void {
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        const id = this.next++;
        const started = Date.now();
        let ok = false;
        try {
          const out = await psql(
            this.port,
            `insert into ${this.table} values (${id}) returning id`,
            {
              ...this.login,
              timeoutMs: 5000,
            },
          );
          ok = out === String(id);
        } catch {
          ok = false;
        }
        if (ok) {
          this.acked.push(id);
          this.ackedAt.push(Date.now());
          this.startedAt.push(started);
        } else {
          this.errorsAt.push(Date.now());
          await new Promise((r) => setTimeout(r, this.retryMs));
        }
      }
    })();
  }

  /** Ack time of the first acknowledged write started at or after t (ms); undefined if none yet. */
  firstWriteAfter(t: number): number | undefined {
    const k = this.startedAt.findIndex((a) => a >= t);
    return k < 0 ? undefined : this.ackedAt[k];
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }
}
