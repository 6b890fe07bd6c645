// Three real Patroni 3.0 members (PostgreSQL 15 on 127.0.0.1, as OS user postgres) configured by
// components/postgres/patroni.ts, using the Kubernetes DCS against the simulated cluster's real
// API server, authenticated as a ServiceAccount bound to a Role of exactly patroniRbacRules():
// leader election and role labels on the pod objects, synchronous replication, an
// unattended failover after the leader's Patroni and postmaster are SIGKILLed with no
// acknowledged commit lost, and the old leader rejoining as a replica.
import assert from "node:assert/strict";
import { ChildProcess, execFile, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { parse, stringify } from "yaml";
import {
  DEFAULT_TIMING,
  PASSWORD_ENV,
  patroniConfig,
  patroniRbacRules,
} from "../../components/postgres/patroni";
import { SimCluster, kubectl, kubectlOk, startSim, stopSim } from "../../scripts/lib/sim-cluster";
import {
  PG_BIN,
  PG_PATH,
  freePort,
  pgTempDir,
  pgUser,
  waitFor,
  writePgFile,
} from "../helpers/postgres";

const execFileP = promisify(execFile);
const PATRONI = "/usr/bin/patroni";
const NS = "pg-ha";
const SCOPE = "pg";
const LABELS = { app: "postgresql" };
const MEMBERS = 3;
const KUBE_CONTEXT = "patroni";
const PATRONI_SA = `system:serviceaccount:${NS}:patroni`;
const PASSWORDS = { superuser: "su-secret-'odd", replication: "repl-secret" };

let sim: SimCluster | undefined;
let root = "";
let kubeconfig = "";
const pgPorts: number[] = [];
const restPorts: number[] = [];
const procs: (ChildProcess | undefined)[] = [];

const podName = (i: number) => `postgresql-${i}`;
const memberDir = (i: number) => path.join(root, `m${i}`);
const dataDir = (i: number) => path.join(memberDir(i), "data");
const logFile = (i: number) => path.join(memberDir(i), "patroni.log");

/**
 * A kubeconfig, readable by postgres, that authenticates as a ServiceAccount bound to a Role with
 * exactly patroniRbacRules(): the members run with the rights the StatefulSet will get.
 */
function serviceAccountKubeconfig(s: SimCluster, dest: string): void {
  const role = { apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role" };
  kubectlOk(
    s,
    ["apply", "-f", "-"],
    JSON.stringify({
      apiVersion: "v1",
      kind: "List",
      items: [
        { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "patroni", namespace: NS } },
        { ...role, metadata: { name: "patroni", namespace: NS }, rules: patroniRbacRules() },
        {
          apiVersion: "rbac.authorization.k8s.io/v1",
          kind: "RoleBinding",
          metadata: { name: "patroni", namespace: NS },
          roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "patroni" },
          subjects: [{ kind: "ServiceAccount", name: "patroni", namespace: NS }],
        },
      ],
    }),
  );
  const token = kubectlOk(s, ["create", "token", "patroni", "-n", NS, "--duration=2h"]).trim();
  const admin = parse(fs.readFileSync(s.kubeconfig, "utf8")) as {
    clusters: { name: string; cluster: Record<string, string> }[];
  };
  const cluster = { ...admin.clusters[0].cluster };
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
    contexts: [{ name: KUBE_CONTEXT, context: { cluster: "sim", user: "patroni", namespace: NS } }],
    "current-context": KUBE_CONTEXT,
  };
  writePgFile(dest, stringify(kc));
}

