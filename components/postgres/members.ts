/**
 * Pure builders for the Patroni-managed PostgreSQL members: the shared patroni.yml, the pod's
 * environment, the StatefulSet spec, the Services that follow Patroni's role label, the
 * NetworkPolicy, and the Jobs that apply the dynamic configuration and a planned switchover.
 * The component (postgres-cluster.ts) only wires these into resources.
 */
import * as crypto from "node:crypto";
import type * as k8s from "@pulumi/kubernetes";
import type * as pulumi from "@pulumi/pulumi";
import { parse } from "yaml";
import type { PostgresConfig } from "../config/postgres";
import { memoryToBytes } from "../config/validators";
import {
  dataClaim,
  restrictedContainerSecurity,
  restrictedPodSecurity,
  PART_OF,
  toResourceRequirements,
} from "../lib/k8s";
import { metricsSidecarProbes, restrictedJobPod } from "../lib/workload";
import { BACKUP_EGRESS_LABEL, backrestMemberWiring, memberArchiveParameters } from "./backup-jobs";
import { pgHbaEntries, postgresqlParameters } from "./content";
import {
  MEMBER_ENV,
  PASSWORD_ENV,
  READINESS_FAILURE_THRESHOLD,
  READINESS_PERIOD_SECONDS,
  patroniConfig,
  patroniDynamicConfig,
} from "./patroni";

export const PORT = 5432;
export const REST_PORT = 8008;
export const EXPORTER_PORT = 9187;
/** uid/gid of `postgres` in the official Debian-based image. */
export const PG_UID = 999;
export const DATA_MOUNT = "/var/lib/postgresql/data";
export const PGDATA = `${DATA_MOUNT}/pgdata`;
export const SOCKET_DIR = "/var/run/postgresql";
export const APP_DB = "stock_analysis";
export const APP_USER = "stock_analysis";
export const REPLICATION_USER = "replicator";
export const PASSWORD_KEYS = {
  superuser: "superuser-password",
  replication: "replication-password",
  app: "app-password",
  monitoring: "monitoring-password",
  restApi: "restapi-password",
} as const;
/** User of Patroni's REST API basic auth (asked for on POST/PATCH only; probes use GET). */
export const REST_USER = "patroni";
/** Label key Patroni writes `master` / `replica` into on each member's pod. */
export const ROLE_LABEL = "role";
/** Label key whose value is the Patroni scope (the cluster name). */
export const SCOPE_LABEL = "cluster-name";
/**
 * Pod labels of the database Jobs (backups, maintenance, the pooler's bootstrap): what the
 * members' and the Jobs' NetworkPolicies select on. Frozen: spread it where a record is built.
 */
export const DATABASE_JOB_LABELS: Readonly<Record<string, string>> = Object.freeze({
  "app.kubernetes.io/component": "database-jobs",
  "app.kubernetes.io/part-of": PART_OF,
});
/** Mount points inside the member container. */
const PATRONI_DIR = "/etc/patroni";
const SCRIPTS_DIR = "/scripts";
const SECRETS_DIR = "/secrets";
const EXPORTER_DIR = "/etc/postgres-exporter";
/** Key (file name) of the exporter's custom queries in its ConfigMap (exporter-queries.ts). */
export const EXPORTER_QUERIES_KEY = "queries.yaml";
/** The Kubernetes API server lives outside the pod network (443 behind the Service, 6443 direct). */
export const API_SERVER_PORTS = [443, 6443];

/** Everything the member builders need, all plain values. */
export interface MemberArgs {
  /** StatefulSet, Service and Patroni scope name (`postgresql`). */
  name: string;
  namespace: string;
  config: PostgresConfig;
  /** The image to run (a digest when built). */
  image: pulumi.Input<string>;
  /** Labels of the pods (include `app: <name>`). */
  labels: Record<string, string>;
  serviceAccountName: pulumi.Input<string>;
  /** Names of the Secret with the passwords and of the ConfigMaps. */
  passwordSecret: pulumi.Input<string>;
  patroniConfigMap: pulumi.Input<string>;
  scriptsConfigMap: pulumi.Input<string>;
  /** ConfigMap with the exporter's custom queries ({@link EXPORTER_QUERIES_KEY}). */
  exporterConfigMap: pulumi.Input<string>;
  /** Hash of everything mounted that needs a restart to take effect. */
  checksum: string;
  /** ConfigMap with pgbackrest.conf, when backups are enabled. */
  backrestConfigMap?: pulumi.Input<string>;
}

