/**
 * Endpoint configuration: the body of `PUT /admin/endpoints/{id}`, its defaults and its checks.
 */
import type { PolicyDefaults } from "../jobs/policy";
import { RetryBackoff } from "../jobs/backoff";
import type { SigningSecrets } from "../shared/signing";
import { z } from "zod";
import { BLOCKLIST, FLOW_KEYS, LIMITS, SHARDS } from "../shared/limits";
import { KeyRateLimit } from "./flow-rules";
import { checkOutboundUrl } from "../shared/urls";

const ms = (r: { min: number; max: number }) => z.number().int().min(r.min).max(r.max);

export const EndpointConfigInput = z
  .object({
    mode: z.enum(["pull", "push"]).optional(),
    workerUrls: z.array(z.url({ protocol: /^https?$/ })).max(32).optional(),
    executionTimeout: ms(LIMITS.executionTimeout).optional(),
    ttl: ms(LIMITS.ttl).optional(),
    ttlMode: z.enum(["queue", "lifespan"]).optional(),
    maxAttempts: ms(LIMITS.maxAttempts).optional(),
    heartbeatTimeout: ms(LIMITS.heartbeatTimeout).optional(),
    retentionMs: ms(LIMITS.retentionMs).optional(),
    syncRetentionMs: ms(LIMITS.syncRetentionMs).optional(),
    cancelGraceMs: ms(LIMITS.cancelGraceMs).optional(),
    concurrency: ms(LIMITS.concurrency).nullable().optional(),
    webhookSecret: z
      .string()
      .regex(/^whsec_[A-Za-z0-9+/]{22,}={0,2}$/, "must be whsec_ followed by a base64 secret of at least 16 bytes")
      .refine((s) => decodedSecretBytes(s) !== null, "must be whsec_ followed by valid base64 (its length, with padding, a multiple of 4)")
      .optional(),
    allowPrivateUrls: z.boolean().optional(),
    retryOnError: z.boolean().optional(),
    retryBackoff: RetryBackoff.nullable().optional(),
    blocklistThreshold: ms(BLOCKLIST.threshold).optional(),
    shards: z.number().int().min(1).max(SHARDS.max).optional(),
    flowShards: z.number().int().min(1).max(SHARDS.max).optional(),
    rateLimit: z.boolean().optional(),
    keyConcurrency: z.number().int().min(FLOW_KEYS.concurrency.min).max(FLOW_KEYS.concurrency.max).nullable().optional(),
    keyRateLimit: KeyRateLimit.nullable().optional(),
  })
  .strict();
export type EndpointConfigInput = z.infer<typeof EndpointConfigInput>;

/**
 * The secret's key bytes decoded as signing decodes them (atob), or null when they do not decode.
 * The pattern alone let `whsec_` + 25 base64 letters through; every signature then threw.
 */
function decodedSecretBytes(secret: string): number | null {
  try {
    return atob(secret.slice("whsec_".length)).length;
  } catch {
    return null;
  }
}

/**
 * An endpoint's stored config: the job policy defaults (PolicyDefaults: timeouts, attempts,
 * retention, cancel grace, retryOnError) and its signing secrets (SigningSecrets: the current and,
 * until `previousSecretUntil`, the previous one), plus what follows.
 */
export interface EndpointConfig extends PolicyDefaults, SigningSecrets {
  id: string;
  mode: "pull" | "push";
  workerUrls: string[];
  /** Most jobs IN_PROGRESS at once; null for no limit. */
  concurrency: number | null;
  allowPrivateUrls: boolean;
  /** Client rate limits apply (http/rate-limit.ts); false turns them off for this endpoint. */
  rateLimit: boolean;
  /** Most jobs of one flow key in progress (or handed out) at once; null: no cap (absent before issue 16: null). */
  keyConcurrency?: number | null;
  /** Most starts of one flow key per period; null: none (absent before issue 16: null). */
  keyRateLimit?: KeyRateLimit | null;
  /** Objects new jobs are indexed on (see firstShard); grows, never shrinks. */
  shards: number;
  /**
   * The first of the `shards` index shards, fixed at creation: 1 for an endpoint created with
   * several shards (ShardObjects 1..shards index its jobs; the endpoint object keeps config, keys
   * and the relay between them, off every job's path), 0 for one created with one shard or a cap,
   * or before issue 12 (the endpoint object is shard 0 and indexes jobs itself).
   */
  firstShard: 0 | 1;
  /**
   * Shards that jobs with a sequenceKey are placed over by the key's hash: fixed at creation, so a
   * growing `shards` never splits a sequence over two shards (FIFO per key stays exact).
   */
  sequenceShards: number;
  /**
   * Shards that jobs with a flow key are placed over by the key's hash, fixed at creation (a key's
   * caps, rate and turns are counted on its shard). 1, the default: every key shares one shard, so
   * turns between keys are exact whichever edge isolate placed a job, and keyed jobs go at one
   * shard's pace; more spreads keys (turns then exact only among keys sharing a shard). A config
   * stored before it existed loads with `sequenceShards` (where its keys' jobs were placed).
   */
  flowShards: number;
  /**
   * This incarnation of the endpoint, new each time it is created: jobs remember the one they
   * were submitted to, so a deleted and re-created endpoint never sees the old one's jobs.
   */
  generation: string;
  createdAt: string;
  updatedAt: string;
}