function writeConfig(i: number): string {
  const file = path.join(memberDir(i), "patroni.yml");
  writePgFile(
    file,
    patroniConfig({
      scope: SCOPE,
      namespace: NS,
      name: podName(i),
      podIp: "127.0.0.1",
      listenAddress: "127.0.0.1",
      pgPort: pgPorts[i],
      restApiPort: restPorts[i],
      dataDir: dataDir(i),
      binDir: PG_BIN,
      pgpass: path.join(memberDir(i), "pgpass"),
      superuser: "postgres",
      replicationUser: "replicator",
      labels: LABELS,
      kubeContext: KUBE_CONTEXT,
      synchronous: true,
      parameters: {
        max_connections: 50,
        shared_buffers: "32MB",
        unix_socket_directories: path.join(root, "run"),
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
  return file;
}

/** Starts member i's Patroni (like the container starting). */
function startMember(i: number): void {
  const log = fs.openSync(logFile(i), "a");
  fs.fchownSync(log, pgUser.uid, pgUser.gid);
  procs[i] = spawn(PATRONI, [path.join(memberDir(i), "patroni.yml")], {
    env: {
      PATH: PG_PATH,
      HOME: memberDir(i),
      LANG: "C.UTF-8",
      KUBECONFIG: kubeconfig,
      [PASSWORD_ENV.superuser]: PASSWORDS.superuser,
      [PASSWORD_ENV.replication]: PASSWORDS.replication,
    },
    uid: pgUser.uid,
    gid: pgUser.gid,
    stdio: ["ignore", log, log],
    detached: true,
  });
  fs.closeSync(log);
}

function postmasterPid(i: number): number | undefined {
  try {
    return Number(fs.readFileSync(path.join(dataDir(i), "postmaster.pid"), "utf8").split("\n")[0]);
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function kill(pid: number | undefined, sig: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
}

interface MemberStatus {
  state?: string;
  role?: string;
}

/** GET /patroni of member i's REST API; undefined while it does not answer. */
async function status(i: number): Promise<MemberStatus | undefined> {
  try {
    const r = await fetch(`http://127.0.0.1:${restPorts[i]}/patroni`, {
      signal: AbortSignal.timeout(2000),
    });
    return (await r.json()) as MemberStatus;
  } catch {
    return undefined;
  }
}

const isLeader = (s?: MemberStatus) =>
  s?.state === "running" && (s.role === "master" || s.role === "primary");

async function sql(i: number, query: string): Promise<string> {
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
      String(pgPorts[i]),
    ].concat(["-U", "postgres", "-d", "postgres", "-c", query]),
    {
      env: { ...process.env, PGPASSWORD: PASSWORDS.superuser, PGCONNECT_TIMEOUT: "3" },
      timeout: 20_000,
    },
  );
  return stdout.trim();
}

/** The role label of every member pod, by pod name. */
function roleLabels(): Record<string, string | undefined> {
  const out = kubectlOk(sim!, ["get", "pods", "-n", NS, "-l", "app=postgresql", "-o", "json"]);
  const items = (
    JSON.parse(out) as { items: { metadata: { name: string; labels?: Record<string, string> } }[] }
  ).items;
  return Object.fromEntries(items.map((p) => [p.metadata.name, p.metadata.labels?.role]));
}

async function waitLeader(candidates: number[], timeoutMs: number): Promise<number> {
  return waitFor(
    "a Patroni leader",
    async () => {
      for (const i of candidates) if (isLeader(await status(i))) return i;
      return undefined;
    },
    timeoutMs,
    250,
  );
}

async function waitReplica(i: number, timeoutMs: number): Promise<void> {
  await waitFor(
    `member ${i} running as a replica`,
    async () => {
      const s = await status(i);
      return s?.state === "running" && s.role === "replica";
    },
    timeoutMs,
    500,
  );
}

function dumpLogs(): void {
  for (let i = 0; i < MEMBERS; i++) {
    try {
      console.log(
        `--- member ${i} patroni log (tail)\n` + fs.readFileSync(logFile(i), "utf8").slice(-4000),
      );
    } catch {
      /* none */
    }
  }
}

let leader = -1;
let failed = false;

/** Marks the run failed (the logs are printed in `after`) and rethrows. */
function guard(fn: () => Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await fn();
    } catch (e) {
      failed = true;
      throw e;
    }
  };
}

before(async () => {
  if (!fs.existsSync(PATRONI))
    throw new Error(
      `${PATRONI} is missing: run \`bash scripts/setup.sh --tools\` (installs patroni)`,
    );
  root = pgTempDir("patroni-k8s-");
  fs.mkdirSync(path.join(root, "run"));
  fs.chownSync(path.join(root, "run"), pgUser.uid, pgUser.gid);
  for (let i = 0; i < MEMBERS; i++) {
    pgPorts.push(await freePort());
    restPorts.push(await freePort());
    fs.mkdirSync(memberDir(i));
    fs.chownSync(memberDir(i), pgUser.uid, pgUser.gid);
  }
  sim = startSim({ quiet: true });
  kubectlOk(sim, ["create", "namespace", NS]);
  kubeconfig = path.join(root, "kubeconfig");
  serviceAccountKubeconfig(sim, kubeconfig);
  const pods = Array.from({ length: MEMBERS }, (_, i) => ({
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: podName(i), namespace: NS, labels: { ...LABELS, "cluster-name": SCOPE } },
    spec: { containers: [{ name: "postgres", image: "postgres:15" }] },
  }));
  kubectlOk(
    sim,
    ["apply", "-f", "-"],
    JSON.stringify({ apiVersion: "v1", kind: "List", items: pods }),
  );
  for (let i = 0; i < MEMBERS; i++) {
    writeConfig(i);
    startMember(i);
  }
});

after(async () => {
  if (failed || process.env.DEBUG_PATRONI) dumpLogs();
  // Graceful stop first (Patroni stops its PostgreSQL), then SIGKILL whatever is left.
  for (const p of procs) kill(p?.pid, "SIGTERM");
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline && procs.some((p) => p?.pid && alive(p.pid)))
    await new Promise((r) => setTimeout(r, 200));
  for (const p of procs) if (p?.pid) kill(-p.pid, "SIGKILL");
  for (let i = 0; i < MEMBERS; i++) kill(postmasterPid(i), "SIGKILL");
  if (sim) stopSim(sim);
  if (!process.env.KEEP_PG_TEMP)
    for (const dir of [root, sim?.dir]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe("Patroni with the Kubernetes DCS on the simulated cluster", () => {
  test(
    "one leader is elected and the pod objects get role labels",
    guard(async () => {
      // The members' identity really is limited to the Role (checked on the API server).
      const can = (verb: string, resource: string) =>
        kubectl(sim!, ["auth", "can-i", verb, resource, "-n", NS, "--as", PATRONI_SA]).code === 0;
      assert.ok(can("patch", "pods") && can("patch", "configmaps"));
      assert.ok(!can("delete", "configmaps") && !can("delete", "pods") && !can("get", "secrets"));
      leader = await waitLeader([0, 1, 2], 90_000);
      for (let i = 0; i < MEMBERS; i++) if (i !== leader) await waitReplica(i, 90_000);
      const leaders = [];
      for (let i = 0; i < MEMBERS; i++) if (isLeader(await status(i))) leaders.push(i);
      assert.deepEqual(leaders, [leader], "exactly one leader");
      await waitFor(
        "role labels",
        async () => {
          const l = roleLabels();
          return [0, 1, 2].every((i) => l[podName(i)] === (i === leader ? "master" : "replica"));
        },
        30_000,
        500,
      );
    }),
  );

  test(
    "synchronous replication is on and writes reach both replicas",
    guard(async () => {
      await waitFor(
        "synchronous_standby_names on the leader",
        async () => (await sql(leader, "show synchronous_standby_names")) !== "",
        60_000,
        500,
      );
      await sql(leader, "create table ha_probe (id int primary key, note text)");
      await sql(leader, "insert into ha_probe values (1, 'before failover')");
      for (let i = 0; i < MEMBERS; i++)
        if (i !== leader)
          await waitFor(
            `row on replica ${i}`,
            async () =>
              (await sql(i, "select note from ha_probe where id = 1")) === "before failover",
            30_000,
            300,
          );
    }),
  );

  test(
    "SIGKILL of the leader's Patroni and postmaster: another member takes over unattended",
    guard(async () => {
      // Acknowledged under synchronous_mode right before the crash.
      await sql(leader, "insert into ha_probe values (2, 'acked before crash')");
      const old = leader;
      const pm = postmasterPid(old);
      const t0 = Date.now();
      kill(procs[old]?.pid, "SIGKILL");
      kill(pm, "SIGKILL");
      procs[old] = undefined;
      const others = [0, 1, 2].filter((i) => i !== old);
      leader = await waitLeader(others, (DEFAULT_TIMING.ttl + 40) * 1000);
      const elected = (Date.now() - t0) / 1000;
      await waitFor(
        "the master label on the new leader",
        async () => roleLabels()[podName(leader)] === "master",
        30_000,
        250,
      );
      const labelled = (Date.now() - t0) / 1000;
      console.log(
        `patroni failover: ${podName(leader)} leader ${elected.toFixed(1)} s after the SIGKILL ` +
          `of ${podName(old)}, labelled ${labelled.toFixed(1)} s (ttl ${DEFAULT_TIMING.ttl}, ` +
          `loop_wait ${DEFAULT_TIMING.loopWait})`,
      );
      // Nobody patches a dead member's pod: its label stays `master` until its Patroni is back.
      console.log(`patroni failover: role labels now ${JSON.stringify(roleLabels())}`);
      assert.equal(
        await sql(leader, "select note from ha_probe where id = 2"),
        "acked before crash",
      );
      assert.equal(await sql(leader, "select pg_is_in_recovery()"), "f");
      await sql(leader, "insert into ha_probe values (3, 'after failover')");
    }),
  );

  test(
    "the old leader's Patroni restarts and rejoins as a replica of the new leader",
    guard(async () => {
      const old = [0, 1, 2].find((i) => procs[i] === undefined)!;
      startMember(old);
      await waitReplica(old, 90_000);
      await waitFor(
        "the old leader to replay the post-failover row",
        async () => (await sql(old, "select note from ha_probe where id = 3")) === "after failover",
        60_000,
        500,
      );
      await waitFor(
        "the replica label on the old leader",
        async () => roleLabels()[podName(old)] === "replica",
        30_000,
        500,
      );
      const log = fs.readFileSync(logFile(old), "utf8");
      // The Role of patroniRbacRules() was enough: the API server refused no call.
      for (let i = 0; i < MEMBERS; i++)
        assert.doesNotMatch(
          fs.readFileSync(logFile(i), "utf8"),
          /Permission denied|Forbidden/,
          `member ${i} was refused an API call`,
        );
      console.log(
        `patroni rejoin: pg_rewind ${/pg_rewind exit code=0/.test(log) ? "ran" : "was not needed"}`,
      );
    }),
  );
});
