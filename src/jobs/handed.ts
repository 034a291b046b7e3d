/**
 * What a worker is handed with a job besides its id, attempt and input (RUNPOD-WIRE-2 §1.11,
 * §4.6): the batch it is a request of (`batchId`), and the client's `s3Config` as the client sent
 * it. Both are top-level keys of the job object, absent when the job has none.
 */
import { objectPieces, type Piece } from "../shared/pieces";
import type { JobRecord } from "./record";

export interface Handed {
  batchId?: string;
  /** JSON text. */
  s3Config?: string;
}

const enc = new TextEncoder();

/** The job's handed fields, or undefined when it has none (most jobs). */
export function handedOf(job: Pick<JobRecord, "batchId" | "extras">): Handed | undefined {
  const s3Config = job.extras?.s3Config;
  if (job.batchId === null && s3Config === undefined) return undefined;
  return { ...(job.batchId === null ? {} : { batchId: job.batchId }), ...(s3Config === undefined ? {} : { s3Config }) };
}

/** `{...fields, "batchId"?, "input": <input>, "s3Config"?}` as pieces, the job object a worker gets. */
export function handedJobPieces(fields: Record<string, unknown>, input: Piece, handed: Handed | undefined): Piece[] {
  const head = handed?.batchId === undefined ? fields : { ...fields, batchId: handed.batchId };
  return objectPieces(head, [
    ["input", input],
    ["s3Config", handed?.s3Config === undefined ? null : enc.encode(handed.s3Config)],
  ]);
}
