/**
 * Retry backoff (issue 16, item 2): how long a job waits SCHEDULED before its next attempt after
 * an attempt failed (retryOnError) or its lease was lost, instead of going back to the queue at
 * once. Pure: the jitter comes from the job's id and attempt, so a command stays a function of
 * (record, arguments, now) and a repeat computes the same wait.
 */
import { z } from "zod";
import { fnv1a } from "../shared/hash";
import { LIMITS } from "../shared/limits";

export const RetryBackoff = z
  .object({
    type: z.enum(["fixed", "exponential"]).meta({ description: '"fixed": every retry waits `delay`; "exponential": `delay` × 2^(retries so far), at most `maxDelay`.' }),
    delay: z.number().int().min(LIMITS.retryBackoff.min).max(LIMITS.retryBackoff.max).meta({ description: "ms before the first retry (the base)." }),
    maxDelay: z.number().int().min(LIMITS.retryBackoff.min).max(LIMITS.retryBackoff.max).optional().meta({ description: "ms, the longest wait (exponential; default 1 hour)." }),
    jitter: z.boolean().optional().meta({ description: "Wait a random 50–100% of the computed delay (default false), so failed jobs do not return in lockstep." }),
  })
  .strict()
  .refine((b) => b.maxDelay === undefined || b.maxDelay >= b.delay, { message: "maxDelay must be at least delay (it caps the exponential's growth)", path: ["maxDelay"] })
  .meta({ id: "RetryBackoff", description: "How long a job waits before its next attempt after an error or a lost lease (SCHEDULED meanwhile; clients see IN_QUEUE)." });
export type RetryBackoff = z.infer<typeof RetryBackoff>;

const DEFAULT_MAX_MS = 60 * 60 * 1000;

/** A number in [0, 1) from a string. */
const unitHash = (s: string) => fnv1a(s) / 2 ** 32;

/**
 * ms the job waits before the retry that follows `retries` earlier ones (0: the first retry),
 * 0 without a backoff. `seed` (the job id and attempt) picks the jitter.
 */
export function backoffMs(backoff: RetryBackoff | null | undefined, retries: number, seed: string): number {
  if (!backoff) return 0;
  const max = Math.max(backoff.delay, backoff.maxDelay ?? DEFAULT_MAX_MS);
  const full = backoff.type === "fixed" ? backoff.delay : Math.min(max, backoff.delay * 2 ** Math.min(retries, 40));
  return backoff.jitter ? Math.round(full * (0.5 + 0.5 * unitHash(seed))) : full;
}
