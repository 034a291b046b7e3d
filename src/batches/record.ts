/**
 * A batch as its object keeps it, the summary clients read (RUNPOD-WIRE-2 §1.6), a child as the
 * child list shows it (§1.8), and what a child job tells its batch.
 */
import type { ChildNote } from "../jobs/batch-tell";

/** A batch request's job object name: one per batch and index, so creating it again reaches the same job. */
export const childObjectName = (batchId: string, idx: number) => `batch:${batchId}:${idx}`;

/** RunPod's four batch states (§1.7); there is no RUNNING or COMPLETED. */
export const BATCH_STATES = ["DRAFT", "FINALIZED", "FAILED", "CANCELLED"] as const;
export type BatchStatus = (typeof BATCH_STATES)[number];

/** Which endpoint incarnation a caller was authorized against; a batch of another is not found. */
export interface BatchRef {
  id: string;
  generation: string;
}

export interface BatchRecord {
  id: string;
  endpointId: string;
  endpointGen: string;
  name: string | null;
  /** Signed POST of the summary when the batch finishes (edge-jobs' extension). */
  webhook: string | null;
  status: BatchStatus;
  createdAt: number;
  /** The last client change (create, append, rename, finalize): a DRAFT idle too long is cancelled. */
  updatedAt: number;
  finalizedAt: number | null;
  /** `/cancel` of a FINALIZED batch: waiting children are cancelled, running ones drain, then CANCELLED. */
  cancelRequestedAt: number | null;
  /** Every child finished, or the batch is CANCELLED/FAILED; null while any is unfinished. Retention counts from here. */
  finishedAt: number | null;
  failure: string | null;
  /** The index the next appended child gets (never reused: a child's job id is derived from it). */
  nextIdx: number;
  /** When the alarm next creates or cancels children or tells the registry (null: nothing to do). */
  workDueAt: number | null;
  /** Since when creating children keeps failing (null: it does not). */
  createFailingSince: number | null;
  /** Whether the registry was last told this batch is active (null: never told). */
  registryTold: boolean | null;
}

/** GET /v2/{ep}/batch/{id}: exactly RunPod's fields (§1.6), `createdAt` in epoch ms. */
export interface BatchSummary {
  id: string;
  endpointId: string;
  status: BatchStatus;
  requestTotal: number;
  requestInProgress: number;
  requestCompleted: number;
  requestFailed: number;
  createdAt: number;
}

/** Children by group, for the summary and the batch webhook. */
export interface ChildCounts {
  total: number;
  queued: number;
  inProgress: number;
  completed: number;
  /** FAILED and TIMED_OUT. */
  failed: number;
  cancelled: number;
}

/** A child as its batch last heard of it. */
export interface ChildRow extends ChildNote {
  idx: number;
  /** Whether its job exists yet (a DRAFT's children, and a FINALIZED batch's not yet created, are not jobs). */
  created: boolean;
}

export type { ChildNote } from "../jobs/batch-tell";

/** A page of the child list: its rows, the batch's total, the page size applied, whether more follow. */
export interface ChildPage {
  rows: ChildRow[];
  total: number;
  /** The page size applied: the `limit` asked, or fewer when the page's output budget cut it. */
  limit: number;
  hasMore: boolean;
}

