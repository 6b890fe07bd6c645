// Real Patroni 3.0 members (PostgreSQL 15 on 127.0.0.1, as OS user postgres) run as the rendered
// pod runs them: the patroni.yml of the ConfigMap (memberPatroniYaml with the prod stack's config),
// the container's command and environment (statefulSetSpec), and its volumes bind-mounted on their
// mount paths in a private mount namespace per member (test/helpers/pod-fs.sh: /etc/patroni,
// /scripts, /secrets, /var/run/postgresql, /tmp, /var/lib/postgresql/data), so post_bootstrap and
// the callbacks run the shipped pg-roles.sh. Only what loopback needs is overridden, through the
// PATRONI_* variables the pod also sets (listen/connect addresses on random ports) and the API
// server's address and credentials (a kubeconfig instead of the in-cluster service account); see
// {@link memberProcessEnv}. test/unit/patroni-harness.test.ts checks that the YAML and container
// are those of the prod render.
// The DCS is the simulated cluster's real API server, reached as a ServiceAccount bound to a Role
// of exactly patroniRbacRules(), each member through its own TCP proxy, so a test can cut one
// member off the DCS; a prober plays the kubelet's readiness probe on the pod objects (kwok only
// marks pods ready once), so the endpoints controller of the sim's kube-controller-manager keeps a
// Service's endpoints as on a real cluster. Shared by test/drills/* and scripts/bench/pg-failover.
import { ChildProcess, execFile, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import type * as k8s from "@pulumi/kubernetes";
import { parse, stringify } from "yaml";
import { loadConfig } from "../../components/config/load";
import type { PostgresConfig } from "../../components/config/postgres";
import { postgresScripts } from "../../components/postgres/content";
import {
  DATA_MOUNT,
  EXPORTER_QUERIES_KEY,
  PASSWORD_KEYS,
  PGDATA,
  REST_USER,
  ROLE_LABEL,
  dynamicConfigJson,
  memberPatroniYaml,
  memberSelector,
  serviceSelectors,
  statefulSetSpec,
} from "../../components/postgres/members";
import { postgresExporterQueries } from "../../components/postgres/exporter-queries";
import { PatroniTiming, checkTiming, patroniRbacRules } from "../../components/postgres/patroni";
import { readStackConfig } from "../../scripts/lib/render-stack";
import {
  SimCluster,
  kubectl,
  kubectlAsync,
  kubectlOk,
  startSim,
  stopSim,
} from "../../scripts/lib/sim-cluster";
import {
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
/** Runs a command in a private mount namespace with volumes bind-mounted (see the script). */
export const POD_FS = path.join(__dirname, "pod-fs.sh");

/** Names the component gives the objects the member pods reference (postgres-cluster.ts). */
const OBJECT_NAMES = (n: string) => ({
  passwordSecret: n,
  patroniConfigMap: `${n}-patroni`,
  scriptsConfigMap: `${n}-scripts`,
  backrestConfigMap: `${n}-pgbackrest`,
  exporterConfigMap: `${n}-exporter-queries`,
});

/** The members of a stack as the component builds them. */
export interface StackMembers {
  /** StatefulSet, Service and Patroni scope name. */
  name: string;
  namespace: string;
  config: PostgresConfig;
}

/**
 * PATRONI_TIMING=`ttl/loop_wait/retry_timeout` (e.g. `20/5/5`) runs the drills at another timing
 * than the stack's `postgres.failover`; checked by Patroni's rule.
 */
export function timingFromEnv(env = process.env.PATRONI_TIMING): PatroniTiming | undefined {
  if (!env) return undefined;
  const m = /^(\d+)\/(\d+)\/(\d+)$/.exec(env.trim());
  if (!m) throw new Error(`PATRONI_TIMING must be ttl/loop_wait/retry_timeout, got ${env}`);
  const t = { ttl: Number(m[1]), loopWait: Number(m[2]), retryTimeout: Number(m[3]) };
  checkTiming(t);
  return t;
}

/**
 * The stack's PostgreSQL members (Pulumi.<stack>.yaml through the validated config model), with
 * the count, synchronous mode or timing replaced when given (the bench varies the timing).
 */
export function stackMembers(
  stack = "prod",
  over: { members?: number; synchronous?: boolean; timing?: PatroniTiming } = {},
): StackMembers {
  const raw = readStackConfig(stack);
  const platform = loadConfig(raw.config, raw.secretKeys);
  const c = structuredClone(platform.postgres);
  if (over.members !== undefined) c.replicas = over.members;
  if (over.synchronous !== undefined) c.synchronous = over.synchronous;
  const timing = over.timing ?? timingFromEnv();
  if (timing) {
    c.failover.ttl = timing.ttl;
    c.failover.loopWait = timing.loopWait;
    c.failover.retryTimeout = timing.retryTimeout;
  }
  return { name: "postgresql", namespace: platform.namespace, config: c };
}

type EnvVar = k8s.types.output.core.v1.EnvVar;
type Container = k8s.types.output.core.v1.Container;
type Volume = k8s.types.output.core.v1.Volume;

/** What a member pod gets from the component's pure builders: config files and the container. */
export interface MemberPod extends StackMembers {
  /** The patroni ConfigMap's data (patroni.yml, dcs.json). */
  patroniFiles: Record<string, string>;
  /** The `postgresql` container of the StatefulSet's pod template. */
  container: Container;
  /** Every container of the pod template (the sidecars too). */
  containers: Container[];
  volumes: Volume[];
  /** Labels of the pod template. */
  podLabels: Record<string, string>;
}

export function memberPod(m: StackMembers): MemberPod {
  const names = OBJECT_NAMES(m.name);
  const spec = statefulSetSpec({
    name: m.name,
    namespace: m.namespace,
    config: m.config,
    image: "postgresql-member",
    labels: { app: m.name },
    serviceAccountName: m.name,
    checksum: "",
    ...names,
  }) as unknown as k8s.types.output.apps.v1.StatefulSetSpec;
  const container = spec.template.spec.containers.find((x) => x.name === "postgresql");
  if (!container) throw new Error("statefulSetSpec has no postgresql container");
  return {
    ...m,
    patroniFiles: {
      "patroni.yml": memberPatroniYaml(m.name, m.namespace, m.config),
      "dcs.json": dynamicConfigJson(m.name, m.config),
    },
    container,
    containers: spec.template.spec.containers,
    volumes: spec.template.spec.volumes,
    podLabels: spec.template.metadata.labels,
  };
}

/** The pod's values that loopback needs replaced, each through a variable the pod also sets. */
export function loopbackOverrides(o: { pgPort: number; restPort: number }): Record<string, string> {
  return {
    // The pod: $(POD_IP):5432 / :8008 (members run on one address here, on random ports).
    PATRONI_POSTGRESQL_CONNECT_ADDRESS: `127.0.0.1:${o.pgPort}`,
    PATRONI_RESTAPI_CONNECT_ADDRESS: `127.0.0.1:${o.restPort}`,
    // patroni.yml: 0.0.0.0:5432 / 0.0.0.0:8008.
    PATRONI_POSTGRESQL_LISTEN: `127.0.0.1:${o.pgPort}`,
    PATRONI_RESTAPI_LISTEN: `127.0.0.1:${o.restPort}`,
    // pg-roles.sh and the image's libpq tools default to 5432.
    PGPORT: String(o.pgPort),
    // The API server: a pod uses its service account (KUBERNETES_SERVICE_HOST, token, CA file);
    // here a kubeconfig with a token of the same Role (the member's /tmp volume).
    KUBECONFIG: "/tmp/kubeconfig",
    PATRONI_KUBERNETES_CONTEXT: KUBE_CONTEXT,
  };
}

/**
 * A container's env as the kubelet resolves it (downward API, `$(VAR)` references, the password
 * Secret). Variables from any other Secret (the object store's keys) are left out: no object
 * store in these tests.
 */
export function resolveContainerEnv(
  pod: MemberPod,
  container: Container,
  o: { podName: string; secret: Record<string, string> },
): Record<string, string> {
  const passwordSecret = OBJECT_NAMES(pod.name).passwordSecret;
  const env: Record<string, string> = {
    // The postgres:15 image's.
    PATH: PG_PATH,
    HOME: "/var/lib/postgresql",
    LANG: "C.UTF-8",
  };
  const expand = (v: string) =>
    v.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, k: string) => env[k] ?? m);
  for (const e of (container.env ?? []) as EnvVar[]) {
    const field = e.valueFrom?.fieldRef?.fieldPath;
    const ref = e.valueFrom?.secretKeyRef;
    if (e.value !== undefined) env[e.name] = expand(e.value);
    else if (field === "metadata.name") env[e.name] = o.podName;
    else if (field === "status.podIP") env[e.name] = "127.0.0.1";
    else if (ref && ref.name === passwordSecret) {
      const v = o.secret[ref.key];
      if (v === undefined) throw new Error(`harness: no value for Secret key ${ref.key}`);
      env[e.name] = v;
    } else if (ref && e.name.startsWith("PGBACKREST_")) continue;
    else throw new Error(`harness: cannot resolve env ${e.name} (${JSON.stringify(e.valueFrom)})`);
  }
  return env;
}

