// Real Patroni 3.0 members (PostgreSQL 15 on 127.0.0.1, as OS user postgres) configured by
// components/postgres/patroni.ts, using the Kubernetes DCS against the simulated cluster's real
// API server, authenticated as a ServiceAccount bound to a Role of exactly patroniRbacRules().
// Each member reaches the API server through its own TCP proxy, so a test can cut one member off
// the DCS; a prober plays the kubelet's readiness probe on the pod objects (kwok only marks pods
// ready once), so the endpoints controller of the sim's kube-controller-manager keeps a Service's
// endpoints as on a real cluster. Shared by test/drills/* and scripts/bench/pg-failover.
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { parse, stringify } from "yaml";
import {
  DEFAULT_TIMING,
  PASSWORD_ENV,
  PatroniTiming,
  checkTiming,
  patroniConfig,
  patroniRbacRules,
} from "../../components/postgres/patroni";
import {
  SimCluster,
  kubectl,
  kubectlAsync,
  kubectlOk,
  startSim,
  stopSim,
} from "../../scripts/lib/sim-cluster";
import {
  PG_BIN,
  PG_PATH,
  freePort,
  pgTempDir,
  pgUser,
  pidAlive,
  postmasterPidOf,
  psql,
  signalPid,
  waitFor,
  writePgFile,
} from "./postgres";

export const PATRONI = "/usr/bin/patroni";
export const KUBE_CONTEXT = "patroni";

export interface PatroniClusterOptions {
  members?: number;
  /** Namespace of the pods and DCS ConfigMaps. Default `pg-ha`. */
  namespace?: string;
  synchronous?: boolean;
  /** Default: PATRONI_TIMING from the environment (`ttl/loop_wait/retry_timeout`), else DEFAULT_TIMING. */
  timing?: PatroniTiming;
  /** Emulate the kubelet's readiness probe (GET this REST path every readinessPeriodMs). Default `/readiness`. */
  readinessPath?: string;
  /** The emulated readiness probe's period in ms. Default 1000. */
  readinessPeriodMs?: number;
}

export interface MemberStatus {
  state?: string;
  role?: string;
  sync_standby?: boolean;
  xlog?: { location?: number; replayed_location?: number };
  patroni?: { version?: string; scope?: string };
}

export const isLeaderStatus = (s?: MemberStatus): boolean =>
  s?.state === "running" && (s.role === "master" || s.role === "primary");

/**
 * PATRONI_TIMING=`ttl/loop_wait/retry_timeout` (e.g. `8/1/3`) runs the drills at another timing
 * than DEFAULT_TIMING, e.g. a stack's `postgres.failover`; checked by Patroni's rule.
 */
export function timingFromEnv(env = process.env.PATRONI_TIMING): PatroniTiming | undefined {
  if (!env) return undefined;
  const m = /^(\d+)\/(\d+)\/(\d+)$/.exec(env.trim());
  if (!m) throw new Error(`PATRONI_TIMING must be ttl/loop_wait/retry_timeout, got ${env}`);
  const t = { ttl: Number(m[1]), loopWait: Number(m[2]), retryTimeout: Number(m[3]) };
  checkTiming(t);
  return t;
}

/** A TCP proxy in this process between one member and the API server; `cut` drops its traffic. */
class DcsProxy {
  private server?: net.Server;
  private sockets = new Set<net.Socket>();
  /** Connections are accepted and then held silently: a partition, not a refusal. */
  blackhole = false;
  port = 0;

  constructor(private upstream: { host: string; port: number }) {}