function newGeneration(): string {
  return [...crypto.getRandomValues(new Uint8Array(8))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export function newWebhookSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  return `whsec_${btoa(String.fromCharCode(...bytes))}`;
}

/**
 * The stored config after a PUT: every field the body names replaces the stored one; fields it
 * omits take their defaults (a PUT states the whole config). The secret and creation time stay.
 */
export function resolveConfig(
  id: string,
  input: EndpointConfigInput,
  previous: EndpointConfig | null,
  localDev: boolean,
  now: Date,
): EndpointConfig {
  const mode = input.mode ?? "pull";
  const workerUrls = input.workerUrls ?? [];
  if (mode === "push" && workerUrls.length === 0) {
    throw new ConfigError("mode \"push\" needs at least one entry in workerUrls");
  }
  const allowPrivateUrls = input.allowPrivateUrls ?? localDev;
  const concurrency = input.concurrency ?? null;
  const shards = input.shards ?? previous?.shards ?? (concurrency === null ? SHARDS.default : 1);
  if (previous && shards < previous.shards) {
    throw new ConfigError(`shards cannot shrink (jobs may be placed on them): this endpoint uses ${previous.shards}`);
  }
  if (!previous && concurrency !== null && shards > 1) {
    throw new ConfigError("an endpoint with a concurrency limit uses 1 shard (the limit is counted in one place)");
  }
  const flowShards = fixedFlowShards(input, previous, shards);
  for (const url of workerUrls) {
    const check = checkOutboundUrl(url, allowPrivateUrls);
    if (!check.ok) throw new ConfigError(`workerUrls: ${check.reason}`);
  }
  return {
    id,
    mode,
    workerUrls,
    executionTimeout: input.executionTimeout ?? LIMITS.executionTimeout.default,
    ttl: input.ttl ?? LIMITS.ttl.default,
    ttlMode: input.ttlMode ?? "queue",
    maxAttempts: input.maxAttempts ?? LIMITS.maxAttempts.default,
    heartbeatTimeout: input.heartbeatTimeout ?? LIMITS.heartbeatTimeout.default,
    retentionMs: input.retentionMs ?? LIMITS.retentionMs.default,
    syncRetentionMs: input.syncRetentionMs ?? LIMITS.syncRetentionMs.default,
    cancelGraceMs: input.cancelGraceMs ?? LIMITS.cancelGraceMs.default,
    concurrency,
    ...rotation(previous, input.webhookSecret ?? previous?.webhookSecret ?? newWebhookSecret(), now),
    allowPrivateUrls,
    retryOnError: input.retryOnError ?? false,
    retryBackoff: input.retryBackoff ?? null,
    blocklistThreshold: input.blocklistThreshold ?? BLOCKLIST.threshold.default,
    rateLimit: input.rateLimit ?? true,
    keyConcurrency: input.keyConcurrency ?? null,
    keyRateLimit: input.keyRateLimit ?? null,
    shards,
    sequenceShards: previous?.sequenceShards ?? shards,
    flowShards,
    firstShard: previous ? (previous.firstShard ?? 0) : shards > 1 && concurrency === null ? 1 : 0,
    generation: previous?.generation ?? newGeneration(),
    createdAt: previous?.createdAt ?? now.toISOString(),
    updatedAt: now.toISOString(),
  };
}

/** The flow-key shards: chosen at creation (1 by default, at most the shards), never changed after. */
function fixedFlowShards(input: EndpointConfigInput, previous: EndpointConfig | null, shards: number): number {
  if (previous) {
    const fixed = previous.flowShards;
    if (input.flowShards !== undefined && input.flowShards !== fixed) {
      throw new ConfigError(`flowShards is fixed when the endpoint is created (a key's jobs stay on its shard): this endpoint uses ${fixed}`);
    }
    return fixed;
  }
  const flowShards = input.flowShards ?? 1;
  if (flowShards > shards) throw new ConfigError(`flowShards (${flowShards}) cannot exceed shards (${shards})`);
  return flowShards;
}

/** resolveConfig with its refusal as a value: the stored config after a PUT, or why the PUT is refused. */
export function checkConfig(
  id: string,
  input: EndpointConfigInput,
  previous: EndpointConfig | null,
  localDev: boolean,
  now: Date,
): { ok: true; config: EndpointConfig } | { ok: false; message: string } {
  try {
    return { ok: true, config: resolveConfig(id, input, previous, localDev, now) };
  } catch (e) {
    if (e instanceof ConfigError) return { ok: false, message: e.message };
    throw e;
  }
}

/** How long the secret before a rotation is still signed with, so receivers can switch over. */
const ROTATION_OVERLAP_MS = 24 * 60 * 60 * 1000;

/** The secret fields after setting `secret`: a new secret keeps the old one for the overlap. */
export function rotation(
  previous: EndpointConfig | null,
  secret: string,
  now: Date,
): Pick<EndpointConfig, "webhookSecret" | "previousWebhookSecret" | "previousSecretUntil"> {
  if (previous && previous.webhookSecret !== secret) {
    return {
      webhookSecret: secret,
      previousWebhookSecret: previous.webhookSecret,
      previousSecretUntil: new Date(now.getTime() + ROTATION_OVERLAP_MS).toISOString(),
    };
  }
  return {
    webhookSecret: secret,
    previousWebhookSecret: previous?.previousWebhookSecret ?? null,
    previousSecretUntil: previous?.previousSecretUntil ?? null,
  };
}

export class ConfigError extends Error {
  override name = "ConfigError";
}
