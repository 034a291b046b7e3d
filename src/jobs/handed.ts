/**
 * What a worker is handed with a job besides its id, attempt and input (RUNPOD-WIRE-2 §1.11,
 * §4.6): the batch it is a request of (`batchId`), the job of tasks it is a task of and the task's
 * name (`parentJobId`, `taskName`; issue 15, item 1), and the client's `s3Config` as the client
 * sent it. All are top-level keys of the job object, absent when the job has none.
 */
import { objectPieces, type Piece } from "../shared/pieces";
import type { JobRecord } from "./record";

export interface Handed {
  batchId?: string;
  parentJobId?: string;
  taskName?: string;
  /** JSON text. */
  s3Config?: string;
}

const enc = new TextEncoder();

/** The job's handed fields, or undefined when it has none (most jobs). */
export function handedOf(job: Pick<JobRecord, "batchId" | "extras"> & Partial<Pick<JobRecord, "task">>): Handed | undefined {
  const s3Config = job.extras?.s3Config;
  const task = job.task ?? null;
  if (job.batchId === null && s3Config === undefined && task === null) return undefined;
  return {
    ...(job.batchId === null ? {} : { batchId: job.batchId }),
    ...(task === null ? {} : { parentJobId: task.graphId, taskName: task.name }),
    ...(s3Config === undefined ? {} : { s3Config }),
  };
}

/** `{...fields, "batchId"?, "parentJobId"?, "taskName"?, "input": <input>, "s3Config"?}` as pieces, the job object a worker gets. */
export function handedJobPieces(fields: Record<string, unknown>, input: Piece, handed: Handed | undefined): Piece[] {
  const head = {
    ...fields,
    ...(handed?.batchId === undefined ? {} : { batchId: handed.batchId }),
    ...(handed?.parentJobId === undefined ? {} : { parentJobId: handed.parentJobId, taskName: handed.taskName }),
  };
  return objectPieces(head, [
    ["input", input],
    ["s3Config", handed?.s3Config === undefined ? null : enc.encode(handed.s3Config)],
  ]);
}
