import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { ObjectStoreConfig } from "../config/object-store";
import type { RedisConfig } from "../config/redis";
import {
  ClusterPlacement,
  plainEnv,
  restrictedContainerSecurity,
  restrictedPodSecurity,
  selectorLabels,
  toResourceRequirements,
  workloadLabels,
} from "../lib/k8s";
import { allowPolicySpec } from "../lib/network";
import {
  REDIS_PORT,
  REDIS_UID,
  SCRIPTS_PATH,
  SENTINEL_PORT,
  redisVolumes,
  scriptsData,
} from "./pods";

export interface RedisBackupArgs extends ClusterPlacement {
  /** app.kubernetes.io/instance: the stack name. */
  instance: string;
  /** Validated Redis settings (image, `backup`). */
  config: RedisConfig;
  /** Any cluster node as `host:port` (the client Service). */
  clusterEntry: pulumi.Input<string>;
  clusterAuthSecretName: pulumi.Input<string>;
  /** Standalone broker `host:port`, or the sentinels (`host:port` each) of a Sentinel broker. */
  broker:
    { address: pulumi.Input<string> } | { sentinels: pulumi.Input<string[]>; masterName: string };
  brokerAuthSecretName: pulumi.Input<string>;
}

export const REDIS_BACKUP_NAME = "redis-backup";
export const REDIS_RESTORE_NAME = "redis-restore";
const BACKUP_PATH = "/backups";
/** Where the init container puts the rclone binary for the Redis-image container. */
const RCLONE_DIR = "/opt/rclone";
const CA_DIR = "/etc/redis-backup-s3-ca";
/** Alpine's CA bundle in rclone's image, copied beside the binary. */
const RCLONE_CA_BUNDLE = "ca-certificates.crt";

/**
 * Environment of object-store.sh for a configured store: plain settings, the CA path, and the
 * keys from the credentials Secret (env from secretKeyRef, never in the pod spec or a ConfigMap).
 */
export function objectStoreEnv(store: ObjectStoreConfig): k8s.types.input.core.v1.EnvVar[] {
  const key = (name: string, k: string) => ({
    name,
    valueFrom: { secretKeyRef: { name: store.credentialsSecret, key: k } },
  });
  return [
    ...plainEnv({
      S3_ENDPOINT: store.endpoint,
      S3_PORT: String(store.port),
      S3_BUCKET: store.bucket,
      S3_REGION: store.region,
      S3_URI_STYLE: store.uriStyle,
      S3_PREFIX: store.path,
      RCLONE: `${RCLONE_DIR}/rclone`,
      // The Redis image keeps no CA bundle (its build purges ca-certificates): public CAs come
      // from rclone's image with the binary; a private store's CA from its Secret.
      S3_CA_FILE: store.caSecret ? `${CA_DIR}/ca.crt` : `${RCLONE_DIR}/${RCLONE_CA_BUNDLE}`,
    }),
    key("RCLONE_CONFIG_STORE_ACCESS_KEY_ID", "access-key"),
    key("RCLONE_CONFIG_STORE_SECRET_ACCESS_KEY", "secret-key"),
  ];
}

/**
 * Scheduled backups of the cache cluster and the broker: a CronJob running backup.sh, plus a
 * suspended CronJob `redis-restore` that is only a template for the operator's
 * `scripts/redis-restore` (restore.sh with the chosen backup). With `backup.objectStore` the
 * backups go to the S3-compatible store (object-store.sh; rclone's binary comes from its official
 * image through an init container) and the pod's scratch space is an emptyDir; without it they
 * stay on the PVC `redis-backups`.
 */
export class RedisBackup extends pulumi.ComponentResource {
  public readonly cronJobName: pulumi.Output<string>;
  public readonly restoreTemplateName: pulumi.Output<string>;
  /** The backups PVC; undefined when backups go to an object store. */
  public readonly pvcName: pulumi.Output<string> | undefined;

