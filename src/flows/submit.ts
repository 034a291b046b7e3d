/**
 * The submit flow: a job's object is created and submitted to; it tells its endpoint itself. With
 * an idempotency key the object is named after (endpoint incarnation, key), so repeats, even
 * concurrent ones, reach the same object and create one job. The caller has authorized the
 * client, read and validated the body, and checked the webhook URL.
 */
import type { EndpointConfig } from "../endpoints/config";
import { sha256Hex } from "../endpoints/keys";
import { resolvePolicy, type SubmitBody } from "../jobs/policy";
import type { JobExtras, JobKind, JobRecord, TaskLink } from "../jobs/record";
import { placeJob } from "./shard-picks";
import { jobAt } from "./stubs";
import { WORKER_TAGS } from "../shared/limits";
import { tagKey, tagsOf, tagsRefusal } from "../shared/tags";

export interface SubmitRequest {
  kind: JobKind;
  /** The validated body (its idempotencyKey is ignored: `key` is the one that counts). */
  body: SubmitBody;
  input: Uint8Array;
  /** The idempotency key, from the body or the Idempotency-Key header. */
  key: string | null;
  /** The Worker's public origin, push workers' report URLs are built under (null: unset). */
  origin: string | null;
  /** The batch the job is a request of (the batch flow sets it). */
  batchId?: string;
  /**
   * The job object's name, for a job whose id must not depend on a key (a batch's request: one
   * per batch and index, so creating it again reaches the same job). Without a key only.
   */
  objectName?: string;
  /** The job of tasks the job is a task of (its alarm sets it: issue 15, item 1). */
  task?: TaskLink;
}

/** What the job keeps of the body's `s3Config` and `webhookV2` (null: neither). */
function extrasOf(body: SubmitBody): JobExtras | null {
  const s3Config = body.s3Config === undefined ? undefined : JSON.stringify(body.s3Config);
  const webhookV2 = typeof body.webhookV2 === "string" && body.webhookV2.length <= 2048 ? body.webhookV2 : undefined;
  if (s3Config === undefined && webhookV2 === undefined) return null;
  return { ...(s3Config === undefined ? {} : { s3Config }), ...(webhookV2 === undefined ? {} : { webhookV2 }) };
}

/**
 * Why a body's flow keys are refused, or null: a job has one flow key, its `concurrencyKey` or
 * its `rateLimitKey` (both given, they must be the same), and none beside a `sequenceKey` (a
 * sequence already runs one at a time and is placed by its own key). `where`: `requests[3].`.
 */
export function flowKeyRefusal(body: Pick<SubmitBody, "concurrencyKey" | "rateLimitKey" | "sequenceKey">, where = ""): string | null {
  const { concurrencyKey: c, rateLimitKey: r } = body;
  if (c !== undefined && r !== undefined && c !== r) {
    return `${where}concurrencyKey and ${where}rateLimitKey differ: a job has one flow key, which carries both its key's concurrency and its rate limit (give one, or the same in both)`;
  }
  if ((c ?? r) !== undefined && body.sequenceKey !== undefined) {
    return `${where}sequenceKey cannot go with ${where}${c !== undefined ? "concurrencyKey" : "rateLimitKey"}: a sequence already runs one job at a time`;
  }
  return null;
}

/**
 * Why a body's tags are refused, or null: each must be a valid tag (shared/tags), and a push
 * endpoint hands jobs to its push workers, which declare no tags: none would ever match.
 */
export function submitTagsRefusal(body: Pick<SubmitBody, "tags">, config: Pick<EndpointConfig, "mode">, where = ""): string | null {
  if (body.tags === undefined || body.tags.length === 0) return null;
  const bad = tagsRefusal(body.tags, WORKER_TAGS.perJob, `${where}tags`);
  if (bad !== null) return bad;
  if (config.mode === "push") return `${where}tags: this endpoint pushes its jobs, and push workers declare no tags (tags are for pulling workers: ?tags= on job-take)`;
  return null;
}

/** The job's flow key (none beside a sequence key: the edge refuses that, a schedule's overlap "queue" adds one). */
export function flowKeyOf(body: Pick<SubmitBody, "concurrencyKey" | "rateLimitKey" | "sequenceKey">): string | null {
  return body.sequenceKey !== undefined ? null : (body.concurrencyKey ?? body.rateLimitKey ?? null);
}

export type SubmitOutcome = { ok: true; job: JobRecord } | { ok: false; code: "IDEMPOTENCY_MISMATCH"; key: string };

export async function submitJob(env: Env, config: EndpointConfig, req: SubmitRequest): Promise<SubmitOutcome> {
  // Named per endpoint incarnation, so a re-created endpoint never answers with an old job.
  const scope = config.generation === "" ? config.id : `${config.id}:${config.generation}`;
  const doId =
    req.key !== null ? env.JOB.idFromName(`idempotency:${scope}:${req.key}`) : req.objectName !== undefined ? env.JOB.idFromName(req.objectName) : env.JOB.newUniqueId();
  const id = doId.toString();
  // Tags in their canonical form: their order, repeats and an empty list say nothing (found from outside).
  const { idempotencyKey: _key, tags, ...others } = req.body;
  const rest = tags !== undefined && tags.length > 0 ? { ...others, tags: tagsOf(tagKey(tags)) } : others;
  const idempotency = req.key === null ? null : { key: req.key, bodyHash: await sha256Hex(`${req.kind}\n${JSON.stringify(rest)}`) };
  const flowKey = flowKeyOf(req.body);
  const init = {
    id,
    endpointId: config.id,
    endpointGen: config.generation,
    // The shard the job is indexed on for its whole life (see shard-picks).
    shard: placeJob(config, req.body.sequenceKey ?? null, flowKey),
    kind: req.kind,
    policy: resolvePolicy(req.body, config, req.kind),
    webhook: req.body.webhook ?? null,
    idempotency,
    sequenceKey: req.body.sequenceKey ?? null,
    flowKey,
    origin: req.origin,
    batchId: req.batchId ?? null,
    task: req.task ?? null,
    extras: extrasOf(req.body),
    // A delay counts from when the job object creates the job (its clock), a run-at time is absolute.
    ...(req.body.runAt !== undefined ? { runAt: Date.parse(req.body.runAt) } : {}),
    ...(req.body.delay ? { delayMs: req.body.delay } : {}),
  };
  // An idempotency key already used by a job of tasks or replicas (another body): refused as any other body is.
  if (req.key !== null && (await env.GRAPH.get(env.GRAPH.idFromName(`idempotency:${scope}:${req.key}`)).exists())) return { ok: false, code: "IDEMPOTENCY_MISMATCH", key: req.key };
  const r = await jobAt(env, id).submit(init, req.input);
  if (!r.ok && r.code === "IDEMPOTENCY_MISMATCH") return { ok: false, code: "IDEMPOTENCY_MISMATCH", key: req.key! };
  return { ok: true, job: r.job };
}