/** The environment Patroni gets: {@link resolveContainerEnv}, then {@link loopbackOverrides}. */
export function memberProcessEnv(
  pod: MemberPod,
  o: { podName: string; pgPort: number; restPort: number; secret: Record<string, string> },
): Record<string, string> {
  return { ...resolveContainerEnv(pod, pod.container, o), ...loopbackOverrides(o) };
}

/**
 * pgBackRest's configuration in place of the rendered one (which names the object store): a
 * repository under the member's /tmp that has no stanza, so archive-push and archive-get fail
 * fast and PostgreSQL keeps its WAL and streams (test/drills/pgbackrest.test.ts archives for real).
 */
const NO_OBJECT_STORE_BACKREST = [
  "[global]",
  "repo1-type=posix",
  "repo1-path=/tmp/pgbackrest-repo",
  "lock-path=/tmp/pgbackrest",
  "log-level-console=warn",
  "log-level-file=off",
  "",
].join("\n");

export interface PatroniClusterOptions {
  /** Stack whose PostgreSQL config the members run. Default `prod`. */
  stack?: string;
  /** Default: the stack's postgres.replicas. */
  members?: number;
  /** Default: the stack's postgres.synchronous. */
  synchronous?: boolean;
  /** Default: the stack's postgres.failover. */
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
  /** The members' config and container as the component builds them for the stack. */
  readonly pod: MemberPod;
  readonly namespace: string;
  /** Patroni scope: the StatefulSet's name. */
  readonly scope: string;
  readonly timing: PatroniTiming;
  readonly passwords = {
    superuser: "su-secret-'odd",
    replication: "repl-secret",
    restapi: "rest-secret:odd",
    app: "app-secret",
    monitoring: "monitoring-secret",
  };
  readonly restUser = REST_USER;
  readonly pgPorts: number[] = [];
  readonly restPorts: number[] = [];
  sim!: SimCluster;
  root = "";
  failed = false;
  private procs: (ChildProcess | undefined)[] = [];
  private sidecars: ChildProcess[] = [];
  private proxies: DcsProxy[] = [];
  private prober?: NodeJS.Timeout;
  private probing = false;
  private readonly readinessPath: string;
  private readonly readinessPeriodMs: number;