/** pgBackRest's env, volumes and mounts on the members (archive-push/get, backups by exec). */
function backrest(a: MemberArgs): ReturnType<typeof backrestMemberWiring> {
  return a.config.backup.enabled && a.backrestConfigMap
    ? backrestMemberWiring(a.config.backup, a.backrestConfigMap)
    : { env: [], volumes: [], volumeMounts: [] };
}

/** Pod selector of the members: `app` plus the scope label Patroni filters on. */
export function memberSelector(name: string): Record<string, string> {
  return { app: name, [SCOPE_LABEL]: name };
}

function patroniArgs(name: string, namespace: string, c: PostgresConfig) {
  return {
    scope: name,
    namespace,
    dataDir: PGDATA,
    binDir: "/usr/lib/postgresql/15/bin",
    pgpass: "/tmp/pgpass",
    superuser: "postgres",
    replicationUser: REPLICATION_USER,
    labels: { app: name },
    scopeLabel: SCOPE_LABEL,
    roleLabel: ROLE_LABEL,
    synchronous: c.synchronous,
    timing: {
      ttl: c.failover.ttl,
      loopWait: c.failover.loopWait,
      retryTimeout: c.failover.retryTimeout,
    },
    maximumLagOnFailover: c.failover.maximumLagOnFailover,
    parameters: {
      ...postgresqlParameters({
        memoryBytes: memoryToBytes(c.resources.limits.memory)!,
        members: c.replicas,
        maxConnections: c.maxConnections,
        maxSlotWalKeepSize: c.maxSlotWalKeepSize,
      }),
      // WAL archiving to the object store on whichever member leads (pgBackRest, backup-jobs.ts).
      ...memberArchiveParameters(c.backup),
    },
    pgHba: pgHbaEntries({ replicationUser: REPLICATION_USER }),
    socketDir: SOCKET_DIR,
    postBootstrap: `bash ${SCRIPTS_DIR}/pg-roles.sh`,
    callback: `bash ${SCRIPTS_DIR}/pg-roles.sh`,
  };
}

/** patroni.yml shared by every member (per-pod values come from {@link MEMBER_ENV}). */
export function memberPatroniYaml(name: string, namespace: string, c: PostgresConfig): string {
  return patroniConfig(patroniArgs(name, namespace, c));
}

/** The DCS-held configuration as JSON, the body pg-dcs-config.sh PUTs to Patroni's /config. */
export function dynamicConfigJson(name: string, c: PostgresConfig): string {
  // The dynamic configuration holds no namespace; any valid one builds the same document.
  return JSON.stringify(patroniDynamicConfig(patroniArgs(name, "default", c)), null, 2) + "\n";
}

const fieldEnv = (name: string, fieldPath: string): k8s.types.input.core.v1.EnvVar => ({
  name,
  valueFrom: { fieldRef: { fieldPath } },
});
const secretEnv = (
  name: string,
  secret: pulumi.Input<string>,
  key: string,
): k8s.types.input.core.v1.EnvVar => ({
  name,
  valueFrom: { secretKeyRef: { name: secret, key } },
});

/** Basic auth of Patroni's REST API, for members, patronictl and the control Jobs. */
function restApiAuthEnv(secret: pulumi.Input<string>): k8s.types.input.core.v1.EnvVar[] {
  return [
    { name: PASSWORD_ENV.restApiUsername, value: REST_USER },
    secretEnv(PASSWORD_ENV.restApiPassword, secret, PASSWORD_KEYS.restApi),
  ];
}

/** `name=url` of every member's REST API by its stable headless DNS name (pg-switchover.sh). */
export function memberRestUrls(name: string, namespace: string, replicas: number): string {
  return Array.from(
    { length: replicas },
    (_, i) =>
      `${name}-${i}=http://${name}-${i}.${name}-headless.${namespace}.svc.cluster.local:${REST_PORT}`,
  ).join(" ");
}

/**
 * The member's environment: its own name and addresses from the downward API, the two passwords
 * Patroni needs from the Secret, and the password files pg-roles.sh reads.
 */
