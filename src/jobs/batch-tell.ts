/**
 * What a job of a batch tells its batch after each state change (JobCore.tellAll): its state,
 * version, times, error and, once finished, its output when small (BATCH.outputCopyBytes; larger
 * ones are read from the job by the child list). Jobs without a batch make no call. A failed tell
 * answers false, and the job's alarm tells again (index_due_at), as it does its endpoint.
 */
import { blobBytes, readBlob } from "../shared/blobs";
import { BATCH } from "../shared/limits";
import type { JobRecord } from "./record";
import type { JobState } from "./states";
import { isTerminal } from "./states";

/** What a child job tells its batch after each state change (newest version wins). */
export interface ChildNote {
  jobId: string;
  state: JobState;
  version: number;
  startedAt: number | null;
  completedAt: number | null;
  error: string | null;
  /** A finished job's output when at most BATCH.outputCopyBytes, else null (see outputBytes). */
  output: Uint8Array | null;
  outputBytes: number;
}

/** The object of a batch id (`batch_<hex object id>`), or null for an id that is not one of ours. */
export function batchObjectId(env: Env, batchId: string): DurableObjectId | null {
  const m = /^batch_([0-9a-f]{64})$/.exec(batchId);
  if (!m) return null;
  try {
    return env.BATCH.idFromString(m[1]!);
  } catch {
    return null; // not an id this namespace issued
  }
}

/** The note of `job` as it is now; its output is read from `sql` (a job object's storage). */
export function noteOf(job: JobRecord, output: Uint8Array | null, outputBytes: number): ChildNote {
  return {
    jobId: job.id,
    state: job.state,
    version: job.version,
    startedAt: job.startedAt,
    completedAt: job.completedAt,
    error: job.error,
    output,
    outputBytes,
  };
}

/** The note of a stored job with its output when finished and small enough to copy. */
export function noteFromStore(job: JobRecord, sql: SqlStorage): ChildNote {
  const finished = isTerminal(job.state) && job.hasOutput;
  const bytes = finished ? blobBytes(sql, "output") : 0;
  const output = finished && bytes <= BATCH.outputCopyBytes ? readBlob(sql, "output") : null;
  return noteOf(job, output, bytes);
}

/** Tells the job's batch of `job` (true at once for a job without one); false when the call failed. */
export async function tellBatch(env: Env, sql: SqlStorage, job: JobRecord): Promise<boolean> {
  if (job.batchId === null) return true;
  const id = batchObjectId(env, job.batchId);
  if (id === null) return true; // never one of ours: nothing to tell
  try {
    await env.BATCH.get(id).childChanged(noteFromStore(job, sql));
    return true;
  } catch (e) {
    console.warn(`job ${job.id}: telling batch ${job.batchId} failed, the alarm will retry`, e);
    return false;
  }
}
