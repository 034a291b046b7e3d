/**
 * What a task's job tells its job of tasks after each state change (JobCore.tellAll), as a job of
 * a batch tells its batch: the batch's note (state, version, times, error, a small output) and
 * what the job of tasks needs beside it: the worker of the attempt, the attempts started, and the
 * workers that failed attempts (the job of tasks counts them into its own blocklist). A failed
 * tell answers false, and the job's alarm tells again.
 */
import type { ChildNote } from "./batch-tell";
import { noteFromStore } from "./batch-tell";
import type { JobRecord } from "./record";

export interface TaskNote extends ChildNote {
  workerId: string | null;
  attempt: number;
  failedWorkers: string[];
  /** The exit code its result carried (a finished job whose worker sent one), else null. */
  exitCode?: number | null;
}

/** The object of a job-of-tasks id (`tasks_<hex object id>`), or null for an id that is not one of ours. */
export function graphObjectId(env: Env, graphId: string): DurableObjectId | null {
  const m = /^tasks_([0-9a-f]{64})$/.exec(graphId);
  if (!m) return null;
  try {
    return env.GRAPH.idFromString(m[1]!);
  } catch {
    return null; // not an id this namespace issued
  }
}

/** A job of tasks' id for its object. */
export const graphIdOf = (id: DurableObjectId) => `tasks_${id.toString()}`;

export function taskNoteOf(job: JobRecord, sql: SqlStorage): TaskNote {
  const exitCode = job.lastReport?.exitCode !== undefined && job.lastReport.attempt === job.attempt ? job.lastReport.exitCode : null;
  return { ...noteFromStore(job, sql), workerId: job.workerId, attempt: job.attempt, failedWorkers: job.failedWorkers, exitCode };
}

/** Tells the job's job of tasks of `job` (true at once for a job that is no task); false when the call failed. */
export async function tellGraph(env: Env, sql: SqlStorage, job: JobRecord): Promise<boolean> {
  if (job.task === null) return true;
  const id = graphObjectId(env, job.task.graphId);
  if (id === null) return true;
  try {
    await env.GRAPH.get(id).taskChanged(job.task.name, taskNoteOf(job, sql));
    return true;
  } catch (e) {
    console.warn(`job ${job.id}: telling its job of tasks ${job.task.graphId} failed, the alarm will retry`, e);
    return false;
  }
}
