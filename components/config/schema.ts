import { z } from "zod";
import { apiSchema, celerySchema, frontendSchema } from "./app";
import { alertSecretSchemas, monitoringSchema } from "./monitoring";
import { migrationSchema } from "./migration";
import {
  clusterSchema,
  ingressSchema,
  registryPasswordSchema,
  registrySchema,
  timeZoneSchema,
} from "./platform";
import { redisSchema } from "./redis";
import { postgresSchema } from "./postgres";
import { dnsLabel, hasRegistryHost } from "./validators";

/**
 * Every stack setting, one top-level Pulumi config key per entry (`stock-analysis:<key>`).
 * Each capability owns the schema of its key; defaults suit a laptop cluster and
 * Pulumi.prod.yaml overrides them. Unknown keys are rejected, so a typo fails the preview.
 */
export const platformSchema = z
  .strictObject({
    cluster: clusterSchema.prefault({}),
    namespace: dnsLabel.default("stock-analysis"),
    /** Time zone of every CronJob schedule (tz database name); prod: the operations team's clock. */
    timeZone: timeZoneSchema.default("Etc/UTC"),
    registry: registrySchema.optional(),
    registryPassword: registryPasswordSchema.optional(),
    api: apiSchema.prefault({}),
    /** Database migration Job that runs before each new API version rolls out. */
    migration: migrationSchema.prefault({}),
    frontend: frontendSchema.prefault({}),
    celery: celerySchema.prefault({}),
    ingress: ingressSchema.prefault({}),
    redis: redisSchema.prefault({}),
    postgres: postgresSchema.prefault({}),
    monitoring: monitoringSchema.prefault({}),
    ...alertSecretSchemas,
  })
  .superRefine((c, ctx) => {
    if (c.registry !== undefined && c.registryPassword === undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["registryPassword"],
        message:
          "is a required secret when registry is set: pulumi config set --secret registryPassword <token>",
      });
    }
    // Only kind can run an image that was built but not pushed (`kind load`).
    if (c.cluster.mode === "existing" && c.postgres.build && !hasRegistryHost(c.postgres.image)) {
      ctx.addIssue({
        code: "custom",
        path: ["postgres", "image"],
        message:
          "must name a registry the cluster pulls from (registry.example.com/stock-analysis-postgres:<tag>) " +
          "when it is built in cluster mode existing; or set postgres.build: false with a prebuilt image",
      });
    }
  });

/** Top-level keys that hold secrets: their values never appear in error messages. */
export const secretConfigKeys: ReadonlySet<string> = new Set([
  "registryPassword",
  ...Object.keys(alertSecretSchemas),
]);

export type PlatformConfig = z.output<typeof platformSchema>;
