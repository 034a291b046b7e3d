/**
 * The submit body (`POST /run`, `/runsync`): its checks, and the job policy it resolves to
 * together with the endpoint's defaults.
 */
import { z } from "zod";
import { BLOCKLIST, LIMITS, WORKER_TAGS } from "../shared/limits";
import { tagKey, tagsOf } from "../shared/tags";
import type { JobKind, JobPolicy, TtlMode } from "./record";
import { RetryBackoff } from "./backoff";

/** An RFC 3339 date-time with a Z or an offset, in capitals. */
const RUN_AT = z.iso.datetime({ offset: true });

const ms = (r: { min: number; max: number }) => z.number().int().min(r.min).max(r.max);

export const SubmitPolicy = z
  .object({
    executionTimeout: ms(LIMITS.executionTimeout).optional(),
    ttl: ms(LIMITS.ttl).optional(),
    ttlMode: z
      .enum(["queue", "lifespan"])
      .meta({ description: 'What ttl bounds: "queue" (the wait for a worker; default) or "lifespan" (RunPod since 2026: the whole life from submission, then the job is gone whatever its state).' })
      .optional(),
    lowPriority: z.boolean().optional(),
    maxAttempts: ms(LIMITS.maxAttempts).optional(),
    heartbeatTimeout: ms(LIMITS.heartbeatTimeout).optional(),
    retryOnError: z.boolean().optional(),
    retryBackoff: RetryBackoff.nullable().optional().meta({ description: "Wait before the next attempt after an error or a lost lease (null: none, overriding the endpoint's)." }),
  })
  .strict();

/**
 * Everything we act on is checked. RunPod's `s3Config` (a JSON object, handed to workers as sent)
 * is checked for shape here and for size by the route; `webhookV2` is kept when it is a string of
 * at most 2,048 characters and otherwise ignored, never refused (RUNPOD-WIRE-2 §4.5).
 */
export const SubmitBody = z.object({
  // RunPod requires `input`; a JSON null is no input at all (and reads as missing to workers).
  // Any other JSON value, `{}`, `0`, `""`, `false` or `[]` included, is the job's input.
  // The meta says in the OpenAPI document what the refinement and the protocol check enforce.
  input: z
    .unknown()
    .refine((v) => v !== undefined && v !== null, { message: "input is required and must not be null (send {} for an empty input)" })
    .meta({ description: "The job's input: any JSON value but null ({} for an empty input).", not: { type: "null" } }),
  webhook: z.url({ protocol: /^https?$/ }).max(2048).meta({ pattern: "^https?://" }).optional(),
  policy: SubmitPolicy.optional(),
  priority: z.number().int().min(LIMITS.priority.min).max(LIMITS.priority.max).optional(),
  idempotencyKey: z.string().min(1).max(255).optional(),
  delay: z
    .number()
    .int()
    .min(LIMITS.delay.min)
    .max(LIMITS.delay.max)
    .meta({ description: 'ms to wait before the job is ready (SCHEDULED meanwhile: clients read IN_QUEUE with queue.reason "scheduled"); its queue TTL counts from then. Not with runAt.' })
    .optional(),
  runAt: z
    .string()
    // RFC 3339 (§5.6) allows a lowercase "t" and "z": checked as their capitals (Date.parse reads both).
    .refine((s) => RUN_AT.safeParse(s.toUpperCase()).success, "Invalid ISO datetime: RFC 3339 with a Z or an offset, e.g. 2026-12-01T10:00:00Z")
    .meta({
      format: "date-time",
      description: "When the job becomes ready (RFC 3339, at most 7 days ahead; a past time: at once); its queue TTL counts from then. Not with delay.",
    })
    .optional(),
  sequenceKey: z.string().min(1).max(255).optional(),
  concurrencyKey: z
    .string()
    .min(1)
    .max(255)
    .meta({ description: "A flow key (e.g. a tenant id): the key's jobs count against its concurrency limit (the endpoint's keyConcurrency or the key's override) and take turns with other keys' jobs. Not with sequenceKey; with rateLimitKey only if the same." })
    .optional(),
  rateLimitKey: z
    .string()
    .min(1)
    .max(255)
    .meta({ description: "A flow key whose jobs start at most N per period (the endpoint's keyRateLimit or the key's override); one key carries both limits, so it must equal concurrencyKey when both are given. Not with sequenceKey." })
    .optional(),
  tags: z
    .array(z.string().max(WORKER_TAGS.chars).meta({ pattern: WORKER_TAGS.pattern.source, minLength: 1 }))
    .max(WORKER_TAGS.perJob)
    .meta({ description: `Tags a worker must have declared (\`?tags=\` on job-take and ping) to be handed the job: all of them. At most ${WORKER_TAGS.perJob} entries (order does not matter, repeats are dropped), each 1-${WORKER_TAGS.chars} letters, digits, '_', '-', '.', ':' or '/', case-sensitive. Pulling workers only: a push endpoint refuses them.` })
    .optional(),
  s3Config: z
    .record(z.string(), z.unknown())
    .meta({ description: "Storage credentials for the worker (RunPod: accessId, accessSecret, bucketName, endpointUrl, objectPath): handed to the worker as sent, never echoed." })
    .optional(),
  webhookV2: z.unknown().meta({ description: "Kept with the job when a string of at most 2,048 characters; not called, never refused." }).optional(),
});
export type SubmitBody = z.infer<typeof SubmitBody>;