export function memberEnv(a: MemberArgs): k8s.types.input.core.v1.EnvVar[] {
  const file = (key: string) => `${SECRETS_DIR}/${key}`;
  return [
    fieldEnv("POD_IP", "status.podIP"),
    fieldEnv(MEMBER_ENV.name, "metadata.name"),
    { name: MEMBER_ENV.podIp, value: "$(POD_IP)" },
    { name: MEMBER_ENV.pgConnect, value: `$(POD_IP):${PORT}` },
    { name: MEMBER_ENV.restConnect, value: `$(POD_IP):${REST_PORT}` },
    secretEnv(PASSWORD_ENV.superuser, a.passwordSecret, PASSWORD_KEYS.superuser),
    secretEnv(PASSWORD_ENV.replication, a.passwordSecret, PASSWORD_KEYS.replication),
    ...restApiAuthEnv(a.passwordSecret),
    { name: "PGDATA", value: PGDATA },
    { name: "PG_SOCKET_DIR", value: SOCKET_DIR },
    { name: "PG_SUPERUSER_PASSWORD_FILE", value: file(PASSWORD_KEYS.superuser) },
    { name: "PG_REPLICATION_PASSWORD_FILE", value: file(PASSWORD_KEYS.replication) },
    { name: "PG_APP_PASSWORD_FILE", value: file(PASSWORD_KEYS.app) },
    { name: "PG_MONITORING_PASSWORD_FILE", value: file(PASSWORD_KEYS.monitoring) },
    { name: "PG_APP_DB", value: APP_DB },
    { name: "PG_APP_USER", value: APP_USER },
    { name: "PG_REPLICATION_USER", value: REPLICATION_USER },
  ];
}

function memberContainer(a: MemberArgs): k8s.types.input.core.v1.Container {
  return {
    name: "postgresql",
    image: a.image,
    imagePullPolicy: "IfNotPresent",
    command: ["patroni", `${PATRONI_DIR}/patroni.yml`],
    ports: [
      { name: "postgresql", containerPort: PORT, protocol: "TCP" },
      { name: "patroni", containerPort: REST_PORT, protocol: "TCP" },
    ],
    env: [...memberEnv(a), ...backrest(a).env],
    resources: toResourceRequirements(a.config.resources),
    securityContext: restrictedContainerSecurity(true),
    // Patroni's view: the leader while it holds the lock; a replica while PostgreSQL runs and the
    // DCS was reached within ttl. A member whose Patroni died or that is cut off from the API
    // server drops out of both Services even though its role label is stale.
    readinessProbe: {
      httpGet: { path: "/readiness", port: "patroni" },
      // Short: a new leader joins the Service's endpoints at most one period after it is ready.
      periodSeconds: READINESS_PERIOD_SECONDS,
      timeoutSeconds: 1,
      failureThreshold: READINESS_FAILURE_THRESHOLD,
    },
    // Patroni's /liveness does not look at PostgreSQL: a hung postmaster is caught here
    // (test/postgres/liveness.test.ts); clones, rewinds and crash recovery are left alone.
    livenessProbe: {
      exec: { command: ["bash", `${SCRIPTS_DIR}/pg-liveness.sh`] },
      periodSeconds: 30,
      timeoutSeconds: 15,
      failureThreshold: 4,
    },
    volumeMounts: [
      { name: "data", mountPath: DATA_MOUNT },
      { name: "patroni", mountPath: PATRONI_DIR, readOnly: true },
      { name: "scripts", mountPath: SCRIPTS_DIR, readOnly: true },
      { name: "secrets", mountPath: SECRETS_DIR, readOnly: true },
      { name: "run", mountPath: SOCKET_DIR },
      { name: "tmp", mountPath: "/tmp" },
      ...backrest(a).volumeMounts,
    ],
  };
}

function exporterContainer(a: MemberArgs): k8s.types.input.core.v1.Container {
  return {
    name: "postgres-exporter",
    image: a.config.exporterImage,
    imagePullPolicy: "IfNotPresent",
    ports: [{ name: "metrics", containerPort: EXPORTER_PORT, protocol: "TCP" }],
    env: [
      { name: "DATA_SOURCE_URI", value: `localhost:${PORT}/postgres?sslmode=disable` },
      { name: "DATA_SOURCE_USER", value: "monitoring" },
      { name: "DATA_SOURCE_PASS_FILE", value: `${SECRETS_DIR}/${PASSWORD_KEYS.monitoring}` },
      // WAL-archiving state for the backup alerts (`--extend.query-path`, exporter-queries.ts).
      {
        name: "PG_EXPORTER_EXTEND_QUERY_PATH",
        value: `${EXPORTER_DIR}/${EXPORTER_QUERIES_KEY}`,
      },
    ],
    resources: toResourceRequirements(a.config.exporterResources),
    securityContext: restrictedContainerSecurity(true),
    ...metricsSidecarProbes("/"),
    volumeMounts: [
      { name: "secrets", mountPath: SECRETS_DIR, readOnly: true },
      { name: "exporter-queries", mountPath: EXPORTER_DIR, readOnly: true },
    ],
  };
}

