/**
 * Patroni groundwork (pure, no Pulumi resources): the patroni.yml of one member using the
 * Kubernetes DCS, and the RBAC rules that DCS needs. Not wired into the StatefulSet yet; the
 * real-process test (test/postgres-ha/patroni-k8s.test.ts) runs Patroni 3.0 with this config
 * against the simulated cluster's API server.
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
 * Measured by scripts/bench/pg-failover (3 members, synchronous_mode, SIGKILL of the leader's
 * Patroni + postmaster, 5 kills each; README): kill -> first write through the read-write Service
 * median 18.8 s at 20/5/5, 10.3 s at 10/2/4, 9.6 s at 8/2/3, no acknowledged commit lost in any
 * run. A dead leader's lock expires within ttl of its last renewal (every loop_wait); a replica
 * notices within one more loop_wait and promotes in about a second. Patroni's rule
 * loop_wait + 2 * retry_timeout <= ttl keeps a leader cut off from the API server from outliving
 * its lock (never two primaries), but retry_timeout also bounds every API call (Patroni 3.0 reads
 * with a timeout of about retry_timeout / 2): at 8/2/3 on an overloaded machine (load average 38
 * on 2 cores) API reads timed out after 1.5 s and a healthy leader demoted itself in two of four
 * suite runs. So the default stays 20/5/5 (no spurious demotion seen); 8/2/3 meets the
 * 10 s goal where the API server answers well within 1.5 s, best with Patroni's failsafe_mode.
 * Patroni's defaults are 30/10/10.
 */
export const DEFAULT_TIMING: PatroniTiming = { ttl: 20, loopWait: 5, retryTimeout: 5 };

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
  /** Member name: must equal the pod name, Patroni patches that pod's role label. */
  name: string;
  /** Pod IP (in a pod: status.podIP through the downward API). */
  podIp: string;
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
}

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
    ["name", a.name],
    ["namespace", a.namespace],
  ] as const)
    if (!NAME.test(v))
      throw new Error(`patroni: ${k} must be a DNS label, got ${JSON.stringify(v)}`);
  const listen = a.listenAddress ?? "0.0.0.0";
  const connect = a.connectAddress ?? a.podIp;
  const pgPort = a.pgPort ?? 5432;
  const restPort = a.restApiPort ?? 8008;
  const doc = {
    scope: a.scope,
    name: a.name,
    // No top-level `namespace`: Patroni copies it over kubernetes.namespace.
    restapi: {
      listen: `${listen}:${restPort}`,
      connect_address: `${connect}:${restPort}`,
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
      pod_ip: a.podIp,
      ports: [{ name: "postgresql", port: pgPort }],
      ...(a.kubeContext ? { context: a.kubeContext } : {}),
    },
    bootstrap: {
      dcs: {
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
          parameters: { ...(a.parameters ?? {}) },
        },
      },
      initdb: [{ encoding: "UTF8" }, { locale: "C.UTF-8" }, "data-checksums"],
    },
    postgresql: {
      listen: `${listen}:${pgPort}`,
      connect_address: `${connect}:${pgPort}`,
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