  constructor(name: string, args: RedisBackupArgs, opts?: pulumi.ComponentResourceOptions) {
    super("stock-analysis:redis:RedisBackup", name, {}, opts);
    const cfg = args.config;
    const bk = cfg.backup;
    const labels = workloadLabels(REDIS_BACKUP_NAME, "backup", args.instance);
    const selector = selectorLabels(REDIS_BACKUP_NAME);
    const child = { parent: this, provider: args.provider };
    const meta = (n: string) => ({ name: n, namespace: args.namespace, labels });

    const scripts = new k8s.core.v1.ConfigMap(
      `${name}-scripts`,
      {
        metadata: meta(`${REDIS_BACKUP_NAME}-scripts`),
        data: scriptsData(["lib.sh", "backup.sh", "restore.sh", "object-store.sh"]),
      },
      child,
    );
    const store = bk.objectStore;
    const pvc = store
      ? undefined
      : new k8s.core.v1.PersistentVolumeClaim(
          `${name}-pvc`,
          {
            metadata: meta("redis-backups"),
            spec: {
              accessModes: ["ReadWriteOnce"],
              storageClassName: bk.storage.storageClass,
              resources: { requests: { storage: bk.storage.size } },
            },
          },
          child,
        );
    this.pvcName = pvc?.metadata.name;

    new k8s.networking.v1.NetworkPolicy(
      `${name}-netpol`,
      {
        metadata: meta(`${REDIS_BACKUP_NAME}-allow`),
        spec: withObjectStoreEgress(
          allowPolicySpec(selector, {
            egressTo: [
              { podLabels: { app: "redis" }, ports: [REDIS_PORT] },
              { podLabels: { app: "redis-broker" }, ports: [REDIS_PORT, SENTINEL_PORT] },
            ],
          }),
          store,
        ),
      },
      child,
    );

    const brokerEnv: k8s.types.input.core.v1.EnvVar[] =
      "address" in args.broker
        ? [{ name: "BROKER_ADDR", value: args.broker.address }]
        : [
            {
              name: "BROKER_SENTINELS",
              value: pulumi.output(args.broker.sentinels).apply((s) => s.join(" ")),
            },
            { name: "BROKER_MASTER_NAME", value: args.broker.masterName },
          ];
    const env = [
      { name: "REDIS_CLUSTER_ENTRY", value: args.clusterEntry },
      ...brokerEnv,
      ...plainEnv({
        BACKUP_DIR: BACKUP_PATH,
        REDIS_PASSWORD_FILE: "/etc/redis-auth/password",
        BROKER_PASSWORD_FILE: "/etc/redis-broker-auth/password",
        RETENTION_DAYS: String(bk.retentionDays),
        KEEP_MIN: String(bk.keepMin),
        TMPDIR: "/tmp",
      }),
      ...(store ? objectStoreEnv(store) : []),
    ];
    const podSpec = (
      container: string,
      command: string[],
      activeDeadlineSeconds: number,
      extraEnv: Record<string, string> = {},
    ): k8s.types.input.batch.v1.JobTemplateSpec => ({
      metadata: { labels },
      spec: {
        backoffLimit: 1,
        activeDeadlineSeconds,
        template: {
          metadata: { labels },
          spec: {
            restartPolicy: "Never",
            automountServiceAccountToken: false,
            securityContext: restrictedPodSecurity(REDIS_UID),
            // rclone is one static binary: copied (with the image's CA bundle) from its official
            // image, run by the scripts in the Redis container.
            ...(store
              ? {
                  initContainers: [
                    {
                      name: "rclone-binary",
                      image: bk.rcloneImage,
                      imagePullPolicy: "IfNotPresent",
                      command: [
                        "cp",
                        "/usr/local/bin/rclone",
                        `/etc/ssl/certs/${RCLONE_CA_BUNDLE}`,
                        `${RCLONE_DIR}/`,
                      ],
                      resources: toResourceRequirements(bk.resources),
                      securityContext: restrictedContainerSecurity(true),
                      volumeMounts: [{ name: "rclone", mountPath: RCLONE_DIR }],
                    },
                  ],
                }
              : {}),
            containers: [
              {
                name: container,
                image: cfg.image,
                imagePullPolicy: "IfNotPresent",
                command,
                env: [...env, ...plainEnv(extraEnv)],
                resources: toResourceRequirements(bk.resources),
                securityContext: restrictedContainerSecurity(true),
                volumeMounts: [
                  { name: "backups", mountPath: BACKUP_PATH },
                  { name: "tmp", mountPath: "/tmp" },
                  { name: "scripts", mountPath: SCRIPTS_PATH, readOnly: true },
                  { name: "auth", mountPath: "/etc/redis-auth", readOnly: true },
                  { name: "broker-auth", mountPath: "/etc/redis-broker-auth", readOnly: true },
                  ...(store ? [{ name: "rclone", mountPath: RCLONE_DIR, readOnly: true }] : []),
                  ...(store?.caSecret
                    ? [{ name: "s3-ca", mountPath: CA_DIR, readOnly: true }]
                    : []),
                ],
              },
            ],
            volumes: [
              pvc
                ? { name: "backups", persistentVolumeClaim: { claimName: pvc.metadata.name } }
                : // Object store: the backup is staged here (and a restore downloads it here).
                  { name: "backups", emptyDir: { sizeLimit: bk.storage.size } },
              ...(store ? [{ name: "rclone", emptyDir: { sizeLimit: "256Mi" } }] : []),
              ...(store?.caSecret
                ? [{ name: "s3-ca", secret: { secretName: store.caSecret, defaultMode: 0o444 } }]
                : []),
              // restore.sh loads each RDB into a scratch server here.
              { name: "tmp", emptyDir: { sizeLimit: "2Gi" } },
              ...redisVolumes({
                scriptsConfigMap: scripts.metadata.name,
                authSecrets: [
                  { volume: "auth", secretName: args.clusterAuthSecretName },
                  { volume: "broker-auth", secretName: args.brokerAuthSecretName },
                ],
              }),
            ],
          },
        },
      },
    });

    const cron = new k8s.batch.v1.CronJob(
      `${name}-cronjob`,
      {
        metadata: {
          ...meta(REDIS_BACKUP_NAME),
          // The policy pack's backup contract: the data set backed up and for how long.
          labels: { ...labels, "backup.stock-analysis.io/target": "redis" },
          annotations: {
            "backup.stock-analysis.io/retention-days": String(bk.retentionDays),
            "backup.stock-analysis.io/destination": store
              ? `s3://${store.bucket}${store.path}`
              : "pvc/redis-backups",
          },
        },
        spec: {
          schedule: bk.schedule,
          timeZone: args.timeZone ?? "Etc/UTC",
          concurrencyPolicy: "Forbid",
          startingDeadlineSeconds: 3600,
          successfulJobsHistoryLimit: 3,
          failedJobsHistoryLimit: 3,
          jobTemplate: podSpec("backup", ["bash", `${SCRIPTS_PATH}/backup.sh`], 3600),
        },
      },
      child,
    );
    this.cronJobName = cron.metadata.name;

    const restore = new k8s.batch.v1.CronJob(
      `${name}-restore-template`,
      {
        metadata: meta(REDIS_RESTORE_NAME),
        spec: {
          // Never scheduled: `scripts/redis-restore` creates Jobs from it with the chosen backup.
          suspend: true,
          schedule: "0 0 1 1 *",
          timeZone: args.timeZone ?? "Etc/UTC",
          concurrencyPolicy: "Forbid",
          startingDeadlineSeconds: 60,
          successfulJobsHistoryLimit: 1,
          failedJobsHistoryLimit: 1,
          jobTemplate: podSpec(
            "restore",
            ["bash", `${SCRIPTS_PATH}/restore.sh`, "$(RESTORE_BACKUP)", "$(RESTORE_TARGET)"],
            7200,
            { RESTORE_BACKUP: "latest", RESTORE_TARGET: "cluster" },
          ),
        },
      },
      child,
    );
    this.restoreTemplateName = restore.metadata.name;

    this.registerOutputs({
      cronJobName: this.cronJobName,
      restoreTemplateName: this.restoreTemplateName,
      pvcName: this.pvcName,
    });
  }
}

/** Adds egress to the object store's port (its address is outside the cluster, so any IP). */
function withObjectStoreEgress(
  spec: k8s.types.input.networking.v1.NetworkPolicySpec,
  store: ObjectStoreConfig | undefined,
): k8s.types.input.networking.v1.NetworkPolicySpec {
  if (!store) return spec;
  const egress = (spec.egress ?? []) as k8s.types.input.networking.v1.NetworkPolicyEgressRule[];
  return {
    ...spec,
    egress: [
      ...egress,
      {
        to: [{ ipBlock: { cidr: "0.0.0.0/0" } }, { ipBlock: { cidr: "::/0" } }],
        ports: [{ protocol: "TCP", port: store.port }],
      },
    ],
  };
}
