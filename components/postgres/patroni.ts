/**
 * Patroni (pure, no Pulumi resources): the patroni.yml of the members using the Kubernetes DCS,
 * the dynamic (DCS-held) configuration, and the RBAC rules that DCS needs. The StatefulSet mounts
 * this file; the real-process tests (test/postgres-ha/) run Patroni 3.0 with it against the
 * simulated cluster's API server.
 */
import { stringify } from "yaml";

/** HA timing (seconds) written to bootstrap.dcs. */
export interface PatroniTiming {
  /** Leader lock lifetime: a dead leader is replaced at most this long after its last renewal. */
  ttl: number;
  /** Sleep between HA loop runs. */
  loopWait: number;
  /** How long DCS and PostgreSQL operations are retried before demoting. */
  retryTimeout: number;
}

/**
 * Where a failover's time goes (scripts/bench/pg-failover and the members' logs; README): the
 * dead leader's lock expires ttl after a replica last saw it renewed (renewed every loop_wait);
 * a replica notices at its next HA loop (up to loop_wait + 0.5 s later), takes the lock and
 * promotes (~0.5 s); its readiness probe (READINESS_PERIOD_SECONDS) puts it into the Service's
 * endpoints; clients reconnect (~0.3 s, PgBouncer up to its 1 s server_login_retry more). So
 * kill -> first write is about ttl + 1-2 s, and only ttl is large: it is the safety margin
 * (a lock must outlive the slowest renewal), the rest was already short or is cut here.
 *
 * Patroni's rule loop_wait + 2 * retry_timeout <= ttl (checkTiming) keeps a leader cut off from
 * the API server from outliving its lock (never two primaries) at any timing. What a short
 * timing costs is false failovers: retry_timeout also bounds every API call (each try times out
 * after retry_timeout / 2), and a leader whose lock update fails for retry_timeout demotes itself.
 *
 * This default (dev, tests, any stack without `postgres.failover`) is 20/5/5: no spurious
 * demotion seen on the shared 2-core test machine even at load average 38, where 8/2/3 demoted a
 * healthy leader in two of four drill runs; kill -> first write median 18.8 s. Prod sets 8/1/3
 * (Pulumi.prod.yaml): median <= 10 s on both paths, assuming an API server that answers a
 * single-object write within 1.5 s (the Kubernetes API SLO is 1 s at p99). Patroni's own
 * defaults are 30/10/10.
 */
export const DEFAULT_TIMING: PatroniTiming = { ttl: 20, loopWait: 5, retryTimeout: 5 };

/**
 * Period of the members' readiness probe (Patroni's /readiness, a cheap local GET): a new leader
 * enters the `postgresql` Service's endpoints at most one period after it takes the lock, so the
 * period adds up to that much to every failover (scripts/bench/pg-failover plays the probe at
 * this period). 1 s, with 3 failures before a member leaves the endpoints (as before: a few
 * seconds of tolerance for a busy REST API).
 */
export const READINESS_PERIOD_SECONDS = 1;
export const READINESS_FAILURE_THRESHOLD = 3;

/**
 * Environment variables Patroni reads the credentials from (they override the YAML). The REST
 * API's basic auth guards its unsafe calls only (POST /switchover, /restart, /reinitialize,
 * PATCH /config ...); the GET health endpoints the probes use stay open. Set both restApi
 * variables from the Secret on every member and in the switchover Job (pg-switchover.sh).
 */
export const PASSWORD_ENV = {
  superuser: "PATRONI_SUPERUSER_PASSWORD",
  replication: "PATRONI_REPLICATION_PASSWORD",
  restApiUsername: "PATRONI_RESTAPI_USERNAME",
  restApiPassword: "PATRONI_RESTAPI_PASSWORD",
} as const;

/** One pg_hba.conf line as fields, e.g. `{type: "host", database: "all", user: "all", address: "10.0.0.0/8", method: "scram-sha-256"}`. */
export interface HbaEntry {
  type: "local" | "host" | "hostssl" | "hostnossl";
  database: string;
  user: string;
  /** CIDR; omitted for `local`. */
  address?: string;
  method: "scram-sha-256" | "md5" | "peer" | "trust" | "reject";
}