  private constructor(o: PatroniClusterOptions) {
    this.pod = memberPod(stackMembers(o.stack, o));
    const c = this.pod.config;
    this.members = c.replicas;
    this.namespace = this.pod.namespace;
    this.scope = this.pod.name;
    this.timing = {
      ttl: c.failover.ttl,
      loopWait: c.failover.loopWait,
      retryTimeout: c.failover.retryTimeout,
    };
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
    return `${this.scope}-${i}`;
  }
  memberDir(i: number): string {
    return path.join(this.root, `m${i}`);
  }
  /** Host directory standing in for member i's volume `name` (its pod's emptyDir or claim). */
  volumeDir(i: number, name: string): string {
    return path.join(this.memberDir(i), name);
  }
  /** Member i's PGDATA on the host (PGDATA inside the data volume). */
  dataDir(i: number): string {
    return path.join(this.volumeDir(i, "data"), path.relative(DATA_MOUNT, PGDATA));
  }
  /** Member i's Unix socket directory on the host (its /var/run/postgresql). */
  socketDir(i: number): string {
    return this.volumeDir(i, "run");
  }
  logFile(i: number): string {
    return path.join(this.memberDir(i), "patroni.log");
  }
  /** The patroni.yml every member runs (the patroni ConfigMap's volume). */
  configFile(): string {
    return path.join(this.root, "volumes", "patroni", "patroni.yml");
  }
  restUrl(i: number): string {
    return `http://127.0.0.1:${this.restPorts[i]}`;
  }
  get serviceAccount(): string {
    return `system:serviceaccount:${this.namespace}:patroni`;
  }
  /** The password Secret's data, by key. */
  secretData(): Record<string, string> {
    return {
      [PASSWORD_KEYS.superuser]: this.passwords.superuser,
      [PASSWORD_KEYS.replication]: this.passwords.replication,
      [PASSWORD_KEYS.app]: this.passwords.app,
      [PASSWORD_KEYS.monitoring]: this.passwords.monitoring,
      [PASSWORD_KEYS.restApi]: this.passwords.restapi,
    };
  }