  async start(port?: number): Promise<void> {
    this.server = net.createServer((client) => {
      this.sockets.add(client);
      client.on("close", () => this.sockets.delete(client));
      client.on("error", () => client.destroy());
      if (this.blackhole) return; // read nothing, answer nothing
      const up = net.connect(this.upstream.port, this.upstream.host);
      this.sockets.add(up);
      up.on("close", () => this.sockets.delete(up));
      up.on("error", () => client.destroy());
      client.on("close", () => up.destroy());
      up.on("close", () => client.destroy());
      client.pipe(up);
      up.pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      this.server!.once("error", reject);
      this.server!.listen(port ?? 0, "127.0.0.1", () => resolve());
    });
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  /** Cut: every open connection is dropped and new ones hang. */
  cut(): void {
    this.blackhole = true;
    for (const s of this.sockets) s.destroy();
  }

  heal(): void {
    this.blackhole = false;
    for (const s of this.sockets) s.destroy();
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

interface ServiceEndpoints {
  subsets?: { addresses?: { targetRef?: { name: string } }[] }[];
}

export class PatroniCluster {
  readonly members: number;
  readonly namespace: string;
  readonly scope = "pg";
  readonly labels = { app: "postgresql" };
  readonly timing: PatroniTiming;
  readonly passwords = {
    superuser: "su-secret-'odd",
    replication: "repl-secret",
    restapi: "rest-secret:odd",
  };
  readonly restUser = "patroni";
  readonly pgPorts: number[] = [];
  readonly restPorts: number[] = [];
  sim!: SimCluster;
  root = "";
  failed = false;
  private procs: (ChildProcess | undefined)[] = [];
  private proxies: DcsProxy[] = [];
  private prober?: NodeJS.Timeout;
  private probing = false;
  private readonly readinessPath: string;
  private readonly readinessPeriodMs: number;
  private readonly synchronous: boolean;

  private constructor(o: PatroniClusterOptions) {
    this.members = o.members ?? 3;
    this.namespace = o.namespace ?? "pg-ha";
    this.timing = o.timing ?? timingFromEnv() ?? DEFAULT_TIMING;
    this.synchronous = o.synchronous ?? true;
    this.readinessPath = o.readinessPath ?? "/readiness";
    this.readinessPeriodMs = o.readinessPeriodMs ?? 1000;
  }

  /** Starts the sim, the pods, the members' Patroni, the prober, and a Service per role. */
  static async start(o: PatroniClusterOptions = {}): Promise<PatroniCluster> {
    if (!fs.existsSync(PATRONI))
      throw new Error(
        `${PATRONI} is missing: run \`bash scripts/setup.sh --tools\` (installs patroni)`,
      );
    const c = new PatroniCluster(o);
    try {
      await c.init();
    } catch (e) {
      c.failed = true;
      await c.stop();
      throw e;
    }
    return c;
  }

  podName(i: number): string {
    return `postgresql-${i}`;
  }
  memberDir(i: number): string {
    return path.join(this.root, `m${i}`);
  }
  dataDir(i: number): string {
    return path.join(this.memberDir(i), "data");
  }
  logFile(i: number): string {
    return path.join(this.memberDir(i), "patroni.log");
  }
  configFile(i: number): string {
    return path.join(this.memberDir(i), "patroni.yml");
  }
  restUrl(i: number): string {
    return `http://127.0.0.1:${this.restPorts[i]}`;
  }
  get serviceAccount(): string {
    return `system:serviceaccount:${this.namespace}:patroni`;
  }

  private async init(): Promise<void> {
    this.root = pgTempDir("patroni-k8s-");
    fs.mkdirSync(path.join(this.root, "run"));
    fs.chownSync(path.join(this.root, "run"), pgUser.uid, pgUser.gid);
    for (let i = 0; i < this.members; i++) {
      this.pgPorts.push(await freePort());
      this.restPorts.push(await freePort());
      fs.mkdirSync(this.memberDir(i));
      fs.chownSync(this.memberDir(i), pgUser.uid, pgUser.gid);
    }
    this.sim = startSim({ quiet: true });
    kubectlOk(this.sim, ["create", "namespace", this.namespace]);
    const token = this.serviceAccountToken();
    const server = new URL(this.sim.server);
    for (let i = 0; i < this.members; i++) {
      const proxy = new DcsProxy({ host: server.hostname, port: Number(server.port) });
      await proxy.start();
      this.proxies.push(proxy);
      this.writeKubeconfig(i, token, `https://127.0.0.1:${proxy.port}`);
    }
    const pods = Array.from({ length: this.members }, (_, i) => ({
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name: this.podName(i),
        namespace: this.namespace,
        labels: { ...this.labels, "cluster-name": this.scope },
      },
      spec: { containers: [{ name: "postgres", image: "postgres:15" }] },
    }));
    // What the component renders: `postgresql` selects the leader, `postgresql-read` replicas.
    const service = (name: string, role: string) => ({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name, namespace: this.namespace },
      spec: {
        selector: { ...this.labels, "cluster-name": this.scope, role },
        ports: [{ name: "postgresql", port: 5432 }],
      },
    });
    kubectlOk(
      this.sim,
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "v1",
        kind: "List",
        items: [...pods, service("postgresql", "master"), service("postgresql-read", "replica")],
      }),
    );
    for (let i = 0; i < this.members; i++) {
      this.writeConfig(i);
      this.startMember(i);
    }
    this.startProber();
  }

  /** A ServiceAccount bound to a Role with exactly patroniRbacRules(); returns its token. */
  private serviceAccountToken(): string {
    const ns = this.namespace;
    const rbac = "rbac.authorization.k8s.io/v1";
    kubectlOk(
      this.sim,
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "v1",
        kind: "List",
        items: [
          {
            apiVersion: "v1",
            kind: "ServiceAccount",
            metadata: { name: "patroni", namespace: ns },
          },
          {
            apiVersion: rbac,
            kind: "Role",
            metadata: { name: "patroni", namespace: ns },
            rules: patroniRbacRules(),
          },
          {
            apiVersion: rbac,
            kind: "RoleBinding",
            metadata: { name: "patroni", namespace: ns },
            roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "patroni" },
            subjects: [{ kind: "ServiceAccount", name: "patroni", namespace: ns }],
          },
        ],
      }),
    );
    return kubectlOk(this.sim, ["create", "token", "patroni", "-n", ns, "--duration=2h"]).trim();
  }

  /** Member i's kubeconfig (readable by postgres): the ServiceAccount token, via its proxy. */
  private writeKubeconfig(i: number, token: string, server: string): void {
    const admin = parse(fs.readFileSync(this.sim.kubeconfig, "utf8")) as {
      clusters: { name: string; cluster: Record<string, string> }[];
    };
    const cluster: Record<string, string> = { ...admin.clusters[0].cluster, server };
    if (cluster["certificate-authority"]) {
      cluster["certificate-authority-data"] = fs
        .readFileSync(cluster["certificate-authority"])
        .toString("base64");
      delete cluster["certificate-authority"];
    }
    const kc = {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "sim", cluster }],
      users: [{ name: "patroni", user: { token } }],
      contexts: [
        {
          name: KUBE_CONTEXT,
          context: { cluster: "sim", user: "patroni", namespace: this.namespace },
        },
      ],
      "current-context": KUBE_CONTEXT,
    };
    writePgFile(path.join(this.memberDir(i), "kubeconfig"), stringify(kc));
  }

  private writeConfig(i: number): void {
    writePgFile(
      this.configFile(i),
      patroniConfig({
        scope: this.scope,
        namespace: this.namespace,
        name: this.podName(i),
        podIp: "127.0.0.1",
        listenAddress: "127.0.0.1",
        pgPort: this.pgPorts[i],
        restApiPort: this.restPorts[i],
        dataDir: this.dataDir(i),
        binDir: PG_BIN,
        pgpass: path.join(this.memberDir(i), "pgpass"),
        superuser: "postgres",
        replicationUser: "replicator",
        labels: this.labels,
        kubeContext: KUBE_CONTEXT,
        synchronous: this.synchronous,
        timing: this.timing,
        parameters: {
          max_connections: 50,
          shared_buffers: "32MB",
          unix_socket_directories: path.join(this.root, "run"),
        },
        pgHba: [
          { type: "local", database: "all", user: "all", method: "peer" },
          {
            type: "host",
            database: "replication",
            user: "replicator",
            address: "127.0.0.1/32",
            method: "scram-sha-256",
          },
          {
            type: "host",
            database: "all",
            user: "all",
            address: "127.0.0.1/32",
            method: "scram-sha-256",
          },
        ],
      }),
    );
  }

  /** The environment the container gives Patroni: passwords from the Secret. */
  memberEnv(i: number): Record<string, string> {
    return {
      PATH: PG_PATH,
      HOME: this.memberDir(i),
      LANG: "C.UTF-8",
      KUBECONFIG: path.join(this.memberDir(i), "kubeconfig"),
      [PASSWORD_ENV.superuser]: this.passwords.superuser,
      [PASSWORD_ENV.replication]: this.passwords.replication,
      [PASSWORD_ENV.restApiUsername]: this.restUser,
      [PASSWORD_ENV.restApiPassword]: this.passwords.restapi,
    };
  }

  /** Starts member i's Patroni (like the container starting). */
  startMember(i: number): void {
    const log = fs.openSync(this.logFile(i), "a");
    fs.fchownSync(log, pgUser.uid, pgUser.gid);
    this.procs[i] = spawn(PATRONI, [this.configFile(i)], {
      env: this.memberEnv(i),
      uid: pgUser.uid,
      gid: pgUser.gid,
      stdio: ["ignore", log, log],
      detached: true,
    });
    fs.closeSync(log);
  }

  patroniPid(i: number): number | undefined {
    return this.procs[i]?.pid;
  }
  running(i: number): boolean {
    const p = this.procs[i];
    return p?.pid !== undefined && p.exitCode === null && p.signalCode === null;
  }
  postmasterPid(i: number): number | undefined {
    return postmasterPidOf(this.dataDir(i));
  }

  /** SIGKILL of member i's Patroni agent only (its PostgreSQL keeps running). */
  killPatroni(i: number, sig: NodeJS.Signals = "SIGKILL"): void {
    signalPid(this.procs[i]?.pid, sig);
    if (sig === "SIGKILL") this.procs[i] = undefined;
  }

  /** SIGKILL of member i's postmaster only (Patroni stays). */
  killPostmaster(i: number): number | undefined {
    const pm = this.postmasterPid(i);
    signalPid(pm, "SIGKILL");
    return pm;
  }

  /** Waits for member i's Patroni process to exit (after a SIGTERM). */
  async waitExited(i: number, timeoutMs: number): Promise<void> {
    const pid = this.procs[i]?.pid;
    if (pid)
      await waitFor(`member ${i}'s Patroni to exit`, async () => !this.running(i), timeoutMs);
    this.procs[i] = undefined;
  }

  /** Cuts member i off the API server (connections dropped, new ones hang). */
  cutDcs(i: number): void {
    this.proxies[i].cut();
  }
  healDcs(i: number): void {
    this.proxies[i].heal();
  }

  /** GET /patroni of member i's REST API; undefined while it does not answer. */
  async status(i: number): Promise<MemberStatus | undefined> {
    try {
      const r = await fetch(`${this.restUrl(i)}/patroni`, { signal: AbortSignal.timeout(2000) });
      return (await r.json()) as MemberStatus;
    } catch {
      return undefined;
    }
  }

  /** HTTP status of GET `path` on member i (0 when it does not answer). */
  async restCode(i: number, p: string): Promise<number> {
    try {
      const r = await fetch(`${this.restUrl(i)}${p}`, { signal: AbortSignal.timeout(2000) });
      await r.arrayBuffer();
      return r.status;
    } catch {
      return 0;
    }
  }

  async leaders(): Promise<number[]> {
    const out = [];
    for (let i = 0; i < this.members; i++) if (isLeaderStatus(await this.status(i))) out.push(i);
    return out;
  }

  async waitLeader(candidates: number[], timeoutMs: number, intervalMs = 250): Promise<number> {
    return waitFor(
      "a Patroni leader",
      async () => {
        for (const i of candidates) if (isLeaderStatus(await this.status(i))) return i;
        return undefined;
      },
      timeoutMs,
      intervalMs,
    );
  }

  async waitReplica(i: number, timeoutMs: number): Promise<void> {
    await waitFor(
      `member ${i} running as a replica`,
      async () => {
        const s = await this.status(i);
        return s?.state === "running" && s.role === "replica";
      },
      timeoutMs,
      500,
    );
  }

  /**
   * The leader has a synchronous standby in PostgreSQL (synchronous_standby_names) and in the
   * DCS sync key (a replica answers /sync): only then may Patroni promote that replica when the
   * leader dies. Right after a failover there is a window (up to a loop_wait) without one.
   */
  async hasSyncStandby(leader: number): Promise<boolean> {
    if ((await this.sql(leader, "show synchronous_standby_names")) === "") return false;
    for (let i = 0; i < this.members; i++)
      if (i !== leader && (await this.restCode(i, "/sync")) === 200) return true;
    return false;
  }

  async sql(i: number, query: string, timeoutMs = 20_000): Promise<string> {
    return psql(this.pgPorts[i], query, { password: this.passwords.superuser, timeoutMs });
  }

  /** The role label of every member pod, by pod name. */
  roleLabels(): Record<string, string | undefined> {
    const out = kubectlOk(this.sim, [
      "get",
      "pods",
      "-n",
      this.namespace,
      "-l",
      "app=postgresql",
      "-o",
      "json",
    ]);
    const items = (
      JSON.parse(out) as {
        items: { metadata: { name: string; labels?: Record<string, string> } }[];
      }
    ).items;
    return Object.fromEntries(items.map((p) => [p.metadata.name, p.metadata.labels?.role]));
  }

  /** Pod names behind a Service's ready endpoints (kept by the sim's endpoints controller). */
  endpointPods(service: string): string[] {
    const r = kubectl(this.sim, ["get", "endpoints", service, "-n", this.namespace, "-o", "json"]);
    if (r.code !== 0) return [];
    const ep = JSON.parse(r.stdout) as ServiceEndpoints;
    return (ep.subsets ?? [])
      .flatMap((s) => s.addresses ?? [])
      .map((a) => a.targetRef?.name ?? "?")
      .sort();
  }

  /** {@link endpointPods} without blocking the event loop. */
  async endpointPodsAsync(service: string): Promise<string[]> {
    const r = await kubectlAsync(this.sim, [
      "get",
      "endpoints",
      service,
      "-n",
      this.namespace,
      "-o",
      "json",
    ]);
    if (r.code !== 0) return [];
    const ep = JSON.parse(r.stdout) as ServiceEndpoints;
    return (ep.subsets ?? [])
      .flatMap((s) => s.addresses ?? [])
      .map((a) => a.targetRef?.name ?? "?")
      .sort();
  }

  /**
   * The kubelet's readiness probe, emulated: every readinessPeriodMs each pod's Ready condition follows
   * GET readinessPath on its member's REST API (no answer = not ready).
   */
  private startProber(): void {
    const ready: (boolean | undefined)[] = [];
    const tick = async () => {
      if (this.probing) return;
      this.probing = true;
      try {
        await Promise.all(
          Array.from({ length: this.members }, async (_, i) => {
            const ok = (await this.restCode(i, this.readinessPath)) === 200;
            if (ready[i] === ok) return;
            const status = ok ? "True" : "False";
            const patch = {
              status: {
                conditions: [
                  { type: "Ready", status },
                  { type: "ContainersReady", status },
                ],
              },
            };
            const r = await kubectlAsync(this.sim, [
              "patch",
              "pod",
              this.podName(i),
              "-n",
              this.namespace,
              "--subresource=status",
              "--type=strategic",
              "-p",
              JSON.stringify(patch),
            ]);
            if (r.code === 0) ready[i] = ok;
          }),
        );
      } finally {
        this.probing = false;
      }
    };
    this.prober = setInterval(() => void tick(), this.readinessPeriodMs);
  }

  dumpLogs(): void {
    for (let i = 0; i < this.members; i++) {
      try {
        console.log(
          `--- member ${i} patroni log (tail)\n` +
            fs.readFileSync(this.logFile(i), "utf8").slice(-4000),
        );
      } catch {
        /* none */
      }
    }
  }

  /** Stops everything (graceful first), removes the temp dirs unless KEEP_PG_TEMP. */
  async stop(): Promise<void> {
    if (this.failed || process.env.DEBUG_PATRONI) this.dumpLogs();
    if (this.prober) clearInterval(this.prober);
    while (this.probing) await new Promise((r) => setTimeout(r, 100));
    for (const p of this.proxies) p.heal();
    for (const p of this.procs) signalPid(p?.pid, "SIGTERM");
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && this.procs.some((p) => p?.pid && pidAlive(p.pid)))
      await new Promise((r) => setTimeout(r, 200));
    for (const p of this.procs) if (p?.pid) signalPid(-p.pid, "SIGKILL");
    for (let i = 0; i < this.members; i++) signalPid(this.postmasterPid(i), "SIGKILL");
    for (const p of this.proxies) await p.stop();
    if (this.sim) stopSim(this.sim);
    if (!process.env.KEEP_PG_TEMP)
      for (const dir of [this.root, this.sim?.dir])
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }

  /** Wraps a test body: a failure marks the run failed (logs are printed by `stop`). */
  guard(fn: () => Promise<void>): () => Promise<void> {
    return async () => {
      try {
        await fn();
      } catch (e) {
        this.failed = true;
        throw e;
      }
    };
  }
}