export interface PatroniArgs {
  /** Cluster name (`scope`): also the value of the scope label and the DCS objects' prefix. */
  scope: string;
  /** Namespace of the pods and the DCS ConfigMaps. */
  namespace: string;
  /**
   * Member name: must equal the pod name, Patroni patches that pod's role label. Omitted in the
   * shared pod config: each pod sets PATRONI_NAME from the downward API (see {@link MEMBER_ENV}).
   */
  name?: string;
  /** Pod IP. Omitted in the shared pod config: PATRONI_KUBERNETES_POD_IP from status.podIP. */
  podIp?: string;
  /** Address other members and clients reach this member's PostgreSQL/REST API at. Default podIp. */
  connectAddress?: string;
  /** Interface PostgreSQL and the REST API listen on. Default `0.0.0.0`. */
  listenAddress?: string;
  /** PostgreSQL port. Default 5432. */
  pgPort?: number;
  /** REST API port. Default 8008. */
  restApiPort?: number;
  /** PGDATA. */
  dataDir: string;
  /** Directory with pg_ctl, initdb, pg_rewind, pg_basebackup. */
  binDir: string;
  /** Patroni's pgpass file (written by Patroni, must be writable). */
  pgpass: string;
  /** Superuser and replication usernames; the passwords come from {@link PASSWORD_ENV}. */
  superuser: string;
  replicationUser: string;
  /** Labels that, with the scope label, select this cluster's pods and DCS ConfigMaps. */
  labels: Record<string, string>;
  /** Label key holding the scope. Default `cluster-name`. */
  scopeLabel?: string;
  /** Label key Patroni sets to `master`/`replica` on the pods. Default `role`. */
  roleLabel?: string;
  /**
   * kubeconfig context, only read outside a cluster (in a pod the service account is used).
   * Patroni 3.0 defaults it to `kind-kind`, not to the kubeconfig's current-context.
   */
  kubeContext?: string;
  /** Synchronous replication: commits wait for one standby, and only it may be promoted. */
  synchronous: boolean;
  timing?: PatroniTiming;
  /** A replica lagging more than this many bytes is not promoted. Default 1 MiB. */
  maximumLagOnFailover?: number;
  /** postgresql.conf parameters for every member (max_connections etc.). */
  parameters?: Record<string, string | number | boolean>;
  /** pg_hba.conf lines, in order. */
  pgHba: HbaEntry[];
  /**
   * Patroni's own connections (and pg_rewind's) use the Unix socket in this directory, so the
   * superuser authenticates by `peer` and its password never has to match for local work.
   */
  socketDir?: string;
  /** Command run once after initdb on the first leader (Patroni appends a connection URL). */
  postBootstrap?: string;
  /** Command Patroni runs on start, stop, restart and role change (args: action role scope). */
  callback?: string;
}

/**
 * Per-pod environment Patroni reads instead of YAML keys (the values come from the downward API
 * in the StatefulSet): one ConfigMap then serves every member.
 */
export const MEMBER_ENV = {
  name: "PATRONI_NAME",
  podIp: "PATRONI_KUBERNETES_POD_IP",
  pgConnect: "PATRONI_POSTGRESQL_CONNECT_ADDRESS",
  restConnect: "PATRONI_RESTAPI_CONNECT_ADDRESS",
} as const;

/** Throws unless loop_wait + 2 * retry_timeout <= ttl (Patroni's own safety rule). */
export function checkTiming(t: PatroniTiming): void {
  for (const [k, v] of Object.entries(t))
    if (!Number.isInteger(v) || v <= 0)
      throw new Error(`patroni timing: ${k} must be a positive whole number of seconds, got ${v}`);
  if (t.loopWait + 2 * t.retryTimeout > t.ttl)
    throw new Error(
      `patroni timing: loop_wait + 2 * retry_timeout must be <= ttl, got ` +
        `${t.loopWait} + 2 * ${t.retryTimeout} = ${t.loopWait + 2 * t.retryTimeout} > ttl ${t.ttl}` +
        ` (a leader cut off from the DCS could keep running after its lock expired)`,
    );
}

