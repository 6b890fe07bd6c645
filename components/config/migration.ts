import { z } from "zod";
import { resourcesSchema } from "./app";
import { memoryQuantity } from "./validators";

/** The manual's upgrade step, in one transaction: any error rolls the whole file back. */
export const DEFAULT_MIGRATION_COMMAND = [
  "psql",
  "--no-psqlrc",
  "--single-transaction",
  "--set=ON_ERROR_STOP=1",
  "--file=/migrations/upgrade.sql",
  "$(DATABASE_URL)",
];

/**
 * Database migration before each API rollout (Job `stock-analysis-api-migrate-<hash>`): a fresh
 * pg_dump, then `command` in the API's image. The API and Celery Deployments update only after
 * it succeeded; a failure fails `pulumi up` with the old version still serving.
 */
export const migrationSchema = z.strictObject({
  /** Run the migration Job before the API (and Celery) roll out a new image or command. */
  enabled: z.boolean().default(false),
  /**
   * Command run in the API's image with `DATABASE_URL` in its environment (`$(DATABASE_URL)`
   * in an argument is expanded by Kubernetes). Default: `psql --single-transaction
   * --set=ON_ERROR_STOP=1 --file=/migrations/upgrade.sql $(DATABASE_URL)` (the manual's step).
   * A new image or command makes a new Job, so the command must be safe to run once per image.
   */
  command: z.array(z.string().min(1)).min(1).default(DEFAULT_MIGRATION_COMMAND),
  /** Minutes the backup plus the migration may take; beyond, the Job and the update fail. */
  timeoutMinutes: z.number().int().min(1).max(720).default(30),
  backup: z
    .strictObject({
      /** pg_dump of the app database before the migration (strongly recommended). */
      enabled: z.boolean().default(true),
      /** Pre-migration dumps kept on the volume, newest first. */
      keep: z.number().int().min(1).max(50).default(5),
      /** Size of the PVC `stock-analysis-api-migrate-backups` holding the dumps. */
      size: memoryQuantity.default("5Gi"),
      /** StorageClass of that PVC; unset uses the cluster default. */
      storageClass: z.string().min(1).optional(),
    })
    .prefault({}),
  /** Resources of the backup and the migration container each. */
  resources: resourcesSchema.default({
    requests: { cpu: "100m", memory: "256Mi" },
    limits: { memory: "512Mi" },
  }),
});
export type MigrationConfig = z.output<typeof migrationSchema>;
