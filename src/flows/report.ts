/**
 * The report flow: a worker's job-done (progress, result or failure, optionally handing it its
 * next job), its stream chunks and its log lines, fenced by the job object. The caller has
 * authorized the worker (its key, or a push worker's report token) and parsed the body.
 */
import type { EndpointConfig } from "../endpoints/config";
import type { Fence } from "../jobs/commands";
import type { JobChange, WorkerReport } from "../jobs/job-object";
import type { LogAppend, LogLineIn } from "../jobs/logs";
import type { Piece } from "../shared/pieces";
import { livenessOf } from "./liveness";
import { jobAt, refOf } from "./stubs";
import { takeJobs } from "./take";

export interface ReportTarget {
  config: EndpointConfig;
  workerId: string;
  fence: Fence;
  jobId: string;
}

export interface ReportOutcome {
  change: JobChange;
  /** With `next`: the worker's next job, claimed (null when none is ready or none may be handed out). */
  next?: Piece[] | null;
}

/**
 * Applies a job-done. `stopPod` marks the worker for recycling first (it then takes nothing
 * more); `next` (done-and-take-next) claims the worker's next job without waiting, unless the
 * report was refused or was the exact repeat of an accepted one (its first answer, lost, already
 * handed out a job: one report hands out at most one).
 */
export async function reportDone(env: Env, t: ReportTarget, report: WorkerReport, output: Uint8Array | null, opts: { stopPod: boolean; next: boolean; tags?: string | null }): Promise<ReportOutcome> {
  if (opts.stopPod) {
    const { ref, stub } = livenessOf(env, t.config, t.workerId);
    await stub.recycle(ref, t.workerId);
  }
  const change = await jobAt(env, t.jobId).report(refOf(t.config), t.fence, report, output);
  if (!opts.next) return { change };
  if (!change.ok || change.repeat || opts.stopPod) return { change, next: null };
  const [next] = await takeJobs(env, t.config, { workerId: t.workerId, max: 1, waitMs: 0, jobInProgress: null, tags: opts.tags ?? null });
  return { change, next: next ?? null };
}

/** One stream chunk from the lease holder. */
export function reportChunk(env: Env, t: ReportTarget, chunk: Uint8Array): Promise<JobChange> {
  return jobAt(env, t.jobId).stream(refOf(t.config), t.fence, chunk);
}

/** Log lines from the lease holder (kept within the job's caps; not a state change). */
export function reportLog(env: Env, t: ReportTarget, lines: LogLineIn[]): Promise<LogAppend> {
  return jobAt(env, t.jobId).appendLog(refOf(t.config), t.fence, lines);
}
