import { z } from "zod";
import { resourcesSchema } from "./app";
import { objectStoreSchema } from "./object-store";
import { cronSchedule, memoryQuantity, pinnedImage } from "./validators";

/** Official Redis image; the real-Redis tests run the same 7.0 release (Debian's redis-server 7.0.15). */
export const REDIS_IMAGE = "redis:7.0.15-bookworm";
/** rclone's official image, the release Debian ships (bookworm's rclone 1.60.1) that the tests run. */
export const RCLONE_IMAGE = "rclone/rclone:1.60.1";
export const REDIS_EXPORTER_IMAGE = "oliver006/redis_exporter:v1.66.0";

const storageSchema = z.strictObject({
  size: memoryQuantity.default("1Gi"),
  /** StorageClass of the PVCs; the cluster default when unset. */
  storageClass: z.string().min(1).optional(),
});

const tinyResources = {
  requests: { cpu: "25m", memory: "48Mi" },
  limits: { memory: "128Mi" },
};

export const redisSchema = z
  .strictObject({
    image: pinnedImage.default(REDIS_IMAGE),
    exporterImage: pinnedImage.default(REDIS_EXPORTER_IMAGE),
    /** The redis_exporter sidecar in every Redis pod (cluster and broker). */
    exporterResources: resourcesSchema.default({
      requests: { cpu: "10m", memory: "16Mi" },
      limits: { memory: "32Mi" },
    }),
    /** Redis Cluster: the API cache. */
    cluster: z
      .strictObject({
        /** Masters (slot owners); Redis Cluster needs at least 3. Raising it adds and rebalances. */
        masters: z.number().int().min(3).max(50).default(3),
        replicasPerMaster: z.number().int().min(0).max(5).default(0),
        /** A master unreachable this long is failed over to its replica. */
        nodeTimeoutMs: z.number().int().min(1000).max(60000).default(5000),
        resources: resourcesSchema.default(tinyResources),
        storage: storageSchema.prefault({}),
      })
      .prefault({}),
    /** Celery's broker: one standalone server, or a Sentinel-managed primary with replicas. */
    broker: z
      .strictObject({
        mode: z.enum(["standalone", "sentinel"]).default("standalone"),
        /** Redis servers in sentinel mode (primary + replicas), each with a Sentinel sidecar. */
        replicas: z.number().int().min(3).max(7).default(3),
        /** Sentinel's down-after-milliseconds. */
        downAfterMs: z.number().int().min(1000).max(60000).default(5000),
        resources: resourcesSchema.default(tinyResources),
        sentinelResources: resourcesSchema.default({
          requests: { cpu: "10m", memory: "16Mi" },
          limits: { memory: "32Mi" },
        }),
        storage: storageSchema.prefault({}),
        /** Seconds before Celery redelivers an unacknowledged task; above the longest task. */
        visibilityTimeoutS: z.number().int().min(60).default(3600),
      })
      .prefault({}),
    backup: z
      .strictObject({
        enabled: z.boolean().default(true),
        /** In the stack's `timeZone`, like every schedule. */
        schedule: cronSchedule.default("0 3 * * *"),
        retentionDays: z.number().int().min(1).default(30),
        /** Backups never pruned however old: the newest N. */
        keepMin: z.number().int().min(1).default(7),
        resources: resourcesSchema.default({
          requests: { cpu: "25m", memory: "64Mi" },
          limits: { memory: "256Mi" },
        }),
        /**
         * Where backups are kept: an S3-compatible object store (uploaded by rclone, pruned there
         * by retentionDays/keepMin, restored from there). Unset: the `redis-backups` PVC, which
         * shares the cluster's fate; prod sets it.
         */
        objectStore: objectStoreSchema({
          path: "/stock-analysis/redis",
          credentialsSecret: "redis-backup-s3",
        }).optional(),
        /** rclone image that supplies the client binary to the backup and restore pods. */
        rcloneImage: pinnedImage.default(RCLONE_IMAGE),
        /** The PVC when objectStore is unset; else the pod's scratch volume (emptyDir) limit. */
        storage: storageSchema.prefault({ size: "5Gi" }),
      })
      .prefault({}),
  })
  .superRefine((r, ctx) => {
    if (r.broker.mode === "sentinel" && r.broker.replicas % 2 === 0) {
      ctx.addIssue({
        code: "custom",
        path: ["broker", "replicas"],
        message: "must be odd in sentinel mode (one Sentinel per server; a majority must agree)",
      });
    }
  });
export type RedisConfig = z.output<typeof redisSchema>;