/** StatefulSet spec of the members: Patroni as the main process, exporter sidecar. */
export function statefulSetSpec(a: MemberArgs): k8s.types.input.apps.v1.StatefulSetSpec {
  const c = a.config;
  const selector = memberSelector(a.name);
  const spread: k8s.types.input.core.v1.PodAffinityTerm = {
    topologyKey: "kubernetes.io/hostname",
    labelSelector: { matchLabels: selector },
  };
  return {
    serviceName: `${a.name}-headless`,
    replicas: c.replicas,
    // Members must find each other while not ready (bootstrap, failover): no ordered start.
    podManagementPolicy: "Parallel",
    updateStrategy: { type: "RollingUpdate" },
    selector: { matchLabels: selector },
    template: {
      metadata: {
        labels: {
          ...a.labels,
          ...selector,
          // archive-push reaches the object store (backup-jobs.ts' egress policy).
          ...(a.config.backup.enabled ? BACKUP_EGRESS_LABEL : {}),
        },
        annotations: {
          // `kubectl exec postgresql-0 -- psql …` (the manual's commands) needs no -c.
          "kubectl.kubernetes.io/default-container": "postgresql",
          "checksum/config": a.checksum,
          "prometheus.io/scrape": "true",
          "prometheus.io/port": String(EXPORTER_PORT),
        },
      },
      spec: {
        serviceAccountName: a.serviceAccountName,
        // Patroni keeps its leader lock and role labels through the API (Role: patroniRbacRules).
        automountServiceAccountToken: true,
        securityContext: restrictedPodSecurity(PG_UID),
        // Patroni stops PostgreSQL with a fast shutdown and hands over leadership first.
        terminationGracePeriodSeconds: 120,
        affinity: {
          podAntiAffinity:
            c.antiAffinity === "required"
              ? { requiredDuringSchedulingIgnoredDuringExecution: [spread] }
              : {
                  preferredDuringSchedulingIgnoredDuringExecution: [
                    { weight: 100, podAffinityTerm: spread },
                  ],
                },
        },
        containers: [memberContainer(a), exporterContainer(a)],
        volumes: [
          { name: "patroni", configMap: { name: a.patroniConfigMap } },
          { name: "scripts", configMap: { name: a.scriptsConfigMap, defaultMode: 0o555 } },
          {
            name: "exporter-queries",
            configMap: { name: a.exporterConfigMap, defaultMode: 0o444 },
          },
          {
            name: "secrets",
            secret: {
              secretName: a.passwordSecret,
              defaultMode: 0o440,
              items: Object.values(PASSWORD_KEYS).map((k) => ({ key: k, path: k })),
            },
          },
          { name: "run", emptyDir: { medium: "Memory", sizeLimit: "16Mi" } },
          { name: "tmp", emptyDir: { sizeLimit: "1Gi" } },
          ...backrest(a).volumes,
        ],
      },
    },
    volumeClaimTemplates: [dataClaim(a.labels, c.storage)],
  };
}

/**
 * Selectors of the three Services: read-write follows the leader by the role label Patroni
 * keeps on the pods, read selects replicas only, headless gives every member a stable name.
 */
export function serviceSelectors(
  name: string,
): Record<"rw" | "read" | "headless", Record<string, string>> {
  const members = memberSelector(name);
  return {
    rw: { ...members, [ROLE_LABEL]: "master" },
    read: { ...members, [ROLE_LABEL]: "replica" },
    headless: members,
  };
}

/** Labels of the Patroni control Jobs (config, switchover): allowed to reach the REST API. */
export function controlJobLabels(name: string): Record<string, string> {
  return {
    "app.kubernetes.io/component": "database-control",
    "app.kubernetes.io/part-of": "stock-analysis",
    "stock-analysis.io/patroni-control": name,
  };
}

/**
 * The members' NetworkPolicy: PostgreSQL from members, clients and database jobs; the REST API
 * from members and the control Jobs; the exporter from scrapers; out to members and the API
 * server (the DCS).
 */