/**
 * A continuous writer through the read-write path as a client in the cluster sees it: each write
 * goes to a random pod behind the `postgresql` Service's endpoints (refreshed every 500 ms, as
 * kube-proxy would), one psql and one committed insert per id. An id counts as acknowledged only
 * when psql exits 0 with the id echoed. psql is SIGKILLed after 5 s (never cancelled: a cancelled
 * synchronous-commit wait would report success for a commit that is only local).
 */
export class WriteLoad {
  readonly acked: number[] = [];
  readonly ackedAt: number[] = [];
  /** When each acknowledged write started (ms since epoch). */
  readonly startedAt: number[] = [];
  errors = 0;
  /** When each failed attempt ended (ms since epoch). */
  readonly errorsAt: number[] = [];
  private next = 1;
  private running = false;
  private loop?: Promise<void>;
  private refresher?: Promise<void>;
  private ports: number[] = [];

  constructor(
    private c: PatroniCluster,
    readonly table = "load",
  ) {}

  async create(leader: number): Promise<void> {
    await this.c.sql(leader, `create table if not exists ${this.table} (id bigint primary key)`);
  }

  start(): void {
    this.running = true;
    this.refresher = (async () => {
      while (this.running) {
        const pods = await this.c.endpointPodsAsync("postgresql");
        this.ports = pods
          .map((p) => Number(/-(\d+)$/.exec(p)?.[1]))
          .filter((i) => Number.isInteger(i))
          .map((i) => this.c.pgPorts[i]);
        await new Promise((r) => setTimeout(r, 500));
      }
    })();
    this.loop = (async () => {
      while (this.running) {
        const id = this.next++;
        const started = Date.now();
        if (await this.writeOne(id)) {
          this.acked.push(id);
          this.ackedAt.push(Date.now());
          this.startedAt.push(started);
        } else {
          this.errors++;
          this.errorsAt.push(Date.now());
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    })();
  }

  private async writeOne(id: number): Promise<boolean> {
    if (this.ports.length === 0) return false;
    const port = this.ports[Math.floor(Math.random() * this.ports.length)];
    try {
      const out = await psql(port, `insert into ${this.table} values (${id}) returning id`, {
        password: this.c.passwords.superuser,
        timeoutMs: 5000,
      });
      return out === String(id);
    } catch {
      return false;
    }
  }

  /** Ack time of the first acknowledged write started at or after t (ms); undefined if none yet. */
  firstWriteAfter(t: number): number | undefined {
    const k = this.startedAt.findIndex((a) => a >= t);
    return k < 0 ? undefined : this.ackedAt[k];
  }

  /**
   * The write outage around t0: the longest time without an acknowledged write, from the last ack
   * before t0 up to the first ack of a write started at or after t1 (ms).
   */
  maxGap(t0: number, t1: number): number {
    const end = this.firstWriteAfter(t1) ?? Date.now();
    let prev = [...this.ackedAt].reverse().find((a) => a < t0) ?? t0;
    let gap = 0;
    for (const a of this.ackedAt)
      if (a >= prev && a <= end) {
        gap = Math.max(gap, a - prev);
        prev = a;
      }
    return gap;
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
    await this.refresher;
  }

  /** Acknowledged ids missing on member i. */
  async lostOn(i: number): Promise<number[]> {
    const rows = await this.c.sql(i, `select id from ${this.table}`, 60_000);
    const have = new Set(rows.split("\n").filter(Boolean).map(Number));
    return this.acked.filter((id) => !have.has(id));
  }
}