  private async init(): Promise<void> {
    this.root = pgTempDir("patroni-k8s-");
    this.writeSharedVolumes();
    for (let i = 0; i < this.members; i++) {
      this.pgPorts.push(await freePort());
      this.restPorts.push(await freePort());
      fs.mkdirSync(this.memberDir(i));
      fs.chownSync(this.memberDir(i), pgUser.uid, pgUser.gid);
      // The claim and the emptyDirs, writable by the pod's fsGroup (postgres).
      for (const v of ["data", ...this.pod.volumes.filter((x) => x.emptyDir).map((x) => x.name)]) {
        fs.mkdirSync(this.volumeDir(i, v), { mode: 0o2770 });
        fs.chmodSync(this.volumeDir(i, v), 0o2770);
        fs.chownSync(this.volumeDir(i, v), pgUser.uid, pgUser.gid);
      }
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
      metadata: { name: this.podName(i), namespace: this.namespace, labels: this.pod.podLabels },
      spec: { containers: [{ name: "postgresql", image: "postgres:15" }] },
    }));
    // What the component renders: `postgresql` selects the leader, `postgresql-read` replicas.
    const selectors = serviceSelectors(this.scope);
    const service = (name: string, selector: Record<string, string>) => ({
      apiVersion: "v1",
      kind: "Service",
      metadata: { name, namespace: this.namespace },
      spec: { selector, ports: [{ name: "postgresql", port: 5432 }] },
    });
    kubectlOk(
      this.sim,
      ["apply", "-f", "-"],
      JSON.stringify({
        apiVersion: "v1",
        kind: "List",
        items: [
          ...pods,
          service(this.scope, selectors.rw),
          service(`${this.scope}-read`, selectors.read),
        ],
      }),
    );
    for (let i = 0; i < this.members; i++) this.startMember(i);
    this.startProber();
  }

  /**
   * The volumes every member shares, as the kubelet lays them out: the patroni and scripts
   * ConfigMaps, the password Secret (mode and fsGroup as rendered), pgBackRest's configuration
   * (replaced, see NO_OBJECT_STORE_BACKREST).
   */
  private writeSharedVolumes(): void {
    const dir = (name: string) => path.join(this.root, "volumes", name);
    const files = (name: string, data: Record<string, string>, mode: number, gid: number) => {
      fs.mkdirSync(dir(name), { recursive: true, mode: 0o755 });
      fs.chmodSync(dir(name), 0o755);
      for (const [k, v] of Object.entries(data)) {
        const f = path.join(dir(name), k);
        fs.writeFileSync(f, v);
        fs.chmodSync(f, mode);
        fs.chownSync(f, 0, gid);
      }
    };
    fs.chmodSync(this.root, 0o755);
    const names = OBJECT_NAMES(this.scope);
    for (const v of this.pod.volumes) {
      if (v.emptyDir) continue;
      const mode = v.configMap?.defaultMode ?? v.secret?.defaultMode ?? 0o644;
      if (v.configMap?.name === names.patroniConfigMap)
        files(v.name, this.pod.patroniFiles, mode, 0);
      else if (v.configMap?.name === names.scriptsConfigMap)
        files(v.name, postgresScripts(), mode, 0);
      else if (v.configMap?.name === names.backrestConfigMap)
        files(v.name, { "pgbackrest.conf": NO_OBJECT_STORE_BACKREST }, mode, 0);
      else if (v.configMap?.name === names.exporterConfigMap)
        files(v.name, { [EXPORTER_QUERIES_KEY]: postgresExporterQueries() }, mode, 0);
      else if (v.secret?.secretName === names.passwordSecret) {
        const data = this.secretData();
        files(
          v.name,
          Object.fromEntries((v.secret.items ?? []).map((it) => [it.path, data[it.key]])),
          mode,
          pgUser.gid,
        );
      } else throw new Error(`harness: no stand-in for the pod's volume ${JSON.stringify(v)}`);
    }
  }

  /** bind mounts (SOURCE:TARGET[:ro]) of a container of member i, from its volumeMounts. */
  private mounts(i: number, container: Container = this.pod.container): string[] {
    const shared = new Set(this.pod.volumes.filter((v) => !v.emptyDir).map((v) => v.name));
    return (container.volumeMounts ?? []).map((m) => {
      const src = shared.has(m.name)
        ? path.join(this.root, "volumes", m.name)
        : this.volumeDir(i, m.name);
      if (!fs.existsSync(src)) throw new Error(`harness: volume ${m.name} has no stand-in`);
      return `${src}:${m.mountPath}${m.readOnly ? ":ro" : ""}`;
    });
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
    writePgFile(path.join(this.volumeDir(i, "tmp"), "kubeconfig"), stringify(kc));
  }

  /** The environment the container gives Patroni (see {@link memberProcessEnv}). */
  memberEnv(i: number): Record<string, string> {
    return memberProcessEnv(this.pod, {
      podName: this.podName(i),
      pgPort: this.pgPorts[i],
      restPort: this.restPorts[i],
      secret: this.secretData(),
    });
  }

  /** Starts member i's container: its command, env and volume mounts (pod-fs.sh). */
  startMember(i: number): void {
    const log = fs.openSync(this.logFile(i), "a");
    const command = this.pod.container.command ?? [];
    this.procs[i] = spawn("bash", [POD_FS, "postgres", ...this.mounts(i), "--", ...command], {
      env: this.memberEnv(i),
      stdio: ["ignore", log, log],
      detached: true,
    });
    fs.closeSync(log);
  }

  /**
   * Runs member i's sidecar `name` as its pod would (user postgres, its volume mounts, its env)
   * with `command` for the image's entrypoint and `overrides` for what loopback needs. Stopped by
   * {@link stop}.
   */
  startSidecar(
    i: number,
    name: string,
    command: string[],
    overrides: Record<string, string>,
  ): ChildProcess {
    const container = this.pod.containers.find((x) => x.name === name);
    if (!container) throw new Error(`harness: the pod has no container ${name}`);
    const env = {
      ...resolveContainerEnv(this.pod, container, {
        podName: this.podName(i),
        secret: this.secretData(),
      }),
      ...overrides,
    };
    const log = fs.openSync(path.join(this.memberDir(i), `${name}.log`), "a");
    const p = spawn("bash", [POD_FS, "postgres", ...this.mounts(i, container), "--", ...command], {
      env,
      stdio: ["ignore", log, log],
      detached: true,
    });
    fs.closeSync(log);
    this.sidecars.push(p);
    return p;
  }

  /**
   * `kubectl exec` into member i's container: `command` runs as postgres in the mount namespace
   * of its Patroni (the pod's paths) with the container's env (loopback overrides included) plus
   * `env`, as the kubelet runs an exec probe. Needs member i's Patroni running.
   */
  async exec(
    i: number,
    command: string[],
    env: Record<string, string> = {},
    timeoutMs = 60_000,
  ): Promise<{ code: number; stdout: string; stderr: string }> {
    const pid = this.procs[i]?.pid;
    if (!pid || !this.running(i)) throw new Error(`member ${i}'s container is not running`);
    const args = [`--mount=/proc/${pid}/ns/mnt`, "--wd=/", "--", "setpriv"];
    args.push("--reuid=postgres", "--regid=postgres", "--init-groups", "--", ...command);
    return new Promise((resolve) => {
      execFile(
        "nsenter",
        args,
        { env: { ...this.memberEnv(i), ...env }, timeout: timeoutMs },
        (err, stdout, stderr) => {
          const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
          resolve({ code, stdout, stderr });
        },
      );
    });
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
      Object.entries(memberSelector(this.scope))
        .map(([k, v]) => `${k}=${v}`)
        .join(","),
      "-o",
      "json",
    ]);
    const items = (
      JSON.parse(out) as {
        items: { metadata: { name: string; labels?: Record<string, string> } }[];
      }
    ).items;
    return Object.fromEntries(items.map((p) => [p.metadata.name, p.metadata.labels?.[ROLE_LABEL]]));
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
    for (const p of this.sidecars) if (p.pid) signalPid(-p.pid, "SIGKILL");
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
    // Only writes acknowledged before the query began must be in its snapshot: the load goes on
    // while the query runs (a write acknowledged meanwhile is no loss).
    const acked = [...this.acked];
    const rows = await this.c.sql(i, `select id from ${this.table}`, 60_000);
    const have = new Set(rows.split("\n").filter(Boolean).map(Number));
    return acked.filter((id) => !have.has(id));
  }
}
