import * as pulumi from "@pulumi/pulumi";
import type { RedisConfig } from "../config/redis";
import { ClusterPlacement, SecretKeyRef } from "../lib/k8s";
import { RedisBackup, REDIS_BACKUP_NAME } from "./redis-backup";
import { RedisBroker } from "./redis-broker";
import { RedisCluster } from "./redis-cluster";

/**
 * The Redis tier: cache cluster, Celery broker and (when enabled) their backups, plus the env
 * (from Secrets only) that the API and the workers need: `REDIS_URL` for the cache cluster and
 * `CELERY_BROKER_URL` / `CELERY_BROKER_TRANSPORT_OPTIONS` (JSON) for Celery.
 */
export function redisTier(
  placement: ClusterPlacement,
  args: {
    instance: string;
    config: RedisConfig;
    clientApps: string[];
    /** Apps that talk to the broker only (the Celery exporter reading queue lengths). */
    brokerOnlyClientApps?: string[];
    /** Celery queues whose lengths the broker's exporters export (see RedisBroker). */
    celeryQueues?: string[];
  },
  /** Options of the three components (the platform parents them). */
  opts?: pulumi.ComponentResourceOptions,
) {
  const clients = [
    ...args.clientApps,
    ...(args.config.backup.enabled ? [REDIS_BACKUP_NAME] : []),
  ].map((app) => ({ podLabels: { app }, ports: [] }));
  const cache = new RedisCluster(
    "redis",
    {
      ...placement,
      instance: args.instance,
      config: args.config,
      clients,
    },
    opts,
  );
  const broker = new RedisBroker(
    "redis-broker",
    {
      ...placement,
      instance: args.instance,
      config: args.config,
      clients: [
        ...clients,
        ...(args.brokerOnlyClientApps ?? []).map((app) => ({ podLabels: { app }, ports: [] })),
      ],
      celeryQueues: args.celeryQueues,
    },
    opts,
  );
  const backup = args.config.backup.enabled
    ? new RedisBackup(
        "redis-backup",
        {
          ...placement,
          instance: args.instance,
          config: args.config,
          clusterEntry: cache.dnsName.apply((d) => `${d}:${cache.port}`),
          clusterAuthSecretName: cache.authSecretName,
          broker: broker.address
            ? { address: broker.address }
            : { sentinels: broker.sentinelAddresses!, masterName: broker.masterName },
          brokerAuthSecretName: broker.authSecretName,
        },
        opts,
      )
    : undefined;
  const env: Record<string, SecretKeyRef> = {
    REDIS_URL: { secretName: cache.cacheUrlSecretName, key: cache.cacheUrlSecretKey },
    CELERY_BROKER_URL: { secretName: broker.celerySecretName, key: broker.celeryUrlKey },
    CELERY_BROKER_TRANSPORT_OPTIONS: {
      secretName: broker.celerySecretName,
      key: broker.celeryTransportOptionsKey,
    },
  };
  return { cache, broker, backup, env };
}
