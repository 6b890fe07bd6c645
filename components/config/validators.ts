import { CronExpressionParser } from "cron-parser";
import { z } from "zod";

/** Kubernetes CPU quantity ("500m", "1", "1.5") to millicores, or undefined when malformed. */
export function cpuToMillicores(q: string): number | undefined {
  const m = /^([0-9]+(?:\.[0-9]+)?)(m?)$/.exec(q.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  return m[2] === "m" ? n : n * 1000;
}

const memoryUnits: Record<string, number> = {
  "": 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
};

/** Kubernetes memory/storage quantity ("256Mi", "2Gi", "1G") to bytes, or undefined when malformed. */
export function memoryToBytes(q: string): number | undefined {
  const m = /^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(q.trim());
  if (!m) return undefined;
  return Number(m[1]) * memoryUnits[m[2] ?? ""];
}

export const cpuQuantity = z
  .string()
  .refine((v) => cpuToMillicores(v) !== undefined && cpuToMillicores(v)! > 0, {
    message: 'must be a positive Kubernetes CPU quantity such as "250m" or "2"',
  });

export const memoryQuantity = z
  .string()
  .refine((v) => memoryToBytes(v) !== undefined && memoryToBytes(v)! > 0, {
    message: 'must be a positive Kubernetes memory quantity such as "256Mi" or "2Gi"',
  });

export const replicaCount = z
  .number({ message: "must be a whole number" })
  .int({ message: "must be a whole number of replicas" })
  .min(0, { message: "must not be negative" });

const cronMacros = new Set(["@yearly", "@annually", "@monthly", "@weekly", "@daily", "@hourly"]);

/** The five-field cron syntax Kubernetes CronJobs accept (no seconds field). */
export const cronSchedule = z.string().refine(
  (v) => {
    if (cronMacros.has(v.trim())) return true;
    if (v.trim().split(/\s+/).length !== 5) return false;
    try {
      CronExpressionParser.parse(v);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'must be a five-field cron expression such as "0 2 * * *"' },
);

/**
 * True when an image reference is pinned: an explicit tag other than "latest", or a digest.
 * The tag is whatever follows the last ":" after the last "/" (a registry port is not a tag).
 */
export function isPinnedImage(ref: string): boolean {
  if (/@sha256:[a-f0-9]{64}$/.test(ref)) return true;
  const lastSegment = ref.slice(ref.lastIndexOf("/") + 1);
  const colon = lastSegment.lastIndexOf(":");
  if (colon < 0) return false;
  const tag = lastSegment.slice(colon + 1);
  return tag.length > 0 && tag !== "latest" && /^[\w][\w.-]{0,127}$/.test(tag);
}

export const pinnedImage = z.string().refine(isPinnedImage, {
  message: 'must be pinned by a tag other than "latest" (repo:1.2.3) or by digest (repo@sha256:…)',
});

export const dnsLabel = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, { message: "must be a DNS-1123 label" });

export const hostname = z
  .string()
  .regex(/^(\*\.)?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/, {
    message: "must be a fully qualified DNS name",
  });

/** Marker the config loader wraps around values set with `pulumi config set --secret`. */
export interface SecretValue<T = string> {
  readonly secret: true;
  readonly value: T;
}

export function isSecretValue(v: unknown): v is SecretValue<unknown> {
  return typeof v === "object" && v !== null && (v as SecretValue<unknown>).secret === true;
}

/**
 * A value that must be set with `pulumi config set --secret` and that satisfies `inner`;
 * plain text is refused so credentials never sit unencrypted in Pulumi.<stack>.yaml.
 */
export function secretOf<T extends z.ZodType>(inner: T) {
  return z.custom<SecretValue<z.output<T>>>(
    (v) => isSecretValue(v) && inner.safeParse(v.value).success,
    {
      message:
        "must be set as a secret (pulumi config set --secret …) and be non-empty; plain text is refused",
    },
  );
}

/** `registry.example.com/x:1`, `localhost:5000/x:1` name a registry; `x:1`, `org/x:1` do not. */
export function hasRegistryHost(image: string): boolean {
  const first = image.split("/")[0];
  return (
    image.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost")
  );
}
