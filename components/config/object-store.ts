import { z } from "zod";

/**
 * An S3-compatible object store location: the shape PostgreSQL's pgBackRest repositories
 * (`postgres.backup.repo`) and Redis's backups (`redis.backup.objectStore`) share. HTTPS only.
 */
export const objectStoreSchema = (defaults: { path: string; credentialsSecret: string }) =>
  z.strictObject({
    /** S3 endpoint host name (no scheme), e.g. `s3.ap-east-1.amazonaws.com` or `minio.backup.internal`. */
    endpoint: z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, {
      message: "must be a host name without scheme or port",
    }),
    /** TCP port of the endpoint (HTTPS). */
    port: z.number().int().min(1).max(65535).default(443),
    bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, {
      message: "must be an S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)",
    }),
    region: z.string().min(1).default("us-east-1"),
    /** `path` (https://endpoint/bucket/key, most self-hosted stores) or `host` (bucket.endpoint). */
    uriStyle: z.enum(["path", "host"]).default("path"),
    /** Prefix inside the bucket; one per stack and data set so nothing is shared. */
    path: z
      .string()
      .regex(/^\/[A-Za-z0-9._/-]*$/, {
        message: "must be an absolute path like /stock-analysis/prod",
      })
      .default(defaults.path),
    /**
     * Secret (same namespace) holding the store's keys as `access-key` and `secret-key`; they
     * reach the client only as environment variables from the Secret.
     */
    credentialsSecret: z.string().min(1).default(defaults.credentialsSecret),
    /** Secret with `ca.crt`, the CA that signed the endpoint's certificate; unset: system CAs. */
    caSecret: z.string().min(1).optional(),
  });
export type ObjectStoreConfig = z.output<ReturnType<typeof objectStoreSchema>>;