export function memberNetworkPolicySpec(
  name: string,
  peers: {
    clients: k8s.types.input.networking.v1.NetworkPolicyPeer[];
    scrapers: k8s.types.input.networking.v1.NetworkPolicyPeer[];
    jobs: Record<string, string>;
  },
): k8s.types.input.networking.v1.NetworkPolicySpec {
  const members = { podSelector: { matchLabels: memberSelector(name) } };
  const control = { podSelector: { matchLabels: controlJobLabels(name) } };
  const tcp = (...ports: number[]) => ports.map((port) => ({ protocol: "TCP", port }));
  return {
    podSelector: { matchLabels: memberSelector(name) },
    policyTypes: ["Ingress", "Egress"],
    ingress: [
      { from: [members], ports: tcp(PORT, REST_PORT) },
      { from: [{ podSelector: { matchLabels: peers.jobs } }], ports: tcp(PORT) },
      { from: [control], ports: tcp(REST_PORT) },
      ...(peers.clients.length ? [{ from: peers.clients, ports: tcp(PORT) }] : []),
      ...(peers.scrapers.length ? [{ from: peers.scrapers, ports: tcp(EXPORTER_PORT) }] : []),
    ],
    egress: [
      { to: [members], ports: tcp(PORT, REST_PORT) },
      { to: [{ ipBlock: { cidr: "0.0.0.0/0" } }], ports: tcp(...API_SERVER_PORTS) },
    ],
  };
}

/** The control Jobs' NetworkPolicy: out to the members' REST API only. */
export function controlJobNetworkPolicySpec(
  name: string,
): k8s.types.input.networking.v1.NetworkPolicySpec {
  const tcp = (...ports: number[]) => ports.map((port) => ({ protocol: "TCP", port }));
  return {
    podSelector: { matchLabels: controlJobLabels(name) },
    policyTypes: ["Ingress", "Egress"],
    egress: [
      { to: [{ podSelector: { matchLabels: memberSelector(name) } }], ports: tcp(REST_PORT) },
    ],
  };
}

/**
 * What must restart the members when it changes: patroni.yml without its bootstrap copy of the
 * dynamic configuration (that reaches running members through the config Job), and the scripts.
 */
export function memberChecksum(patroniYaml: string, scripts: Record<string, string>): string {
  const doc = parse(patroniYaml) as { bootstrap?: { dcs?: unknown } };
  if (doc.bootstrap) delete doc.bootstrap.dcs;
  return crypto
    .createHash("sha256")
    .update(JSON.stringify(doc) + "\0" + JSON.stringify(scripts))
    .digest("hex")
    .slice(0, 16);
}

/** A short, stable hash for Job names: a new value means a new Job (Jobs are immutable). */
export function shortHash(...parts: string[]): string {
  return crypto.createHash("sha256").update(parts.join("\0")).digest("hex").slice(0, 8);
}

/**
 * Spec of a Patroni control Job (`pg-dcs-config.sh`, `pg-switchover.sh`): the member image (bash,
 * curl), the members' REST API addresses and its credentials; no Kubernetes API token.
 */
export function controlJobSpec(
  a: MemberArgs,
  job: {
    script: string;
    args?: string[];
    env?: Record<string, string>;
    /** Pod labels (workloadLabels of the Job); the control labels are added. */
    labels: Record<string, string>;
  },
): k8s.types.input.batch.v1.JobSpec {
  const labels = { ...job.labels, ...controlJobLabels(a.name) };
  return {
    // A rejected switchover or config must fail `pulumi up` visibly, not retry silently.
    backoffLimit: 1,
    activeDeadlineSeconds: 900,
    template: {
      metadata: { labels },
      spec: {
        ...restrictedJobPod({ uid: PG_UID }),
        containers: [
          {
            name: "patronictl",
            image: a.image,
            imagePullPolicy: "IfNotPresent",
            command: ["bash", `${SCRIPTS_DIR}/${job.script}`, ...(job.args ?? [])],
            env: [
              ...Object.entries({
                PATRONI_MEMBERS: memberRestUrls(a.name, a.namespace, a.config.replicas),
                ...(job.env ?? {}),
              }).map(([name, value]) => ({ name, value })),
              ...restApiAuthEnv(a.passwordSecret),
            ],
            resources: {
              requests: { cpu: "10m", memory: "64Mi" },
              limits: { memory: "128Mi" },
            },
            securityContext: restrictedContainerSecurity(true),
            volumeMounts: [
              { name: "patroni", mountPath: PATRONI_DIR, readOnly: true },
              { name: "scripts", mountPath: SCRIPTS_DIR, readOnly: true },
              { name: "tmp", mountPath: "/tmp" },
            ],
          },
        ],
        volumes: [
          { name: "patroni", configMap: { name: a.patroniConfigMap } },
          { name: "scripts", configMap: { name: a.scriptsConfigMap, defaultMode: 0o555 } },
          { name: "tmp", emptyDir: { sizeLimit: "64Mi" } },
        ],
      },
    },
  };
}