/** One pg_hba entry as the line Patroni writes. */
export function hbaLine(e: HbaEntry): string {
  if (e.type === "local") {
    if (e.address) throw new Error(`pg_hba: a local entry takes no address (${e.address})`);
    return `local ${e.database} ${e.user} ${e.method}`;
  }
  if (!e.address) throw new Error(`pg_hba: a ${e.type} entry needs an address`);
  return `${e.type} ${e.database} ${e.user} ${e.address} ${e.method}`;
}

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** The patroni.yml text of one member. */
export function patroniConfig(a: PatroniArgs): string {
  const timing = a.timing ?? DEFAULT_TIMING;
  checkTiming(timing);
  for (const [k, v] of [
    ["scope", a.scope],
    ["name", a.name ?? "omitted"],
    ["namespace", a.namespace],
  ] as const)
    if (!NAME.test(v))
      throw new Error(`patroni: ${k} must be a DNS label, got ${JSON.stringify(v)}`);
  const listen = a.listenAddress ?? "0.0.0.0";
  // Unset in the shared pod config: MEMBER_ENV carries the pod's own addresses.
  const connect = a.connectAddress ?? a.podIp;
  const pgPort = a.pgPort ?? 5432;
  const restPort = a.restApiPort ?? 8008;
  const doc = {
    scope: a.scope,
    ...(a.name ? { name: a.name } : {}),
    // No top-level `namespace`: Patroni copies it over kubernetes.namespace.
    restapi: {
      listen: `${listen}:${restPort}`,
      ...(connect ? { connect_address: `${connect}:${restPort}` } : {}),
    },
    kubernetes: {
      namespace: a.namespace,
      labels: a.labels,
      scope_label: a.scopeLabel ?? "cluster-name",
      role_label: a.roleLabel ?? "role",
      // ConfigMaps, not Endpoints, hold the leader lock (updated with resourceVersion
      // compare-and-swap either way). Endpoints would also route a selector-less Service to the
      // leader, but need Patroni to create Services, an Endpoints API deprecated since
      // Kubernetes 1.33, and a valid (non-loopback) pod IP; the primary Service instead selects
      // role=master and the readiness probe asks the REST API's /primary, so a pod whose label is
      // stale (Patroni dead) drops out of it.
      use_endpoints: false,
      ...(a.podIp ? { pod_ip: a.podIp } : {}),
      ports: [{ name: "postgresql", port: pgPort }],
      ...(a.kubeContext ? { context: a.kubeContext } : {}),
    },
    bootstrap: {
      dcs: patroniDynamicConfig(a),
      initdb: [{ encoding: "UTF8" }, { locale: "C.UTF-8" }, "data-checksums"],
      ...(a.postBootstrap ? { post_bootstrap: a.postBootstrap } : {}),
    },
    postgresql: {
      listen: `${listen}:${pgPort}`,
      ...(connect ? { connect_address: `${connect}:${pgPort}` } : {}),
      ...(a.socketDir ? { use_unix_socket: true, use_unix_socket_repl: false } : {}),
      ...(a.callback
        ? {
            callbacks: Object.fromEntries(
              ["on_start", "on_restart", "on_role_change"].map((e) => [e, a.callback]),
            ),
          }
        : {}),
      // A new or re-cloned replica's pg_basebackup asks the leader for a fast checkpoint: the
      // default (spread) one paces its writes over checkpoint_completion_target and held every
      // clone after bootstrap (pg-roles.sh's CREATE DATABASE, ~900 dirty buffers) for 96 s in
      // the drills (test/helpers/patroni.ts runs this file); fast, a second.
      basebackup: [{ checkpoint: "fast" }],
      data_dir: a.dataDir,
      bin_dir: a.binDir,
      pgpass: a.pgpass,
      // Usernames only: Patroni takes the passwords from PASSWORD_ENV, so no secret is rendered.
      authentication: {
        superuser: { username: a.superuser },
        replication: { username: a.replicationUser },
      },
      pg_hba: a.pgHba.map(hbaLine),
    },
    tags: { nofailover: false, noloadbalance: false, clonefrom: false, nosync: false },
  };
  return stringify(doc, { lineWidth: 0 });
}

/**
 * The cluster-wide configuration Patroni keeps in the DCS: written at bootstrap, and afterwards
 * replaced from this same object by `patronictl edit-config --replace` (the config Job), so a
 * changed stack config (timing, synchronous mode, max_connections) reaches a running cluster.
 */
export function patroniDynamicConfig(a: PatroniArgs): Record<string, unknown> {
  const timing = a.timing ?? DEFAULT_TIMING;
  checkTiming(timing);
  return {
    ttl: timing.ttl,
    loop_wait: timing.loopWait,
    retry_timeout: timing.retryTimeout,
    maximum_lag_on_failover: a.maximumLagOnFailover ?? 1024 * 1024,
    synchronous_mode: a.synchronous,
    // Not strict: with both standbys gone the primary keeps accepting writes (asynchronously)
    // rather than blocking the platform; Patroni still only promotes the sync standby.
    synchronous_mode_strict: false,
    postgresql: {
      use_pg_rewind: true,
      use_slots: true,
      parameters: {
        ...(a.parameters ?? {}),
        ...(a.socketDir ? { unix_socket_directories: a.socketDir } : {}),
      },
    },
  };
}

/** A Role rule, shaped like `k8s.types.input.rbac.v1.PolicyRule`. */
export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

/**
 * What a member's service account needs for the ConfigMap DCS (use_endpoints: false), from the
 * calls Patroni 3.0 makes: leader/config/sync ConfigMaps are read, listed and watched by label,
 * created once and then patched with a resourceVersion; pods are listed and watched by label and
 * each member patches its own pod (role label, status annotation). Nothing is deleted: Patroni
 * empties the leader annotation instead (`patronictl remove` would need deletecollection and is
 * run by an operator with their own rights).
 */
export function patroniRbacRules(): PolicyRule[] {
  return [
    {
      apiGroups: [""],
      resources: ["configmaps"],
      verbs: ["create", "get", "list", "patch", "watch"],
    },
    { apiGroups: [""], resources: ["pods"], verbs: ["list", "patch", "watch"] },
  ];
}
