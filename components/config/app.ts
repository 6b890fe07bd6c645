import { z } from "zod";
import { egressSchema } from "./egress";
import {
  cpuQuantity,
  memoryQuantity,
  memoryToBytes,
  pinnedImage,
  replicaCount,
} from "./validators";

/**
 * CPU/memory for one container, under the platform's one resource rule (docs/ARCHITECTURE.md,
 * "Resource rule"): requests for CPU and memory always, a memory limit always, a CPU limit never.
 * CPU is compressible: the request buys the container its share of a busy node (CFS weight),
 * while a limit adds a CFS quota that throttles a multi-threaded burst for the rest of each
 * 100 ms period — latency spikes for PostgreSQL, Redis and the API while the node may be idle.
 * Memory is not compressible, so its limit bounds what one leaking container can take.
 */
export const resourcesSchema = z
  .strictObject({
    requests: z.strictObject({ cpu: cpuQuantity, memory: memoryQuantity }),
    limits: z.strictObject({
      /** Not allowed (the resource rule above): size CPU with `requests.cpu` only. */
      cpu: z.unknown().optional(),
      memory: memoryQuantity,
    }),
  })
  .superRefine((r, ctx) => {
    if (r.limits.cpu !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["limits", "cpu"],
        message:
          "must not be set: the platform runs without CPU limits (CFS throttling stalls latency-critical containers); size CPU with requests.cpu",
      });
    }
    const reqMem = memoryToBytes(r.requests.memory);
    const limMem = memoryToBytes(r.limits.memory);
    if (reqMem !== undefined && limMem !== undefined && reqMem > limMem) {
      ctx.addIssue({
        code: "custom",
        path: ["limits", "memory"],
        message: `must be at least requests.memory (${r.requests.memory})`,
      });
    }
  })
  .transform((r) => ({ requests: r.requests, limits: { memory: r.limits.memory } }));
export type Resources = z.output<typeof resourcesSchema>;

export const autoscalingSchema = z
  .strictObject({
    /** Adds a HorizontalPodAutoscaler (autoscaling/v2). */
    enabled: z.boolean().default(false),
    minReplicas: replicaCount.min(1, { message: "must be at least 1" }).default(1),
    maxReplicas: replicaCount.min(1, { message: "must be at least 1" }).default(3),
    /** Average CPU utilisation (percent of requests) the HPA aims for. */
    targetCpuUtilization: z.number().int().min(1).max(100).default(70),
  })
  .superRefine((a, ctx) => {
    if (a.minReplicas > a.maxReplicas) {
      ctx.addIssue({
        code: "custom",
        path: ["minReplicas"],
        message: `must not exceed maxReplicas (${a.maxReplicas})`,
      });
    }
  });

/** Optional image build: when set, @pulumi/docker builds `context` and pushes it as `image`. */
export const buildSchema = z.strictObject({
  context: z.string().min(1),
  dockerfile: z.string().min(1).default("Dockerfile"),
});

function webServiceSchema(defaults: { image: string; port: number; metrics: boolean }) {
  return z
    .strictObject({
      image: pinnedImage.default(defaults.image),
      build: buildSchema.optional(),
      /**
       * Pods to run. Default 1. Not allowed while autoscaling is enabled: the HPA owns the
       * count then (starting at `autoscaling.minReplicas`), and a count we sent would undo it.
       */
      replicas: replicaCount.optional(),
      port: z.number().int().min(1024).max(65535).default(defaults.port),
      healthPath: z.string().startsWith("/").default("/health"),
      metrics: z
        .strictObject({
          enabled: z.boolean().default(defaults.metrics),
          path: z.string().startsWith("/").default("/metrics"),
        })
        .prefault({}),
      resources: resourcesSchema.default({
        requests: { cpu: "100m", memory: "128Mi" },
        limits: { memory: "256Mi" },
      }),
      autoscaling: autoscalingSchema.prefault({}),
      /** Paths that stay writable (emptyDir) under the read-only root filesystem. */
      writablePaths: z.array(z.string().startsWith("/")).default(["/tmp"]),
      /** Plain, non-secret environment variables. Secrets never go here. */
      env: z.record(z.string().regex(/^[A-Z_][A-Z0-9_]*$/), z.string()).default({}),
      /**
       * Destinations outside the cluster the pods may connect to (CIDRs and ports), added to
       * the workload's NetworkPolicy. Default: none (only in-cluster peers and DNS).
       */
      egress: egressSchema,
    })
    .superRefine((s, ctx) => {
      if (s.autoscaling.enabled && s.replicas !== undefined) {
        const { minReplicas, maxReplicas } = s.autoscaling;
        ctx.addIssue({
          code: "custom",
          path: ["replicas"],
          message: `is owned by the autoscaler while autoscaling.enabled is true (it scales ${minReplicas}..${maxReplicas}): remove the key, or set autoscaling.minReplicas/maxReplicas`,
        });
      }
    })
    .transform((s) => ({
      ...s,
      /** Steady-state pods: the configured count, or the autoscaler's floor. */
      replicas: s.replicas ?? (s.autoscaling.enabled ? s.autoscaling.minReplicas : 1),
    }));
}

export const apiSchema = webServiceSchema({
  image: "stock-analysis:1.0.0",
  port: 8000,
  metrics: true,
});
export const frontendSchema = webServiceSchema({
  image: "stock-analysis-frontend:1.0.0",
  port: 8080,
  metrics: false,
});
export type WebServiceConfig = z.output<typeof apiSchema>;

export const celerySchema = z.strictObject({
  image: pinnedImage.default("stock-analysis:1.0.0"),
  build: buildSchema.optional(),
  replicas: replicaCount.default(1),
  /** The Celery application module passed to `celery -A`. */
  app: z.string().min(1).default("app.worker"),
  concurrency: z.number().int().min(1).max(64).default(2),
  /** No `,`, `=` or spaces: `--queues` and redis_exporter's key list are comma/`=` separated. */
  queues: z
    .array(z.string().regex(/^[^,=\s]+$/, "no ',', '=' or whitespace"))
    .min(1)
    .default(["celery"]),
  resources: resourcesSchema.default({
    requests: { cpu: "100m", memory: "256Mi" },
    limits: { memory: "512Mi" },
  }),
  /** Seconds the liveness `celery inspect ping` waits for this worker's reply. */
  pingTimeoutSeconds: z.number().int().min(1).max(60).default(10),
  env: z.record(z.string().regex(/^[A-Z_][A-Z0-9_]*$/), z.string()).default({}),
  /**
   * Destinations outside the cluster the workers may connect to (market-data APIs: CIDRs and
   * ports), added to their NetworkPolicy. Default: none (only the broker, PostgreSQL and DNS).
   */
  egress: egressSchema,
});
export type WorkerConfig = z.output<typeof celerySchema>;
