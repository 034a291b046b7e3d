/**
 * What a batch object's alarm asks of its children's jobs: create a chunk of them (the submit
 * flow, under a name per batch and index, so creating one again reaches the same job) and cancel
 * waiting ones after the batch's cancel. All calls of a chunk go out at once; each settles alone.
 */
import { childObjectName } from "./record";
import type { EndpointConfig } from "../endpoints/config";
import type { SubmitBody } from "../jobs/policy";
import type { JobChange } from "../jobs/job-object";
import type { JobRecord } from "../jobs/record";
import { LIMITS } from "../shared/limits";
import { jobAt } from "../flows/stubs";
import { submitJob } from "../flows/submit";

/** A held request: its index, its job's id, and its /run body as stored (validated at append). */
export interface HeldChild {
  idx: number;
  jobId: string;
  body: Uint8Array;
}

export type Created = { idx: number; ok: true; job: JobRecord } | { idx: number; ok: false; error: string };

const dec = new TextDecoder();
const enc = new TextEncoder();

/**
 * Creates the children's jobs: each a /run job of the batch's endpoint with `batchId` set, kept
 * for the longest retention (the batch keeps their results besides), low priority already in its
 * stored body.
 */
export async function createChildren(env: Env, config: EndpointConfig, batchId: string, origin: string | null, chunk: readonly HeldChild[]): Promise<Created[]> {
  const kept = { ...config, retentionMs: LIMITS.retentionMs.max };
  return Promise.all(
    chunk.map(async (c): Promise<Created> => {
      try {
        const body = JSON.parse(dec.decode(c.body)) as SubmitBody;
        const input = enc.encode(JSON.stringify(body.input));
        const r = await submitJob(env, kept, { kind: "run", body, input, key: null, origin, batchId, objectName: childObjectName(batchId, c.idx) });
        if (!r.ok) return { idx: c.idx, ok: false, error: "unexpected idempotency refusal" };
        if (r.job.id !== c.jobId) return { idx: c.idx, ok: false, error: `created job ${r.job.id}, expected ${c.jobId}` };
        return { idx: c.idx, ok: true, job: r.job };
      } catch (e) {
        return { idx: c.idx, ok: false, error: String(e).slice(0, 500) };
      }
    }),
  );
}

export type CancelOutcome = { jobId: string; change: JobChange } | { jobId: string; error: string };

/** Cancels each job while it waits (a running one is left to finish: WRONG_STATE with the job). */
export async function cancelWaiting(env: Env, ref: { id: string; generation: string }, jobIds: readonly string[]): Promise<CancelOutcome[]> {
  return Promise.all(
    jobIds.map(async (jobId): Promise<CancelOutcome> => {
      try {
        return { jobId, change: await jobAt(env, jobId).cancelWaiting(ref) };
      } catch (e) {
        return { jobId, error: String(e).slice(0, 500) };
      }
    }),
  );
}
