/**
 * Client rate limits, RunPod's documented ones (RUNPOD-WIRE §1.11): requests per 10 s per key and
 * endpoint, by route group — /run, /runsync, /status (with /status-sync and /stream), /cancel,
 * /purge-queue, /openai/*, /requests. Excess is a 429 with Retry-After.
 *
 * Counted by Cloudflare's Workers Rate Limiting bindings ([[ratelimits]] in wrangler.toml), one
 * per group since a binding's limit is fixed: no Durable Object on the request path, counts kept
 * per Cloudflare location and approximate. Locally (wrangler dev, the workerd tests) miniflare
 * counts exactly, in windows aligned to the wall clock.
 *
 * Not limited: worker routes (a RunPod worker sleeps on a 429 from job-take), admin routes, the
 * admin key anywhere (it is the operator's), other client routes (RunPod lists none for them), an
 * endpoint whose config says `rateLimit: false`, and everything when the var RATE_LIMITS is "off".
 * RunPod's concurrency limits ("200 concurrent" on /run, …) are not enforced.
 */
import type { EndpointConfig } from "../endpoints/config";
import { ApiError } from "./errors";

export type RateLimitGroup = "run" | "runsync" | "status" | "cancel" | "purge-queue" | "openai" | "requests";

export interface RateLimitSpec {
  /** The [[ratelimits]] binding that counts the group. */
  binding: "RATE_LIMIT_RUN" | "RATE_LIMIT_RUNSYNC" | "RATE_LIMIT_STATUS" | "RATE_LIMIT_CANCEL" | "RATE_LIMIT_PURGE_QUEUE" | "RATE_LIMIT_OPENAI" | "RATE_LIMIT_REQUESTS";
  /** Requests per period per key and endpoint: the binding's `simple.limit` (a test checks they agree). */
  limit: number;
  /** The binding's `simple.period`, seconds (Cloudflare accepts 10 or 60). */
  periodSeconds: 10 | 60;
  /** The routes, as messages name them. */
  routes: string;
}

/** Mirrors wrangler.toml's [[ratelimits]]: the numbers the 429 message states. */
export const RATE_LIMITS: Readonly<Record<RateLimitGroup, RateLimitSpec>> = {
  run: { binding: "RATE_LIMIT_RUN", limit: 1000, periodSeconds: 10, routes: "/run" },
  runsync: { binding: "RATE_LIMIT_RUNSYNC", limit: 2000, periodSeconds: 10, routes: "/runsync" },
  status: { binding: "RATE_LIMIT_STATUS", limit: 2000, periodSeconds: 10, routes: "/status, /status-sync and /stream" },
  cancel: { binding: "RATE_LIMIT_CANCEL", limit: 100, periodSeconds: 10, routes: "/cancel, /pause, /resume, /promote and /reschedule" },
  "purge-queue": { binding: "RATE_LIMIT_PURGE_QUEUE", limit: 2, periodSeconds: 10, routes: "/purge-queue" },
  openai: { binding: "RATE_LIMIT_OPENAI", limit: 2000, periodSeconds: 10, routes: "/openai/*" },
  requests: { binding: "RATE_LIMIT_REQUESTS", limit: 10, periodSeconds: 10, routes: "/requests" },
};

/** The group of a route by the segment after `/v2/{ep}/`: a Map, so `__proto__` names nothing. */
const GROUP_BY_OPERATION = new Map<string, RateLimitGroup>([
  ["run", "run"],
  ["runsync", "runsync"],
  ["status", "status"],
  ["status-sync", "status"],
  ["stream", "status"],
  ["cancel", "cancel"],
  // edge-jobs' own actions on one job count with /cancel (each leaves a history line).
  ["pause", "cancel"],
  ["resume", "cancel"],
  ["promote", "cancel"],
  ["reschedule", "cancel"],
  ["purge-queue", "purge-queue"],
  ["openai", "openai"],
  ["requests", "requests"],
]);

/**
 * The rate-limit group of a route pattern (`/v2/:ep/status/:id`) or path, or null for a route
 * that is not limited. By pattern, so routes added later under these names are limited too.
 */
export function rateLimitGroupOf(route: string): RateLimitGroup | null {
  const m = /^\/v2\/[^/]+\/([^/]+)/.exec(route);
  return m ? (GROUP_BY_OPERATION.get(m[1]!) ?? null) : null;
}

export function rateLimited(group: RateLimitGroup, endpointId: string): ApiError {
  const spec = RATE_LIMITS[group];
  return new ApiError(
    429,
    `rate limit exceeded: at most ${spec.limit} requests per ${spec.periodSeconds} s to ${spec.routes} per key on endpoint '${endpointId}'; retry after ${spec.periodSeconds} s`,
    { group, limit: spec.limit, periodSeconds: spec.periodSeconds, retryAfterSeconds: spec.periodSeconds },
    // The binding does not say when its count resets: a whole period is always long enough.
    { "retry-after": String(spec.periodSeconds) },
  );
}

export interface LimitedCaller {
  digest: string;
  isAdmin: boolean;
}

/**
 * Counts one request of an authorized client to `route` on the endpoint; throws the 429 when the
 * key is over its group's limit. Fails open: a missing binding or a failing call limits nothing.
 */
export async function enforceRateLimit(env: Env, route: string, endpointId: string, caller: LimitedCaller, config: EndpointConfig): Promise<void> {
  if (caller.isAdmin || env.RATE_LIMITS === "off" || config.rateLimit === false) return;
  const group = rateLimitGroupOf(route);
  if (group === null) return;
  const binding = (env as Partial<Env>)[RATE_LIMITS[group].binding];
  if (!binding) return;
  let outcome: RateLimitOutcome;
  try {
    outcome = await binding.limit({ key: `${endpointId}/${caller.digest}` });
  } catch (err) {
    console.error("rate limit binding failed; the request is let through", err);
    return;
  }
  if (!outcome.success) throw rateLimited(group, endpointId);
}