/** POST /reschedule/{id}: the job's new time as a submit gives it, `delay` or `runAt` (exactly one). */
export const RescheduleByDelay = z
  .object({ delay: SubmitBody.shape.delay.unwrap().meta({ description: "ms from now until the job is ready; its queue TTL counts from then." }) })
  .strict();
export const RescheduleByTime = z
  .object({
    runAt: SubmitBody.shape.runAt.unwrap().meta({ format: "date-time", description: "When the job becomes ready (RFC 3339, at most 7 days ahead; a past time: at once); its queue TTL counts from then." }),
  })
  .strict();
export const RescheduleBody = z.union([RescheduleByDelay, RescheduleByTime]).meta({ id: "Reschedule", description: "The job's new time: `delay` or `runAt`, exactly one." });

/** The endpoint's defaults a job's policy starts from (an EndpointConfig has them all). */
export interface PolicyDefaults {
  executionTimeout: number;
  ttl: number;
  /** Absent in configs stored before it was kept: "queue". */
  ttlMode?: TtlMode;
  maxAttempts: number;
  heartbeatTimeout: number;
  retentionMs: number;
  syncRetentionMs: number;
  cancelGraceMs: number;
  retryOnError: boolean;
  /** Absent in configs stored before it was kept: none. */
  retryBackoff?: RetryBackoff | null;
  /** Failed attempts of one job after which a worker is blocklisted from it (absent in configs stored before it was kept: BLOCKLIST's default). */
  blocklistThreshold?: number;
}

export function resolvePolicy(body: SubmitBody, config: PolicyDefaults, kind: JobKind): JobPolicy {
  const p = body.policy ?? {};
  return {
    executionTimeout: p.executionTimeout ?? config.executionTimeout,
    ttl: p.ttl ?? config.ttl,
    ttlMode: p.ttlMode ?? config.ttlMode ?? "queue",
    maxAttempts: p.maxAttempts ?? config.maxAttempts,
    heartbeatTimeout: p.heartbeatTimeout ?? config.heartbeatTimeout,
    lowPriority: p.lowPriority ?? false,
    priority: body.priority ?? 0,
    retentionMs: kind === "sync" ? config.syncRetentionMs : config.retentionMs,
    cancelGraceMs: config.cancelGraceMs,
    retryOnError: p.retryOnError ?? config.retryOnError,
    retryBackoff: p.retryBackoff === undefined ? (config.retryBackoff ?? null) : p.retryBackoff,
    blocklistThreshold: config.blocklistThreshold ?? BLOCKLIST.threshold.default,
    ...(body.tags !== undefined && body.tags.length > 0 ? { tags: tagsOf(tagKey(body.tags)) } : {}),
  };
}
